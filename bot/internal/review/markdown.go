package review

import (
	"bytes"
	"embed"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"text/template"
	"unicode"

	"github.com/dbusers/dbusers/bot/internal/desired"
	"github.com/dbusers/dbusers/bot/internal/diag"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

var templates = template.Must(template.New("").Funcs(template.FuncMap{
	"join":       strings.Join,
	"cell":       cell,
	"code":       code,
	"codeCell":   codeCell,
	"inlineHTML": inlineHTML,
}).ParseFS(templateFS, "templates/*.tmpl"))

// openLimit is how many users a review shows unfolded; past it, every
// user's section is folded so the risks and summary stay on screen.
const openLimit = 5

// affectedLimit caps the names listed under one risk.
const affectedLimit = 30

// Section is one part of the rendered review that a comment split in
// several may divide only between Rows, repeating the head and tail in
// every piece so that each comment renders on its own (a user's table
// keeps its header row). Its markdown is Head, the rows, then Tail.
//
// ghcomment declares the same struct, which callers convert to with
// ghcomment.Section(s): review stays pure and knows no comment API.
type Section struct {
	// Head opens the section: for a user, the <details> and <summary>
	// lines and the table's header and delimiter rows.
	Head string
	// Rows are the table rows or list items, each ending with a newline.
	Rows []string
	// Tail closes the section, e.g. "\n</details>\n".
	Tail string
	// ContinuedHead opens a piece after the first: the head marked
	// "(continued)"; "" means Head.
	ContinuedHead string
}

// Markdown is the section as one block of markdown.
func (s Section) Markdown() string {
	return s.Head + strings.Join(s.Rows, "") + s.Tail
}

type summaryView struct {
	Empty     bool
	Continued bool
	// Headline, Comparing, Who and Merging are markdown, escaped.
	Headline, Comparing, Who, Merging string
	LiveNote                          string
	Notes                             []string
	Risks                             []riskView
}

type countsView struct {
	Summary
	Environments []envView
}

type envView struct {
	EnvCount
	Production bool
}

type riskView struct {
	Level        Level
	Text         string
	ShowAffected bool
	AffectedList string
}

type userView struct {
	User
	Open      bool
	Lines     []lineView
	Clusters  []string
	Continued bool
}

type lineView struct {
	Line
	Symbol   string
	Sentence string
}

// usersView is the heading above the users' sections.
type usersView struct {
	Shown int
	// Folded counts the users left out because a role template change is
	// all that changes for them; Templates names those roles.
	Folded    int
	Templates string
}

// Sections renders the review as markdown sections, in the order a
// reviewer reads it: the summary (headline, who gets what, what merging
// does, then the risks as its rows); the configuration changes, each role
// template change with its risk and holders; the counts; the live plan;
// one section per user; and a footer that names the commit and the run.
// A comment that must be split keeps the first section whole when it can.
func (r *Review) Sections() []Section {
	sv := summaryView{Empty: r.Empty(), Headline: r.headline(), Comparing: r.comparing(), Who: r.who(), Merging: r.merging(), Notes: r.Notes}
	if r.Live == nil {
		sv.LiveNote = r.LiveNote
	}
	// A role template change is shown once, under the configuration
	// changes with its risk's text and its holders. The risks keep one
	// line that points there, so that a reviewer who reads only the red
	// marks still sees it; the holders whose only change it is are folded
	// out of the users' sections (see userFolded).
	var roleRisks []Risk
	for _, k := range r.Risks {
		if k.Role != "" {
			roleRisks = append(roleRisks, k)
			continue
		}
		sv.Risks = append(sv.Risks, newRiskView(k))
	}
	sv.Risks = append(sv.Risks, rolePointers(roleRisks, r.Roles)...)
	sections := []Section{section("summary", func(c bool) any { sv.Continued = c; return sv }, sv.Risks)}
	if !sv.Empty {
		if rows := r.settingsRows(roleRisks); len(rows) > 0 {
			sections = append(sections, Section{Head: execute("settings", continuedView(false)), ContinuedHead: execute("settings", continuedView(true)), Rows: rows})
		}
		if len(r.Users) > 0 {
			cv := countsView{Summary: r.Summary}
			for _, e := range r.Summary.Environments {
				cv.Environments = append(cv.Environments, envView{e, desired.IsProduction(e.Environment)})
			}
			sections = append(sections, Section{Head: execute("counts", cv)})
		}
	}
	if r.Live != nil {
		sections = append(sections, r.liveSections()...)
	}
	var shown []User
	uv := usersView{}
	for _, u := range r.Users {
		if userFolded(u) {
			uv.Folded++
			continue
		}
		shown = append(shown, u)
	}
	uv.Shown = len(shown)
	if uv.Folded > 0 {
		var roles []string
		for _, rc := range r.Roles {
			roles = append(roles, rc.Role)
		}
		uv.Templates = strings.Join(roles, ", ")
	}
	if len(r.Users) > 0 {
		sections = append(sections, Section{Head: execute("users", uv)})
	}
	for _, u := range shown {
		uv := userView{User: u, Open: len(shown) <= openLimit}
		if u.Status == Removed {
			// One line: the account goes, whatever it held.
			uv.Clusters = u.clusters()
			sections = append(sections, Section{Head: execute("removed", uv)})
			continue
		}
		for _, l := range u.Lines {
			uv.Lines = append(uv.Lines, lineView{Line: l, Symbol: symbol(l.Kind), Sentence: cell(l.Short())})
		}
		sections = append(sections, section("user", func(c bool) any { uv.Continued = c; return uv }, uv.Lines))
	}
	if f := footer(r.Context); f != "" {
		sections = append(sections, Section{Head: f})
	}
	return sections
}

// userFolded reports whether a role template change is all that changes
// for u. Such a holder's section would repeat, user after user, the one
// change the configuration changes show with every holder's name (a
// template held by hundreds would bury the other users): it is left out,
// and the users' heading says how many were.
func userFolded(u User) bool {
	if u.Status != Changed || u.Auth != "" || len(u.Lines) == 0 {
		return false
	}
	for _, l := range u.Lines {
		if l.Template == "" {
			return false
		}
	}
	return true
}

func newRiskView(k Risk) riskView {
	v := riskView{Level: k.Level, Text: k.Text}
	if len(k.Affected) > 1 || (len(k.Affected) == 1 && !strings.Contains(k.Text, k.Affected[0])) {
		v.ShowAffected = true
		v.AffectedList = capList(k.Affected, affectedLimit)
	}
	return v
}

// capList joins names, the first limit of them, "and N more" after.
func capList(names []string, limit int) string {
	more := ""
	if len(names) > limit {
		more = fmt.Sprintf(" and %d more", len(names)-limit)
		names = names[:limit]
	}
	return strings.Join(names, ", ") + more
}

// rolePointers are the risks' lines about the role template changes,
// one per role, that point to the configuration changes, which show each
// change with its holders.
func rolePointers(risks []Risk, roles []RoleChange) []riskView {
	var out []riskView
	for _, k := range risks {
		for _, rc := range roles {
			if rc.Role != k.Role {
				continue
			}
			text := fmt.Sprintf("role template %s changes the access of its %s", rc.Role, plural(len(rc.Holders), "holder", "holders"))
			if rc.Gains != "" {
				text = fmt.Sprintf("role template %s now grants %s to its %s, %d of them on production", rc.Role, rc.Gains,
					plural(len(rc.Holders), "holder", "holders"), rc.ProductionHolders)
			}
			out = append(out, riskView{Level: k.Level, Text: text + ": see Configuration changes"})
		}
	}
	return out
}

// settingsRows are the configuration changes: the role template changes
// first, each with its risk and holders, then the rest.
func (r *Review) settingsRows(roleRisks []Risk) []string {
	var rows []string
	for _, rc := range r.Roles {
		v := riskView{Text: rc.Change}
		for _, k := range roleRisks {
			if k.Role == rc.Role {
				v = riskView{Level: k.Level, Text: k.Text}
			}
		}
		if len(rc.Holders) > 0 {
			v.ShowAffected, v.AffectedList = true, capList(rc.Holders, affectedLimit)
		}
		rows = append(rows, execute("settings.role", v))
	}
	for _, s := range r.Settings {
		rows = append(rows, execute("settings.row", s))
	}
	return rows
}

// section renders the section that the templates name (its head, from the
// view that head returns, once for Head and once, continued, for
// ContinuedHead), name.row (once per row) and name.tail (if defined).
func section[R any](name string, head func(continued bool) any, rows []R) Section {
	s := Section{Head: execute(name, head(false)), ContinuedHead: execute(name, head(true))}
	for _, row := range rows {
		s.Rows = append(s.Rows, execute(name+".row", row))
	}
	if templates.Lookup(name+".tail") != nil {
		s.Tail = execute(name+".tail", nil)
	}
	return s
}

// continuedView is the view of a head that shows nothing but whether it
// opens a continuation.
func continuedView(c bool) any { return struct{ Continued bool }{c} }

// Markdown is the whole review as one markdown document.
func (r *Review) Markdown() string {
	return join(r.Sections())
}

// join is sections as one document: a blank line between two sections.
func join(sections []Section) string {
	var b strings.Builder
	for i, s := range sections {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(s.Markdown())
	}
	return b.String()
}

// headline is the comment's title, short enough not to wrap: the risks
// first, then how many users change. The names and counts follow it.
func (r *Review) headline() string {
	users := "configuration only"
	switch n := len(r.Users); {
	case n == 1:
		users = "1 user changes"
	case n > 1:
		users = fmt.Sprintf("%d users change", n)
	}
	high := countHigh(r.Risks)
	switch notices := len(r.Risks) - high; {
	case high > 0:
		return fmt.Sprintf("🔴 %s · %s", plural(high, "high risk", "high risks"), users)
	case notices > 0:
		return fmt.Sprintf("🟠 %s · %s", plural(notices, "notice", "notices"), users)
	}
	return users
}

// counts is the review in numbers, for the terminal's first line.
func (r *Review) counts() string {
	s := r.Summary
	counts := func(what string, added, removed, changed int, verbs [3]string) string {
		var parts []string
		for i, n := range []int{added, removed, changed} {
			if n > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", n, verbs[i]))
			}
		}
		if len(parts) == 0 {
			return ""
		}
		return what + " " + strings.Join(parts, ", ")
	}
	var parts []string
	for _, p := range []string{
		counts("users:", s.UsersAdded, s.UsersRemoved, s.UsersChanged, [3]string{"added", "removed", "changed"}),
		counts("grants:", s.GrantsAdded, s.GrantsRevoked, s.GrantsChanged, [3]string{"added", "revoked", "changed"}),
	} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	h := strings.Join(parts, "; ")
	if len(parts) == 0 {
		h = "configuration changes only"
	}
	// A pull request that only weakens the safety rails is high-risk too,
	// and says so first.
	if n := countHigh(r.Risks); n > 0 {
		h += fmt.Sprintf(" — %d high-risk change(s)", n)
	}
	return h
}

