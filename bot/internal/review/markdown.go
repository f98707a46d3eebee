package review

import (
	"bytes"
	"embed"
	"fmt"
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
	*Review
	Headline  string
	Risks     []riskView
	Summary   summaryCounts
	Continued bool
}

type summaryCounts struct {
	Summary
	Environments []envView
}

type envView struct {
	EnvCount
	Production bool
}

type riskView struct {
	Risk
	ShowAffected bool
	AffectedList string
}

type userView struct {
	User
	Open      bool
	Lines     []lineView
	Continued bool
}

type lineView struct {
	Line
	Symbol   string
	Sentence string
}

// Sections renders the review as markdown sections: the summary, whose
// rows are the risks, first; then the configuration changes, the heading
// of the users and one section per user, whose rows are its table's.
// A comment that must be split keeps the first section whole when it can.
func (r *Review) Sections() []Section {
	sv := summaryView{Review: r, Headline: r.headline()}
	sv.Summary.Summary = r.Summary
	for _, e := range r.Summary.Environments {
		sv.Summary.Environments = append(sv.Summary.Environments, envView{e, desired.IsProduction(e.Environment)})
	}
	for _, k := range r.Risks {
		v := riskView{Risk: k}
		if len(k.Affected) > 1 || (len(k.Affected) == 1 && !strings.Contains(k.Text, k.Affected[0])) {
			v.ShowAffected = true
			names := k.Affected
			more := ""
			if len(names) > affectedLimit {
				more = fmt.Sprintf(" and %d more", len(names)-affectedLimit)
				names = names[:affectedLimit]
			}
			v.AffectedList = strings.Join(names, ", ") + more
		}
		sv.Risks = append(sv.Risks, v)
	}
	sections := []Section{section("summary", func(c bool) any { sv.Continued = c; return sv }, sv.Risks)}
	if len(r.Settings) > 0 {
		sections = append(sections, section("settings", continuedView, r.Settings))
	}
	if len(r.Users) > 0 {
		sections = append(sections, Section{Head: execute("users", len(r.Users))})
	}
	for _, u := range r.Users {
		uv := userView{User: u, Open: len(r.Users) <= openLimit}
		for _, l := range u.Lines {
			uv.Lines = append(uv.Lines, lineView{Line: l, Symbol: symbol(l.Kind), Sentence: cell(l.Short())})
		}
		sections = append(sections, section("user", func(c bool) any { uv.Continued = c; return uv }, uv.Lines))
	}
	return sections
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

func (r *Review) headline() string {
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
// section whose rows are the problems, so that thousands of them split
// between comments with the table's header repeated.
func InvalidSections(diags diag.List) []Section {
	errs, warns := diags.Count()
	head := func(c bool) any {
		return struct {
			Errors, Warnings int
			Continued        bool
		}{errs, warns, c}
	}
	return []Section{section("invalid", head, diags)}
}

// InvalidMarkdown is InvalidSections as one markdown document.
func InvalidMarkdown(diags diag.List) string {
	return join(InvalidSections(diags))
}

// Text renders the review for a terminal.
func (r *Review) Text() string {
	var b strings.Builder
	if r.Empty() {
		b.WriteString("dbusers plan: no change to any database account\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "note: %s\n", plain(n))
		}
		return b.String()
	}
	fmt.Fprintf(&b, "dbusers plan %s → %s (%s): %s\n", r.Base, r.Head, r.Date, r.headline())
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", plain(n))
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
	if len(r.Settings) > 0 {
		b.WriteString("\nconfiguration changes:\n")
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
