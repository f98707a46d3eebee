package rollout

import (
	"fmt"
	"slices"
	"strings"
)

// Person is what the record says about one account holder: what happened
// to their account where, and where they have an account now. It is what
// a requester reads first.
type Person struct {
	// User is the declared user ("" for an account no file declares).
	User string
	// Account is the account's name (see Account.Name).
	Account string
	// Declared: the version's declarations name the user; Auth and Kind
	// are theirs.
	Declared bool
	Auth     string
	Kind     string
	// Applied lists, per event, the clusters where it happened; Planned,
	// per event, where a dry run only planned it.
	Applied map[Event][]string
	Planned map[Event][]string
	// Held are the clusters where the removal limit held a drop back.
	Held []string
	// Failures are the account's refused statements.
	Failures []Account
	// Now are the clusters where the declarations give the user an account
	// and it is there; Pending those where it is not (yet), with why.
	Now     []string
	Pending []Pending
}

// Pending is a cluster where a declared account is not in place.
type Pending struct {
	Cluster string
	Why     string
}

// eventOrder is the order events are told in.
var eventOrder = []Event{Created, Changed, Dropped, Locked}

// Events returns the events a person's applied (or planned) map holds, in
// the order they are told.
func Events(m map[Event][]string) []Event {
	var out []Event
	for _, e := range eventOrder {
		if len(m[e]) > 0 {
			out = append(out, e)
		}
	}
	return out
}

// People returns one Person per account the record tells of, declared
// users first by name, then the accounts no file declares.
func (r *Record) People() []Person {
	type key struct{ user, account string }
	byKey := map[key]*Person{}
	var keys []key
	for _, a := range r.Accounts {
		k := key{a.User, a.Name()}
		p := byKey[k]
		if p == nil {
			p = &Person{User: a.User, Account: a.Name(), Applied: map[Event][]string{}, Planned: map[Event][]string{}}
			if u, ok := r.FindUser(a.User); ok && a.User != "" {
				p.Declared, p.Auth, p.Kind = true, u.Auth, u.Kind
			}
			byKey[k] = p
			keys = append(keys, k)
		}
		switch {
		case a.Event == FailedEvent:
			p.Failures = append(p.Failures, a)
		case a.Event == Held:
			p.Held = appendOnce(p.Held, a.Cluster)
		case a.DryRun:
			p.Planned[a.Event] = appendOnce(p.Planned[a.Event], a.Cluster)
		default:
			p.Applied[a.Event] = appendOnce(p.Applied[a.Event], a.Cluster)
		}
	}
	slices.SortFunc(keys, func(a, b key) int {
		if (a.user == "") != (b.user == "") {
			if a.user == "" {
				return 1
			}
			return -1
		}
		if c := strings.Compare(a.user, b.user); c != 0 {
			return c
		}
		return strings.Compare(a.account, b.account)
	})
	out := make([]Person, 0, len(keys))
	for _, k := range keys {
		p := byKey[k]
		if p.Declared {
			u, _ := r.FindUser(p.User)
			if p.Account == u.Account {
				p.Now, p.Pending = r.whereNow(u, p)
			}
		}
		out = append(out, *p)
	}
	return out
}

// whereNow splits the clusters that declare u into those where its account
// is in place and those where it is not, with why.
func (r *Record) whereNow(u User, p *Person) (now []string, pending []Pending) {
	failed := map[string]bool{}
	for _, f := range p.Failures {
		failed[f.Cluster] = true
	}
	for _, name := range u.Clusters {
		c, ok := r.FindCluster(name)
		switch {
		case failed[name]:
			pending = append(pending, Pending{name, "a statement was refused"})
		case slices.Contains(p.Applied[Created], name) || slices.Contains(p.Applied[Changed], name):
			now = append(now, name)
		case !ok && r.ClustersLeftOut > 0:
			now = append(now, name) // left out: only clusters that ended well are
		case !ok:
			pending = append(pending, Pending{name, "no run has reached the cluster yet"})
		case c.Status == Failed:
			pending = append(pending, Pending{name, fmt.Sprintf("the cluster failed at %s", c.Stage)})
		case c.DryRun && c.Status == Planned:
			pending = append(pending, Pending{name, "dry run: nothing was applied"})
		default:
			now = append(now, name)
		}
	}
	return now, pending
}

func appendOnce(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// Verb is how an event reads after an account's name ("created on").
func Verb(e Event, planned bool) string {
	if planned {
		switch e {
		case Created:
			return "would be created on"
		case Dropped:
			return "would be dropped on"
		case Locked:
			return "would be locked on"
		}
		return "would change on"
	}
	switch e {
	case Created:
		return "created on"
	case Dropped:
		return "dropped on"
	case Locked:
		return "locked (it defines stored objects) on"
	}
	return "access changed on"
}

// Hint says what to do about a problem, by stage or kind.
func Hint(p Problem) string {
	switch p.What {
	case "bundle":
		return "the function refused the published bundle and changed nothing anywhere: see docs/operations.md, `dbusers-bundle-unusable`"
	case "held":
		return "find out why so many accounts lose access here; if it is intended, raise `removal_limit` in a pull request for this change " +
			"(docs/operations.md, `dbusers-safety-limit`), and the next run drops them"
	case "partial":
		return "the server refused some accounts' statements (listed); every other account applied. " +
			"See docs/operations.md, `dbusers-clusters-partial`; the next scheduled run retries"
	}
	switch p.Stage {
	case "account":
		return "the cluster's account is not one this deployment manages (`TargetAccountIds`), or its `role_arn` is in another account: fix the cluster file or the control-plane stack"
	case "assume-role":
		return "the management role in the cluster's account could not be assumed: check the StackSet instance there and the external id (docs/operations.md, `dbusers-clusters-failed`)"
	case "admin-secret":
		return "the admin secret could not be read: check `admin_secret` in the cluster file and the management role's `SecretNamePrefix` and KMS keys"
	case "tls":
		return "TLS to the endpoint failed: check the cluster's `tls` mode and the CA bundle"
	case "connect":
		return "the server could not be reached or refused the login: check the endpoint, the network path (security groups, VPC) and the admin secret's password"
	}
	return "read the error and the function's logs for this run (below); the next scheduled run retries (docs/operations.md, \"When the rollout status is red\")"
}