// comparing names the two revisions, the head's commit and the date.
func (r *Review) comparing() string {
	head := code(r.Head)
	if sha := r.Context.HeadSHA; validSHA(sha) && !strings.Contains(r.Head, sha[:12]) {
		head += " at " + code(sha[:12])
	}
	return fmt.Sprintf("Comparing %s → %s, evaluated on %s.", code(r.Base), head, cell(r.Date))
}

// clusterLimit caps the clusters that the sentence about merging names.
const clusterLimit = 10

// whoLimit caps the names of the who-gets-what line.
const whoLimit = 12

// who is the one line of who gets what: +added −removed ~changed, in that
// order and by name, capped at whoLimit names; the holders whose only
// change is a role template's are counted, not named.
func (r *Review) who() string {
	var names []string
	folded := 0
	for _, st := range []Status{Added, Removed, Changed} {
		for _, u := range r.Users {
			switch {
			case u.Status != st:
			case userFolded(u):
				folded++
			default:
				names = append(names, map[Status]string{Added: "+", Removed: "−", Changed: "~"}[st]+u.Name)
			}
		}
	}
	var out []string
	if len(names) > 0 {
		more := ""
		if len(names) > whoLimit {
			more = fmt.Sprintf(" … and %d more", len(names)-whoLimit)
			names = names[:whoLimit]
		}
		out = append(out, code(strings.Join(names, " "))+more)
	}
	if folded > 0 {
		var roles []string
		for _, rc := range r.Roles {
			roles = append(roles, rc.Role)
		}
		out = append(out, fmt.Sprintf("~%s of %s %s", plural(folded, "holder", "holders"),
			map[bool]string{true: "role", false: "roles"}[len(roles) == 1], cell(strings.Join(roles, ", "))))
	}
	return strings.Join(out, " · ")
}

