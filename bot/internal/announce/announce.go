// Package announce tells GitHub how a rollout went, with the workflow's
// own token and nothing stored in AWS: it renders a rollout record
// (package rollout) as the markdown of one sticky comment on the merged
// pull request (and of the step summary), and posts it with the commit
// status dbusers/rollout on the merge commit: success, or failure naming
// the clusters that need attention. A dry run says so plainly and claims
// nothing was applied. For each account whose access changed, the comment
// says where it now exists, and points iam users to the README's steps
// for connecting.
package announce

import (
	"bytes"
	"embed"
	"fmt"
	"strings"
	"text/template"

	"github.com/dbusers/dbusers/bot/internal/ghcomment"
	"github.com/dbusers/dbusers/bot/internal/review"
	"github.com/dbusers/dbusers/bot/internal/rollout"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

var templates = template.Must(template.New("").ParseFS(templateFS, "templates/*.tmpl"))

// ConnectAnchor is the README section that tells an iam user how to log
// in once their access is merged.
const ConnectAnchor = "connecting-once-access-is-merged"

// Context is what the comment says beyond the record.
type Context struct {
	// RepoURL is the repository's web address
	// (https://github.com/acme/dbaccess), for the README link; "" names
	// the section without a link.
	RepoURL string
	// Ref is the revision the README link points at (the merge commit);
	// "" means HEAD.
	Ref string
	// RunURL is the workflow run's page.
	RunURL string
	// Asked is the version asked for; Found says whose record this is
	// when a newer version superseded it.
	Asked string
	Found *rollout.Found
}

// whoLimit caps the people on the Who line.
const whoLimit = 8

type summaryView struct {
	Emoji, Title, Provenance, Superseded, DryRun, Who string
	Problems                                          []problemView
	Continued                                         bool
}

type problemView struct {
	Emoji, Name, What, Error, Hint string
	Failed                         []string
}

type personView struct {
	Emoji, Who, What, Connect string
	Failed                    []string
}

type clusterView struct {
	Emoji, Name, Outcome, Notes  string
	Statements, Created, Dropped int
}

// Emoji is the record's verdict as a mark.
func Emoji(r *rollout.Record) string {
	switch r.Outcome() {
	case rollout.NotOK:
		return "❌"
	case rollout.DryRunOnly:
		return "🧪"
	}
	return "✅"
}

// Sections renders the record as the comment's sections: the summary
// (headline, provenance, a dry run said plainly, who got what, then what
// needs attention and what to do, as its rows), the accounts, the
// clusters, and a footer.
func Sections(r *rollout.Record, c Context) []ghcomment.Section {
	sv := summaryView{Emoji: Emoji(r), Title: review.Prose(r.Title()), Provenance: provenance(r)}
	if c.Found != nil && c.Found.SupersededBy != "" {
		sv.Superseded = fmt.Sprintf("Version %s was superseded by %s before a run read it: this is the rollout of %s, which carries its declarations.",
			review.Code(c.Asked), review.Code(c.Found.SupersededBy), review.Code(c.Found.SupersededBy))
	}
	sv.DryRun = dryRunNote(r)
	sv.Who = who(r)
	latest, _ := r.Latest()
	for _, p := range r.Problems() {
		sv.Problems = append(sv.Problems, problem(r, p))
	}
	summary := section("summary", func(cont bool) any { sv.Continued = cont; return sv }, sv.Problems)
	if len(sv.Problems) > 0 {
		summary.Tail = "\nSee " + docLink(c, "docs/operations.md", "when-the-rollout-status-is-red", "docs/operations.md, “When the rollout status is red”") + "."
		if latest.RequestID != "" {
			summary.Tail += " The run's logs: " + review.Prose(rollout.LogsHint(latest)) + "."
		}
		summary.Tail += "\n"
	}
	sections := []ghcomment.Section{summary}

	if people := r.People(); len(people) > 0 {
		var rows []personView
		for _, p := range people {
			rows = append(rows, person(p, c))
		}
		s := section("people", func(cont bool) any { return struct{ Continued bool }{cont} }, rows)
		if r.AccountsLeftOut > 0 {
			s.Tail = fmt.Sprintf("\n… and %d more account event(s), left out of the record to fit; the function's logs have every one.\n", r.AccountsLeftOut)
		}
		sections = append(sections, s)
	}

	if len(r.Clusters) > 0 {
		var rows []clusterView
		for _, cl := range r.Clusters {
			rows = append(rows, cluster(cl))
		}
		cs := section("clusters", func(cont bool) any { return struct{ Continued bool }{cont} }, rows)
		if r.ClustersLeftOut > 0 {
			cs.Tail = fmt.Sprintf("\n… and %d more cluster(s) that applied or had nothing to do, left out of the record to fit.\n", r.ClustersLeftOut)
		}
		sections = append(sections, cs)
	}
	sections = append(sections, ghcomment.Section{Head: execute("footer", footer(r, c, latest))})
	return sections
}

// UnknownSections is the comment when the rollout's result is not known:
// no record came within the wait, or it could not be read.
func UnknownSections(version string, why error, c Context) []ghcomment.Section {
	v := struct{ Version, Why, Command, Run string }{Version: review.Code(version), Why: review.Prose(why.Error()),
		Command: review.Code("dbusers rollout --version " + version)}
	if u, ok := review.LinkTarget(c.RunURL); ok {
		v.Run = "[workflow run](" + u + ")"
	}
	return []ghcomment.Section{{Head: execute("unknown", v)}}
}

// Markdown is the whole comment as one document.
func Markdown(r *rollout.Record, c Context) string {
	var parts []string
	for _, s := range Sections(r, c) {
		parts = append(parts, s.Head+strings.Join(s.Rows, "")+s.Tail)
	}
	return strings.Join(parts, "\n")
}

// who is the line of what happened to whom, each account as code: at most
// whoLimit people, then how many more.
func who(r *rollout.Record) string {
	var parts []string
	people := r.People()
	for i, p := range people {
		if i == whoLimit {
			parts = append(parts, fmt.Sprintf("and %d more", len(people)-whoLimit))
			break
		}
		parts = append(parts, review.Code(p.Account)+" "+review.Prose(p.What()))
	}
	return strings.Join(parts, "; ")
}

func provenance(r *rollout.Record) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Version %s", review.Code(r.Version))
	if r.Commit != "" {
		fmt.Fprintf(&b, " of commit %s", review.Code(shortSHA(r.Commit)))
	}
	if r.PullRequest != "" {
		fmt.Fprintf(&b, " (pull request #%s)", review.Cell(r.PullRequest))
	}
	if !r.PublishedAt.IsZero() {
		fmt.Fprintf(&b, ", published %s", r.PublishedAt.UTC().Format("2006-01-02 15:04 MST"))
	}
	if run, ok := r.Latest(); ok {
		fmt.Fprintf(&b, "; %s run finished %s", review.Cell(run.Trigger), run.FinishedAt.UTC().Format("2006-01-02 15:04:05 MST"))
		if len(r.Runs) > 1 || r.RunsLeftOut > 0 {
			fmt.Fprintf(&b, " (%d runs of this version so far)", len(r.Runs)+r.RunsLeftOut)
		}
		switch {
		case run.SignedBy != "":
			b.WriteString(", bundle signature verified")
		case run.Unsigned:
			b.WriteString(", bundle used **without a verified signature** (`DBUSERS_ALLOW_UNSIGNED`)")
		}
	}
	b.WriteString(".")
	return b.String()
}

