package rollout

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// Update is what one run of a version adds to its record.
type Update struct {
	Version     string
	Commit      string
	PullRequest string
	PublishedAt time.Time
	Run         Run
	// Clusters are the clusters the run reached.
	Clusters []Cluster
	// Accounts are the run's account events. A run records, per account
	// and cluster, its strongest applied (or planned) event, and a failed
	// one when a statement was refused.
	Accounts []Account
	// Users are the version's declared users (only those Accounts names
	// are kept).
	Users []User
}

// Merge returns the record with u's run added; prev may be nil (the
// version's first run). It is pure. A cluster's entry becomes the new
// run's outcome, except that a dry run never replaces the outcome of a run
// that applied: the record says what the version did, and a dry-run
// invoke afterwards changes nothing. Account events that happened (created,
// dropped, locked, changed) accumulate over the runs; those that describe
// a state (failed, held, anything planned) are replaced with the
// cluster's entry.
func Merge(prev *Record, u Update) *Record {
	u = normalize(u)
	r := &Record{Format: FormatVersion, Version: u.Version, Commit: u.Commit, PullRequest: u.PullRequest,
		PublishedAt: u.PublishedAt, UpdatedAt: u.Run.FinishedAt}
	var old []Cluster
	var oldAccounts []Account
	var oldUsers []User
	if prev != nil {
		r.Runs = slices.Clone(prev.Runs)
		r.RunsLeftOut = prev.RunsLeftOut
		r.AccountsLeftOut = prev.AccountsLeftOut
		r.ClustersLeftOut = prev.ClustersLeftOut
		r.Cut = nil // a new write fits anew
		old, oldAccounts, oldUsers = prev.Clusters, prev.Accounts, prev.Users
		// Provenance of a bundle-error run is only the version: keep what
		// an earlier run knew.
		r.Commit = cmp.Or(r.Commit, prev.Commit)
		r.PullRequest = cmp.Or(r.PullRequest, prev.PullRequest)
		if r.PublishedAt.IsZero() {
			r.PublishedAt = prev.PublishedAt
		}
	}
	r.Runs = append(r.Runs, u.Run)
	if n := len(r.Runs) - MaxRuns; n > 0 {
		r.Runs = slices.Clone(r.Runs[n:])
		r.RunsLeftOut += n
	}

	byName := map[string]Cluster{}
	for _, c := range old {
		byName[c.Name] = c
	}
	replaced := map[string]bool{}
	for _, c := range u.Clusters {
		if o, ok := byName[c.Name]; ok && !o.DryRun && c.DryRun {
			continue // a dry run does not undo what a run applied
		}
		byName[c.Name] = c
		replaced[c.Name] = true
	}
	for _, c := range byName {
		r.Clusters = append(r.Clusters, c)
	}
	slices.SortFunc(r.Clusters, func(a, b Cluster) int { return strings.Compare(a.Name, b.Name) })

	seen := map[Account]bool{}
	add := func(a Account) {
		if !seen[a] {
			seen[a] = true
			r.Accounts = append(r.Accounts, a)
		}
	}
	for _, a := range oldAccounts {
		if replaced[a.Cluster] && (a.DryRun || a.Event == FailedEvent || a.Event == Held) {
			continue
		}
		add(a)
	}
	for _, a := range u.Accounts {
		if replaced[a.Cluster] {
			add(a)
		}
	}
	sortAccounts(r.Accounts)
	if n := len(r.Accounts) - MaxAccounts; n > 0 {
		r.Accounts = keepAccounts(r.Accounts, MaxAccounts)
		r.AccountsLeftOut += n
	}

	users := map[string]User{}
	for _, us := range [][]User{oldUsers, u.Users} {
		for _, x := range us {
			users[x.Name] = x
		}
	}
	named := map[string]bool{}
	for _, a := range r.Accounts {
		named[a.User] = true
	}
	for name, x := range users {
		if named[name] {
			r.Users = append(r.Users, x)
		}
	}
	slices.SortFunc(r.Users, func(a, b User) int { return strings.Compare(a.Name, b.Name) })
	return r
}

// normalize bounds what one update can put in a record: lists per cluster,
// text lengths.
func normalize(u Update) Update {
	u.Clusters = slices.Clone(u.Clusters)
	for i := range u.Clusters {
		c := &u.Clusters[i]
		c.Error = clip(c.Error, MaxText)
		c.LimitTripped = clip(c.LimitTripped, MaxText)
		c.FailedAccountCount = max(c.FailedAccountCount, len(c.FailedAccounts))
		c.FailedAccounts = slices.Clone(c.FailedAccounts[:min(len(c.FailedAccounts), MaxListed)])
		for j := range c.FailedAccounts {
			c.FailedAccounts[j].Error = clip(c.FailedAccounts[j].Error, MaxText)
			c.FailedAccounts[j].Summary = clip(c.FailedAccounts[j].Summary, MaxText)
		}
		c.SkippedCount = max(c.SkippedCount, len(c.Skipped))
		c.Skipped = slices.Clone(c.Skipped[:min(len(c.Skipped), MaxListed)])
		for j := range c.Skipped {
			c.Skipped[j].Reason = clip(c.Skipped[j].Reason, MaxText)
		}
		c.NoteCount = max(c.NoteCount, len(c.Notes))
		c.Notes = slices.Clone(c.Notes[:min(len(c.Notes), MaxListed)])
		for j := range c.Notes {
			c.Notes[j] = clip(c.Notes[j], MaxText)
		}
	}
	u.Accounts = slices.Clone(u.Accounts)
	for i := range u.Accounts {
		u.Accounts[i].Summary = clip(u.Accounts[i].Summary, MaxText)
		u.Accounts[i].Error = clip(u.Accounts[i].Error, MaxText)
	}
	u.Run.BundleError = clip(u.Run.BundleError, MaxText)
	return u
}

// sortAccounts orders events as people read them: declared users first,
// by user, then the accounts no file declares.
func sortAccounts(as []Account) {
	slices.SortFunc(as, func(a, b Account) int {
		undeclared := func(x Account) int {
			if x.User == "" {
				return 1
			}
			return 0
		}
		return cmp.Or(undeclared(a)-undeclared(b), strings.Compare(a.User, b.User), strings.Compare(a.Account, b.Account), strings.Compare(a.Host, b.Host),
			strings.Compare(a.Cluster, b.Cluster), strength(b.Event)-strength(a.Event), strings.Compare(string(a.Event), string(b.Event)))
	})
}

// keepAccounts keeps n of the events, failures first, then declared users'
// (whom a requester looks for) before accounts no file declares, in
// their order otherwise.
func keepAccounts(as []Account, n int) []Account {
	if n <= 0 {
		return nil
	}
	if len(as) <= n {
		return as
	}
	rank := func(a Account) int {
		switch {
		case a.Event == FailedEvent:
			return 0
		case a.User != "":
			return 1
		}
		return 2
	}
	idx := make([]int, len(as))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(i, j int) int { return rank(as[i]) - rank(as[j]) })
	idx = idx[:n]
	slices.Sort(idx)
	out := make([]Account, 0, n)
	for _, i := range idx {
		out = append(out, as[i])
	}
	return out
}