// merging says what merging the pull request does: from the live plan
// when there is one (what the function will run, or only plan), else
// which clusters the declarations' change reaches.
func (r *Review) merging() string {
	if r.Live != nil {
		return liveMerging(r.Live)
	}
	var clusters []string
	for _, e := range r.Summary.Environments {
		for _, c := range e.Clusters {
			if !slices.Contains(clusters, c) {
				clusters = append(clusters, c)
			}
		}
	}
	auth := 0
	for _, u := range r.Users {
		if u.Auth != "" {
			auth++
		}
	}
	switch {
	case len(clusters) > 0:
		return fmt.Sprintf("**Merging** publishes the configuration; the Lambda then changes accounts on %s: %s.",
			plural(len(clusters), "cluster", "clusters"), cell(capList(clusters, clusterLimit)))
	case auth > 0:
		return fmt.Sprintf("**Merging** publishes the configuration; the Lambda then changes the authentication of %s on every cluster where they have an account.",
			plural(auth, "user", "users"))
	}
	return "**Merging** publishes the configuration; no declared grant changes."
}

// plural is n with the noun for one or for many.
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// validSHA reports whether s is a commit id: hex, 40 or 64 digits.
func validSHA(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	return strings.Trim(s, "0123456789abcdef") == ""
}

// footer names the head commit, when the review was made and the
// workflow run that made it; "" when the context is empty. A full commit
// id in a comment is a link on GitHub.
func footer(c Context) string {
	var parts []string
	if validSHA(c.HeadSHA) {
		parts = append(parts, "head "+c.HeadSHA)
	}
	if !c.GeneratedAt.IsZero() {
		parts = append(parts, "made "+c.GeneratedAt.UTC().Format("2006-01-02 15:04 MST"))
	}
	if u, ok := linkTarget(c.RunURL); ok {
		parts = append(parts, "[workflow run]("+u+")")
	}
	if len(parts) == 0 {
		return ""
	}
	return "<sub>dbusers · " + strings.Join(parts, " · ") + "</sub>\n"
}