// dryRunNote says plainly that nothing was applied where runs only
// planned, and why.
func dryRunNote(r *rollout.Record) string {
	planned, changes := 0, 0
	for _, c := range r.Clusters {
		if c.DryRun && c.Status == rollout.Planned {
			planned++
			changes += c.Changes
		}
	}
	dryUnchanged := 0
	for _, c := range r.Clusters {
		if c.DryRun && c.Status == rollout.Unchanged {
			dryUnchanged++
		}
	}
	if planned == 0 && dryUnchanged == 0 {
		return ""
	}
	why := "The run was a dry run"
	if run, ok := r.Latest(); ok && run.ForcedDryRun {
		why = "The function runs in dry-run mode (`DBUSERS_DRY_RUN`, the control-plane stack's `DryRun`)"
	}
	if planned == 0 {
		return fmt.Sprintf("Dry run: %s. Nothing was applied; the databases already match.", strings.ToLower(why[:1])+why[1:])
	}
	return fmt.Sprintf("**Dry run: nothing was applied.** %s: it planned %d change(s) on %d cluster(s) and made none of them. "+
		"No account below exists because of this merge until a run applies it.", why, changes, planned)
}

func problem(r *rollout.Record, p rollout.Problem) problemView {
	// The hint is dbusers' own text, written as markdown.
	v := problemView{Emoji: "❌", Name: review.Cell(p.Cluster), Hint: rollout.Hint(p)}
	switch p.What {
	case "bundle":
		v.Name, v.What = "bundle", "refused: nothing was changed anywhere"
		v.Error = review.Prose(p.Error)
	case "failed":
		v.What = "failed at " + review.Code(p.Stage)
		v.Error = review.Prose(p.Error)
	case "partial":
		v.Emoji, v.What = "⚠️", "partial: some accounts failed, every other account applied"
		c, _ := r.FindCluster(p.Cluster)
		for _, f := range c.FailedAccounts {
			v.Failed = append(v.Failed, fmt.Sprintf("%s: %s: %s", review.Code(f.Account), review.Prose(f.Summary), review.Prose(f.Error)))
		}
		if n := c.FailedAccountCount - len(c.FailedAccounts); n > 0 {
			v.Failed = append(v.Failed, fmt.Sprintf("… and %d more", n))
		}
	case "held":
		c, _ := r.FindCluster(p.Cluster)
		v.Emoji, v.What = "🛑", fmt.Sprintf("the removal limit held %d drop(s) back; everything else applied", c.Held)
		v.Error = review.Prose(p.Error)
	}
	return v
}

