package review

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/dbusers/dbusers/bot/internal/liveplan"
)

// liveListLimit is how many statements a cluster of the live plan lists
// one by one, each under its sentence; a cluster with more shows them in
// a folded block of SQL, so that a plan of thousands stays a page long.
const liveListLimit = 10

// driftNote is what a change marked as drift means to a reviewer.
const driftNote = "already differs from the merged configuration: merging repairs it"

// liveTally counts what a live plan will do, for the sentence that says
// what merging does.
type liveTally struct {
	statements, drift, held int
	planned, failed, fresh  []string // clusters with statements, that failed, new in the pull request
	read                    int      // clusters whose live state was read
}

func tally(rep *liveplan.Report) liveTally {
	var t liveTally
	for _, c := range liveClusters(rep) {
		switch c.Status {
		case liveplan.Failed:
			t.failed = append(t.failed, c.Name)
			continue
		case liveplan.Unpublished:
			t.fresh = append(t.fresh, c.Name)
			continue
		}
		t.read++
		if n := len(c.Changes) + c.Truncated; n > 0 {
			t.statements += n
			t.planned = append(t.planned, c.Name)
		}
		t.held += len(c.Held)
		for _, ch := range c.Changes {
			if ch.Drift {
				t.drift++
			}
		}
	}
	return t
}