// linkTarget makes a URL safe as a markdown link's destination: only
// http and https, and nothing that could end the destination or the line.
func linkTarget(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if raw == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", false
	}
	s := u.String()
	if strings.ContainsAny(s, " ()<>\n\r\\`") {
		return "", false
	}
	return s, true
}

func countHigh(rs []Risk) int {
	n := 0
	for _, r := range rs {
		if r.Level == High {
			n++
		}
	}
	return n
}

func symbol(k Kind) string {
	switch k {
	case Grant:
		return "➕"
	case Revoke:
		return "➖"
	case Elevate:
		return "⬆️"
	case Downgrade:
		return "⬇️"
	case Expiry:
		return "⏳"
	}
	return "🔁"
}

// cell makes text safe inside a markdown table cell and inert as HTML: a
// user-controlled string must not break the table or inject markup.
// Backslashes are escaped too, so that text ending in one cannot turn the
// escaped pipe that follows into a cell boundary.
func cell(s string) string {
	return cellReplacer.Replace(s)
}

var cellReplacer = strings.NewReplacer("&", "&amp;", "\\", "\\\\", "|", "\\|", "\n", " ", "\r", " ", "<", "&lt;", ">", "&gt;")

// inlineHTML makes text safe inside an HTML element on one line, such as
// the <summary> of a user's section (markdown is not parsed there, so
// cell's backslash would show): a newline would end the HTML block.
func inlineHTML(s string) string {
	return template.HTMLEscapeString(strings.NewReplacer("\n", " ", "\r", " ").Replace(s))
}