func person(p rollout.Person, c Context) personView {
	var lines []string
	for _, l := range p.Lines() {
		lines = append(lines, review.Prose(l))
	}
	v := personView{What: strings.Join(lines, "; ")}
	for _, f := range p.Failures {
		v.Failed = append(v.Failed, fmt.Sprintf("failed on %s: %s: %s", review.Cell(f.Cluster), review.Prose(f.Summary), review.Prose(f.Error)))
	}
	switch {
	case len(p.Failures) > 0:
		v.Emoji = "❌"
	case len(p.Applied[rollout.Created]) > 0 || len(p.Planned[rollout.Created]) > 0:
		v.Emoji = "➕"
	case len(p.Applied[rollout.Dropped]) > 0 || len(p.Applied[rollout.Locked]) > 0 || len(p.Planned[rollout.Dropped]) > 0:
		v.Emoji = "➖"
	case len(p.Held) > 0:
		v.Emoji = "🛑"
	default:
		v.Emoji = "🔁"
	}
	switch {
	case p.Declared:
		v.Who = fmt.Sprintf("**%s** %s (%s)", review.Cell(p.User), review.Code(p.Account), review.Cell(p.Auth))
	case p.User != "":
		v.Who = fmt.Sprintf("**%s** %s", review.Cell(p.User), review.Code(p.Account))
	default:
		v.Who = review.Code(p.Account) + " (no user file declares it)"
	}
	// The way in, for an iam user whose access this version gave or
	// changed somewhere (not for a plan: a dry run gave nothing).
	if p.Declared && p.Auth == "iam" && len(p.Now) > 0 && len(p.Applied[rollout.Created])+len(p.Applied[rollout.Changed]) > 0 {
		v.Connect = connectLink(c)
	}
	return v
}

// connectLink points to the README's steps for logging in with IAM.
func connectLink(c Context) string {
	return docLink(c, "README.md", ConnectAnchor, "how to connect: README, “Connecting once access is merged”", "how to connect")
}