// liveClusters are the report's clusters as the comment lists them:
// production first, then by name.
func liveClusters(rep *liveplan.Report) []liveplan.Cluster {
	cs := slices.Clone(rep.Clusters)
	slices.SortStableFunc(cs, func(a, b liveplan.Cluster) int {
		if a.Production != b.Production {
			if a.Production {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	return cs
}

// liveMerging says, in markdown, what merging does according to the live
// plan: the statements it runs (or, in dry-run mode, that it runs none),
// the drift they repair, and the clusters the plan could not cover.
func liveMerging(rep *liveplan.Report) string {
	t := tally(rep)
	var b strings.Builder
	switch {
	case rep.DryRun && t.statements > 0:
		fmt.Fprintf(&b, "**Merging will only plan:** the function runs with DBUSERS_DRY_RUN, so it runs none of the %s of the live plan below.",
			plural(t.statements, "statement", "statements"))
	case rep.DryRun:
		fmt.Fprintf(&b, "**Merging will only plan:** the function runs with DBUSERS_DRY_RUN; the live plan has nothing to run on the %s it read anyway.",
			plural(t.read, "cluster", "clusters"))
	case t.statements > 0:
		fmt.Fprintf(&b, "**Merging** runs %s on %s (the live plan below).",
			plural(t.statements, "statement", "statements"), cell(strings.Join(t.planned, ", ")))
	default:
		fmt.Fprintf(&b, "**Merging** changes nothing on the %s the live plan read.", plural(t.read, "cluster", "clusters"))
	}
	if t.drift > 0 {
		fmt.Fprintf(&b, " %s %s drift: the database already differs from the merged configuration.",
			plural(t.drift, "statement", "statements"), map[bool]string{true: "repairs", false: "repair"}[t.drift == 1])
	}
	if t.held > 0 {
		fmt.Fprintf(&b, " The removal limit holds back %s.", plural(t.held, "drop", "drops"))
	}
	if len(t.failed) > 0 {
		fmt.Fprintf(&b, " ❌ Could not plan %s.", cell(strings.Join(t.failed, ", ")))
	}
	if len(t.fresh) > 0 {
		fmt.Fprintf(&b, " New in this pull request, planned after the merge: %s.", cell(strings.Join(t.fresh, ", ")))
	}
	return b.String()
}

// liveSections renders the live plan: a heading with when the live state
// was read and whether merging applies, then each cluster in the order
// of liveClusters. A cluster is one section whose head is its status line
// and whose rows are its statements (when few) and what it holds back,
// notes and skips; a cluster with more than liveListLimit statements adds
// a second section, a folded block of SQL whose rows are the statements.
// Either splits between rows when a comment is full, and opens again with
// the cluster's name.
func (r *Review) liveSections() []Section {
	rep := r.Live
	t := tally(rep)
	var b strings.Builder
	b.WriteString("#### Live plan\n\nRead from the databases")
	if !rep.ReadAt.IsZero() {
		b.WriteString(" at " + rep.ReadAt.UTC().Format("2006-01-02 15:04 MST"))
	}
	switch {
	case validSHA(rep.Commit) && rep.Version != "":
		fmt.Fprintf(&b, ", for the candidate bundle %s of %s", code(rep.Version), code(rep.Commit[:12]))
	case validSHA(rep.Commit):
		fmt.Fprintf(&b, ", for the candidate bundle of %s", code(rep.Commit[:12]))
	case rep.Version != "":
		fmt.Fprintf(&b, ", for the candidate bundle %s", code(rep.Version))
	}
	b.WriteString(". The statements are what the function would send, secrets redacted, in order.\n")
	if rep.DryRun {
		b.WriteString("\n> ⚠️ merging will only plan: the function runs with DBUSERS_DRY_RUN\n")
	}
	if t.drift > 0 {
		b.WriteString("\nA change marked ⚠️ **drift** " + driftNote + " (a grant made by hand that the merge revokes, an account made by hand that it drops).\n")
	}
	if len(rep.Clusters) == 0 {
		b.WriteString("\nThe live plan covers no cluster.\n")
	}
	sections := []Section{{Head: b.String()}}
	for _, c := range liveClusters(rep) {
		sections = append(sections, clusterSections(c)...)
	}
	return sections
}

// clusterSections renders one cluster of the live plan.
func clusterSections(c liveplan.Cluster) []Section {
	name := "**" + cell(c.Name) + "**"
	var about []string
	if c.Environment != "" {
		about = append(about, cell(c.Environment))
	}
	if c.Server != "" {
		about = append(about, cell(c.Server))
	}
	line := name
	if len(about) > 0 {
		line += " (" + strings.Join(about, ", ") + ")"
	}
	fenced := len(c.Changes) > liveListLimit
	n := len(c.Changes) + c.Truncated
	var rows []string
	switch {
	case c.Status == liveplan.Failed:
		line = "❌ " + line + ": could not plan"
		if c.Stage != "" {
			line += " at " + code(c.Stage)
		}
		if c.Error != "" {
			line += ": " + prose(c.Error)
		}
	case c.Status == liveplan.Unpublished:
		line = "🆕 " + line + ": new in this pull request, planned after the merge (a live plan reads only the clusters already published)"
	case n == 0 && len(c.Held) > 0:
		line = "⏸️ " + line + ": nothing runs; the removal limit holds back " + plural(len(c.Held), "drop", "drops")
	case n == 0:
		line = "✅ " + line + ": no change"
	default:
		drift := 0
		for _, ch := range c.Changes {
			if ch.Drift {
				drift++
			}
		}
		line = "📝 " + line + ": " + plural(n, "statement", "statements")
		if drift > 0 {
			line += fmt.Sprintf(", %d %s drift", drift, map[bool]string{true: "repairs", false: "repair"}[drift == 1])
		}
		if len(c.Held) > 0 {
			line += fmt.Sprintf(", %s held back", plural(len(c.Held), "drop", "drops"))
		}
		if !fenced {
			for _, ch := range c.Changes {
				rows = append(rows, changeItem(ch))
			}
		}
	}
	if c.LimitTripped != "" {
		rows = append(rows, "- 🛑 "+prose(c.LimitTripped)+"\n")
	}
	for _, h := range c.Held {
		rows = append(rows, "- ⏸️ held back, not run: "+prose(h.Summary)+"\n")
	}
	for _, n := range c.Notes {
		rows = append(rows, "- ℹ️ "+prose(n)+"\n")
	}
	for _, s := range c.Skipped {
		rows = append(rows, "- ⏭️ "+code(s.User)+" skipped: "+prose(s.Reason)+"\n")
	}
	if c.Truncated > 0 {
		rows = append(rows, fmt.Sprintf("- … %s not shown: the function's answer keeps the first ones, within Lambda's payload limit\n",
			plural(c.Truncated, "more change", "more changes")))
	}
	head := line + "\n"
	if len(rows) > 0 {
		head += "\n"
	}
	out := []Section{{Head: head, Rows: rows, ContinuedHead: name + " (continued)\n\n"}}
	if fenced {
		out = append(out, sqlSection(c))
	}
	return out
}

// changeItem is one change as a list item: its sentence, then its
// statement, drift marked.
func changeItem(ch liveplan.Change) string {
	var b strings.Builder
	b.WriteString("- ")
	if ch.Drift {
		b.WriteString("⚠️ **drift:** ")
	}
	b.WriteString(prose(ch.Summary))
	if ch.Drift {
		b.WriteString(" (" + driftNote + ")")
	}
	switch {
	case ch.Statement != "":
		b.WriteString("<br>" + code(ch.Statement))
	default:
		b.WriteString("<br>⚠️ no statement: " + prose(cmp.Or(ch.RenderError, "the function sent none")))
	}
	b.WriteString("\n")
	return b.String()
}

// sqlSection is a cluster's statements as one folded block of SQL, each
// under its sentence as a comment.
func sqlSection(c liveplan.Cluster) Section {
	drift := 0
	var rows []string
	for _, ch := range c.Changes {
		var b strings.Builder
		b.WriteString("-- ")
		if ch.Drift {
			drift++
			b.WriteString("DRIFT, " + driftNote + ": ")
		}
		b.WriteString(oneLine(ch.Summary) + "\n")
		if ch.Statement != "" {
			b.WriteString(sqlLine(ch.Statement) + ";\n")
		} else {
			b.WriteString("-- no statement: " + oneLine(cmp.Or(ch.RenderError, "the function sent none")) + "\n")
		}
		rows = append(rows, b.String())
	}
	on := " on <b>" + inlineHTML(c.Name) + "</b>"
	what := plural(len(c.Changes), "statement", "statements") + on
	if c.Truncated > 0 {
		what += fmt.Sprintf(" (%d more not shown)", c.Truncated)
	}
	if drift > 0 {
		what += fmt.Sprintf(", %d marked DRIFT", drift)
	}
	return Section{
		Head:          "<details><summary>" + what + "</summary>\n\n```sql\n",
		ContinuedHead: "<details><summary>statements" + on + " (continued)</summary>\n\n```sql\n",
		Rows:          rows,
		Tail:          "```\n\n</details>\n",
	}
}

// oneLine puts text on one line, for a SQL comment in a fenced block: a
// line that starts with "--" cannot close the fence.
func oneLine(s string) string {
	return strings.NewReplacer("\n", " ", "\r", " ").Replace(s)
}

// sqlLine puts a statement on one line of a fenced block. Nothing in a
// fence is markup; the one way out is a line that is a fence, so a
// statement that starts like one is indented past what a fence may be.
func sqlLine(s string) string {
	s = oneLine(s)
	if t := strings.TrimLeft(s, " "); strings.HasPrefix(t, "`") || strings.HasPrefix(t, "~") {
		return "    " + s
	}
	return s
}

// prose makes a sentence from the server or the declarations safe as
// markdown text and shows it as written. A word that GitHub would turn
// into a link or a mention (an account user@host, an address, a URL, an
// @name) or that holds a backtick becomes a code span, where neither
// happens; in every other word, cell's escapes keep HTML inert and tables
// whole, and the characters that would start emphasis, strikethrough or
// a link are escaped.
func prose(s string) string {
	words := strings.Split(oneLine(s), " ")
	for i, w := range words {
		lw := strings.ToLower(w)
		if strings.ContainsAny(w, "@`") || strings.Contains(lw, "://") || strings.Contains(lw, "www.") {
			words[i] = code(w) // not in a table: codeCell's \| would show
			continue
		}
		words[i] = escapeInline(cell(w))
	}
	return strings.Join(words, " ")
}

// escapeInline backslash-escapes *, ~, [ and ], and an _ that is not
// between two letters or digits (one inside a word never starts
// emphasis, and acme_frank should read as it is written).
func escapeInline(w string) string {
	if !strings.ContainsAny(w, "*_~[]") {
		return w
	}
	rs := []rune(w)
	alnum := func(i int) bool {
		if i < 0 || i >= len(rs) {
			return false
		}
		r := rs[i]
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
	}
	var b strings.Builder
	for i, r := range rs {
		switch {
		case r == '*' || r == '~' || r == '[' || r == ']':
			b.WriteByte('\\')
		case r == '_' && !(alnum(i-1) && alnum(i+1)):
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// liveText writes the live plan for a terminal.
func (r *Review) liveText(b *strings.Builder) {
	rep := r.Live
	if rep == nil {
		return
	}
	b.WriteString("\nlive plan")
	if !rep.ReadAt.IsZero() {
		b.WriteString(", read " + rep.ReadAt.UTC().Format("2006-01-02 15:04 MST"))
	}
	b.WriteString(":\n")
	if rep.DryRun {
		b.WriteString("  merging will only plan: the function runs with DBUSERS_DRY_RUN\n")
	}
	for _, c := range liveClusters(rep) {
		fmt.Fprintf(b, "  %s", plain(c.Name))
		if c.Environment != "" || c.Server != "" {
			fmt.Fprintf(b, " (%s)", plain(strings.Trim(c.Environment+", "+c.Server, ", ")))
		}
		switch n := len(c.Changes) + c.Truncated; {
		case c.Status == liveplan.Failed:
			fmt.Fprintf(b, ": could not plan at %s: %s\n", plain(c.Stage), plain(c.Error))
		case c.Status == liveplan.Unpublished:
			b.WriteString(": new in this pull request, planned after the merge\n")
		case n == 0:
			b.WriteString(": nothing runs\n")
		default:
			fmt.Fprintf(b, ": %s\n", plural(n, "statement", "statements"))
		}
		for _, ch := range c.Changes {
			mark := "- "
			if ch.Drift {
				mark = "! drift (" + driftNote + "): "
			}
			fmt.Fprintf(b, "    %s%s\n", mark, plain(ch.Summary))
			if ch.Statement != "" {
				fmt.Fprintf(b, "        %s\n", plain(ch.Statement))
			} else {
				fmt.Fprintf(b, "        no statement: %s\n", plain(ch.RenderError))
			}
		}
		if c.LimitTripped != "" {
			fmt.Fprintf(b, "    %s\n", plain(c.LimitTripped))
		}
		for _, h := range c.Held {
			fmt.Fprintf(b, "    held back, not run: %s\n", plain(h.Summary))
		}
		for _, n := range c.Notes {
			fmt.Fprintf(b, "    note: %s\n", plain(n))
		}
		for _, s := range c.Skipped {
			fmt.Fprintf(b, "    skipped %s: %s\n", plain(s.User), plain(s.Reason))
		}
		if c.Truncated > 0 {
			fmt.Fprintf(b, "    … %s not shown\n", plural(c.Truncated, "more change", "more changes"))
		}
	}
}