// code renders text as one inline code span, whatever backticks it holds:
// the fence is one backtick longer than the longest run inside, and a
// space pads content that starts or ends with a backtick or with a space
// on both sides (CommonMark strips one such pair). Empty text stays empty.
func code(s string) string {
	s = strings.NewReplacer("\n", " ", "\r", " ").Replace(s)
	if s == "" {
		return ""
	}
	longest, run := 0, 0
	for _, r := range s {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") ||
		(strings.HasPrefix(s, " ") && strings.HasSuffix(s, " ") && strings.Trim(s, " ") != "") {
		s = " " + s + " "
	}
	fence := strings.Repeat("`", longest+1)
	return fence + s + fence
}

// codeCell is code for a table cell: GitHub splits a row at every
// unescaped pipe before it parses code spans.
func codeCell(s string) string {
	return strings.ReplaceAll(code(s), "|", "\\|")
}

func execute(name string, data any) string {
	var b bytes.Buffer
	if err := templates.ExecuteTemplate(&b, name, data); err != nil {
		// Templates are fixed and tested; a failure is a programming error.
		panic(fmt.Sprintf("review template %s: %v", name, err))
	}
	return b.String()
}

// InvalidSections renders validation problems in place of a plan: one
// section whose rows are the problems, errors first, so that thousands of
// them split between comments with the table's header repeated; then the
// footer of c.
//
// changed lists the files the pull request changes (slash-separated,
// relative to the declarations' root, as diagnostics name them): only
// their warnings are shown, and the comment says how many others it
// leaves out. A warning elsewhere was there before the pull request, and
// would bury its own problems. changed nil means the files are not known
// (no merge base, say): then every warning shows.
func InvalidSections(diags diag.List, changed []string, c Context) []Section {
	inPR := make(map[string]bool, len(changed))
	for _, p := range changed {
		inPR[p] = true
	}
	var errs, warns diag.List
	hidden := 0
	for _, d := range diags {
		switch {
		case d.Severity == diag.Error:
			errs = append(errs, d)
		case changed == nil || inPR[d.File]:
			warns = append(warns, d)
		default:
			hidden++
		}
	}
	head := func(cont bool) any {
		return struct {
			Errors, Warnings, Hidden int
			Continued                bool
		}{len(errs), len(warns), hidden, cont}
	}
	sections := []Section{section("invalid", head, slices.Concat(errs, warns))}
	if f := footer(c); f != "" {
		sections = append(sections, Section{Head: f})
	}
	return sections
}

// InvalidMarkdown is InvalidSections as one markdown document.
func InvalidMarkdown(diags diag.List, changed []string, c Context) string {
	return join(InvalidSections(diags, changed, c))
}

// Text renders the review for a terminal.
func (r *Review) Text() string {
	var b strings.Builder
	if r.Empty() {
		b.WriteString("dbusers plan: no change to any database account\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "note: %s\n", plain(n))
		}
		r.liveText(&b)
		return b.String()
	}
	fmt.Fprintf(&b, "dbusers plan %s → %s (%s): %s\n", r.Base, r.Head, r.Date, r.counts())
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", plain(n))
	}
	if r.Live == nil && r.LiveNote != "" {
		fmt.Fprintf(&b, "live plan: %s\n", plain(r.LiveNote))
	}
	if len(r.Risks) > 0 {
		b.WriteString("\nneeds a careful review:\n")
		for _, k := range r.Risks {
			mark := "!"
			if k.Level == High {
				mark = "!!"
			}
			fmt.Fprintf(&b, "  %-2s %s\n", mark, plain(k.Text))
			if len(k.Affected) > 1 {
				fmt.Fprintf(&b, "     affected: %s\n", strings.Join(k.Affected, ", "))
			}
		}
	}
	if len(r.Settings) > 0 || len(r.Roles) > 0 {
		b.WriteString("\nconfiguration changes:\n")
		for _, rc := range r.Roles {
			fmt.Fprintf(&b, "  - %s\n", plain(rc.Change))
		}
		for _, s := range r.Settings {
			fmt.Fprintf(&b, "  - %s\n", plain(s))
		}
	}
	for _, u := range r.Users {
		fmt.Fprintf(&b, "\n%s (%s, %s, %s): %s\n", u.Name, u.Account, plain(u.Kind), plain(u.Owner), u.Status)
		if u.Auth != "" {
			fmt.Fprintf(&b, "  ~ %s\n", plain(u.Auth))
		}
		for _, l := range u.Lines {
			fmt.Fprintf(&b, "  %s %s\n", textSymbol(l.Kind), l.Sentence())
		}
	}
	r.liveText(&b)
	return b.String()
}

// plain shows control characters of user-controlled text as escapes, so
// that an owner cannot move the terminal's cursor or start a line that a
// CI runner takes for a command (GitHub Actions reads "::" lines).
func plain(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) {
			fmt.Fprintf(&b, "\\x%02x", r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func textSymbol(k Kind) string {
	switch k {
	case Grant, Elevate:
		return "+"
	case Revoke, Downgrade:
		return "-"
	}
	return "~"
}