// docLink links a section of a file of the repository at c.Ref, or names
// it (text) when the repository's address is not known. label, when
// given, is the link's text instead of text.
func docLink(c Context, file, anchor, text string, label ...string) string {
	ref := c.Ref
	if ref == "" {
		ref = "HEAD"
	}
	if c.RepoURL == "" {
		return text
	}
	u, ok := review.LinkTarget(strings.TrimSuffix(c.RepoURL, "/") + "/blob/" + ref + "/" + file + "#" + anchor)
	if !ok {
		return text
	}
	if len(label) > 0 {
		text = label[0]
	}
	return "[" + text + "](" + u + ")"
}

func cluster(c rollout.Cluster) clusterView {
	v := clusterView{Name: review.Cell(c.Name), Statements: c.Statements, Created: c.Created, Dropped: c.Dropped}
	switch c.Status {
	case rollout.Applied:
		v.Emoji, v.Outcome = "✅", "applied"
	case rollout.Unchanged:
		v.Emoji, v.Outcome = "✅", "nothing to change"
	case rollout.Planned:
		v.Emoji, v.Outcome = "🧪", fmt.Sprintf("dry run: %d change(s) planned, none applied", c.Changes)
	case rollout.Partial:
		v.Emoji, v.Outcome = "⚠️", fmt.Sprintf("partial: %d account(s) failed", c.FailedAccountCount)
	case rollout.Failed:
		v.Emoji, v.Outcome = "❌", "failed at "+review.CodeCell(c.Stage)
	default:
		v.Emoji, v.Outcome = "❔", review.Cell(string(c.Status))
	}
	if c.DryRun && c.Status == rollout.Unchanged {
		v.Outcome += " (dry run)"
	}
	var notes []string
	if c.Held > 0 {
		v.Emoji = "🛑"
		notes = append(notes, fmt.Sprintf("%d drop(s) held back", c.Held))
	}
	if c.SkippedCount > 0 {
		notes = append(notes, fmt.Sprintf("%d user(s) skipped", c.SkippedCount))
	}
	if c.Server != "" {
		notes = append(notes, review.Cell(c.Server))
	}
	v.Notes = strings.Join(notes, "; ")
	return v
}

func footer(r *rollout.Record, c Context, latest rollout.Run) string {
	parts := []string{"dbusers rollout", "version " + review.Code(r.Version)}
	if validSHA(r.Commit) {
		parts = append(parts, "commit "+r.Commit)
	}
	if !r.UpdatedAt.IsZero() {
		parts = append(parts, "record of "+r.UpdatedAt.UTC().Format("2006-01-02 15:04 MST"))
	}
	if latest.RequestID != "" {
		parts = append(parts, "request id "+review.Code(latest.RequestID))
	}
	if u, ok := review.LinkTarget(c.RunURL); ok {
		parts = append(parts, "[workflow run]("+u+")")
	}
	if len(r.Cut) > 0 {
		parts = append(parts, "left out to fit SSM: "+review.Prose(strings.Join(r.Cut, "; ")))
	}
	return strings.Join(parts, " · ")
}

func validSHA(s string) bool {
	return (len(s) == 40 || len(s) == 64) && strings.Trim(s, "0123456789abcdef") == ""
}

func shortSHA(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// section renders the named template's head (from head, once as it is
// and once continued), one name.row per row, and name.tail if defined.
func section[R any](name string, head func(continued bool) any, rows []R) ghcomment.Section {
	s := ghcomment.Section{Head: execute(name, head(false)), ContinuedHead: execute(name, head(true))}
	for _, row := range rows {
		s.Rows = append(s.Rows, execute(name+".row", row))
	}
	if templates.Lookup(name+".tail") != nil {
		s.Tail = execute(name+".tail", nil)
	}
	return s
}

func execute(name string, data any) string {
	var b bytes.Buffer
	if err := templates.ExecuteTemplate(&b, name, data); err != nil {
		// Templates are fixed and tested; a failure is a programming error.
		panic(fmt.Sprintf("announce template %s: %v", name, err))
	}
	return b.String()
}
