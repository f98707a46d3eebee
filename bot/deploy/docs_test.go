package deploy

import (
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/dbusers/dbusers/bot/internal/announce"
)

// This file holds the documentation to what it documents: the README's
// two commands, its headline figures against docs/performance.md (the one
// source of measured figures), the figures other pages quote from it, the
// template values the docs state, and every relative link and section
// name that the docs, the code and the workflows point at.

// repoRoot is the repository, seen from bot/deploy.
const repoRoot = "../.."

// doc is one markdown file of the repository: its text outside fenced
// code blocks, and the anchors of its headings.
type doc struct {
	path    string // relative to the repository root
	text    string // the whole file
	prose   string // the file with fenced code blocks blanked out
	anchors map[string]bool
	heads   []string // heading texts, backticks removed
	bolds   []string // **bold** spans of the prose
}

var (
	fenceRe = regexp.MustCompile("(?m)^[ \t]*(```|~~~)")
	headRe  = regexp.MustCompile(`(?m)^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$`)
	boldRe  = regexp.MustCompile(`\*\*([^*\n]+)\*\*`)
)

// loadDoc reads a markdown file of the repository.
func loadDoc(t *testing.T, rel string) *doc {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, rel))
	if err != nil {
		t.Fatal(err)
	}
	d := &doc{path: rel, text: string(data), anchors: map[string]bool{}}
	d.prose = blankFences(d.text)
	seen := map[string]int{}
	for _, m := range headRe.FindAllStringSubmatch(d.prose, -1) {
		head := strings.ReplaceAll(m[2], "`", "")
		d.heads = append(d.heads, head)
		slug := slugify(m[2])
		if n := seen[slug]; n > 0 {
			d.anchors[fmt.Sprintf("%s-%d", slug, n)] = true
		} else {
			d.anchors[slug] = true
		}
		seen[slug]++
	}
	for _, m := range boldRe.FindAllStringSubmatch(d.prose, -1) {
		d.bolds = append(d.bolds, m[1])
	}
	return d
}

// blankFences replaces the lines of fenced code blocks (fences included)
// with empty lines, so that line numbers stay and code is not prose.
func blankFences(text string) string {
	lines := strings.Split(text, "\n")
	in := false
	for i, l := range lines {
		if fenceRe.MatchString(l) {
			in = !in
			lines[i] = ""
			continue
		}
		if in {
			lines[i] = ""
		}
	}
	return strings.Join(lines, "\n")
}

// slugify is GitHub's anchor for a heading: lowercase, every character
// that is not a letter, digit, mark, '_', '-' or space dropped, spaces
// made hyphens.
func slugify(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case unicode.IsLetter(r), unicode.IsDigit(r), unicode.IsMark(r), r == '_', r == '-':
			b.WriteRune(r)
		case r == ' ':
			b.WriteRune('-')
		}
	}
	return b.String()
}

// docs returns README.md and every docs/*.md.
func docs(t *testing.T) []*doc {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := []*doc{loadDoc(t, "README.md")}
	for _, p := range paths {
		rel, _ := filepath.Rel(repoRoot, p)
		out = append(out, loadDoc(t, filepath.ToSlash(rel)))
	}
	return out
}

// section returns the text under the heading that starts with prefix, up
// to the next heading of the same or a higher level.
func (d *doc) section(t *testing.T, prefix string) string {
	t.Helper()
	level := strings.Count(strings.Fields(prefix)[0], "#")
	start := strings.Index(d.text, "\n"+prefix)
	if start < 0 {
		t.Fatalf("%s: no section %q", d.path, prefix)
	}
	rest := d.text[start+1:]
	body := rest[strings.Index(rest, "\n")+1:]
	for _, m := range headRe.FindAllStringSubmatchIndex(blankFences(body), -1) {
		if m[3]-m[2] <= level {
			return body[:m[0]]
		}
	}
	return body
}

// tableRows returns the body rows of every markdown table in text, each
// as its cells; a '|' inside backticks does not split a cell.
func tableRows(text string) [][]string {
	var rows [][]string
	for l := range strings.SplitSeq(text, "\n") {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "|") || !strings.HasSuffix(l, "|") || strings.HasPrefix(l, "| ---") || strings.HasPrefix(l, "|---") {
			continue
		}
		var cells []string
		var cell strings.Builder
		code := false
		for _, r := range l[1 : len(l)-1] {
			switch {
			case r == '`':
				code = !code
				cell.WriteRune(r)
			case r == '|' && !code:
				cells = append(cells, strings.TrimSpace(cell.String()))
				cell.Reset()
			default:
				cell.WriteRune(r)
			}
		}
		rows = append(rows, append(cells, strings.TrimSpace(cell.String())))
	}
	if len(rows) > 0 {
		rows = rows[1:] // the header
	}
	return rows
}

var codeSpanRe = regexp.MustCompile("`([^`]+)`")

// command is the first code span of a table cell: the command of a row.
func command(cell string) string {
	if m := codeSpanRe.FindStringSubmatch(cell); m != nil {
		return m[1]
	}
	return ""
}

var numberRe = regexp.MustCompile(`\d[\d,]*(?:\.\d+)?`)

// TestReadmeTwoCommands: the README's "Two commands" are exactly these
// two, and the demo they run exists.
func TestReadmeTwoCommands(t *testing.T) {
	readme := loadDoc(t, "README.md")
	sec := readme.section(t, "## Two commands")
	start := strings.Index(sec, "```sh\n")
	if start < 0 {
		t.Fatal(`README.md, "Two commands": no sh code block`)
	}
	block := sec[start+len("```sh\n"):]
	block = block[:strings.Index(block, "```")]
	var got []string
	for l := range strings.SplitSeq(strings.TrimSpace(block), "\n") {
		if i := strings.Index(l, " #"); i >= 0 {
			l = l[:i]
		}
		got = append(got, strings.TrimSpace(l))
	}
	if want := []string{"go run ./bot/cmd/demo", "go test ./..."}; !slices.Equal(got, want) {
		t.Errorf(`README.md, "Two commands": %q, want exactly %q`, got, want)
	}
	if _, err := os.Stat(filepath.Join(repoRoot, "bot", "cmd", "demo", "main.go")); err != nil {
		t.Errorf("the demo the README runs: %v", err)
	}
}

// perfRow is a row of the figures table of docs/performance.md.
type perfRow struct{ text, command string }

func perfRows(t *testing.T) []perfRow {
	t.Helper()
	perf := loadDoc(t, "docs/performance.md")
	var out []perfRow
	for _, cells := range tableRows(perf.section(t, "## The figures")) {
		if len(cells) != 4 {
			t.Fatalf("docs/performance.md, the figures: a row of %d cells, want 4 (what, measured, target, reproduce): %q", len(cells), cells)
		}
		r := perfRow{text: strings.Join(cells[:3], " | "), command: command(cells[3])}
		if r.command == "" {
			t.Errorf("docs/performance.md: the row %q has no command that reproduces it", cells[0])
		}
		out = append(out, r)
	}
	if len(out) < 10 {
		t.Fatalf("docs/performance.md: %d rows in the figures table; the test reads the wrong table", len(out))
	}
	return out
}

// TestHeadlineFiguresMatchPerformance: every figure of the README's
// headline table is stated identically in docs/performance.md, in the
// row(s) with the same reproducing command, and each bold figure is there
// exactly once.
func TestHeadlineFiguresMatchPerformance(t *testing.T) {
	readme := loadDoc(t, "README.md")
	rows := perfRows(t)
	headline := tableRows(readme.section(t, "## Headline figures"))
	if len(headline) < 5 {
		t.Fatalf("README.md, headline figures: %d rows", len(headline))
	}
	for _, cells := range headline {
		if len(cells) != 3 {
			t.Fatalf("README.md, headline figures: a row of %d cells, want 3 (what, figure, reproduce): %q", len(cells), cells)
		}
		what, figure, cmd := cells[0], cells[1], command(cells[2])
		if cmd == "" {
			t.Errorf("README.md, headline %q: no reproducing command", what)
			continue
		}
		var same []string
		for _, r := range rows {
			if r.command == cmd {
				same = append(same, r.text)
			}
		}
		if len(same) == 0 {
			t.Errorf("README.md, headline %q: docs/performance.md has no row reproduced by `%s`", what, cmd)
			continue
		}
		source := strings.Join(same, " | ")
		numbers := numberRe.FindAllString(source, -1)
		for _, n := range numberRe.FindAllString(figure, -1) {
			if !slices.Contains(numbers, n) {
				t.Errorf("README.md, headline %q: %s is not in docs/performance.md's row for `%s`", what, n, cmd)
			}
		}
		bolds := boldRe.FindAllStringSubmatch(figure, -1)
		if len(bolds) == 0 {
			t.Errorf("README.md, headline %q: no figure in bold", what)
		}
		for _, b := range bolds {
			if !strings.Contains(source, b[0]) {
				t.Errorf("README.md, headline %q: %s is not in docs/performance.md's row for `%s`", what, b[0], cmd)
			}
			n := 0
			for _, r := range rows {
				n += strings.Count(r.text, b[0])
			}
			if n != 1 {
				t.Errorf("README.md, headline %q: %s appears %d times in docs/performance.md's table, want once", what, b[0], n)
			}
		}
	}
}

// quoted are the measurements other pages quote from docs/performance.md:
// a clause that matches the pattern is about that measurement, and every
// duration in it must be one that performance.md gives for it.
var quoted = []struct {
	name    string
	clause  *regexp.Regexp
	skip    *regexp.Regexp // clauses about something else
	command string         // the perf row's command names the benchmark
}{
	{"no-op reconcile of 1,000 users", regexp.MustCompile(`no-op.*1,000 users|1,000 users.*no-op`), regexp.MustCompile(`100 clusters`), "-bench=Noop1000"},
	{"converge of 1,000 users", regexp.MustCompile(`(?i)converg.*1,000 users|1,000 users.*converg`), regexp.MustCompile(`100 clusters`), "-bench=Converge1000"},
	{"300 changes", regexp.MustCompile(`300 changes`), nil, "-bench=Change10Percent1000"},
}

var (
	clauseRe   = regexp.MustCompile(`[.;:](\s|$)|\n\s*\n`)
	durationRe = regexp.MustCompile(`\d[\d,]*(?:\.\d+)?(?:–\d[\d,]*(?:\.\d+)?)? ?(?:ms|s)\b`)
)

// quotingFiles are the pages and templates that may quote a measurement:
// their prose (code blocks and the README's headline table left out,
// YAML comments joined into sentences).
func quotingFiles(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, d := range docs(t) {
		switch d.path {
		case "docs/performance.md":
			continue
		case "README.md":
			out[d.path] = strings.Replace(d.prose, d.section(t, "## Headline figures"), "", 1)
		default:
			out[d.path] = d.prose
		}
	}
	yamls, err := filepath.Glob(filepath.Join(repoRoot, "bot", "deploy", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range yamls {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for l := range strings.SplitSeq(string(data), "\n") {
			l = strings.TrimSpace(l)
			l = strings.TrimSpace(strings.TrimLeft(l, "#"))
			b.WriteString(l + " ")
		}
		rel, _ := filepath.Rel(repoRoot, p)
		out[filepath.ToSlash(rel)] = b.String()
	}
	return out
}

// TestQuotedFiguresMatchPerformance: wherever a page or a template quotes
// a measurement that docs/performance.md holds (the no-op run, the
// converge, a run of 300 changes), it quotes a figure performance.md
// gives, not an older one.
func TestQuotedFiguresMatchPerformance(t *testing.T) {
	rows := perfRows(t)
	files := quotingFiles(t)
	names := slices.Sorted(maps.Keys(files))
	for _, q := range quoted {
		var source string
		for _, r := range rows {
			if strings.Contains(r.command, q.command+" ") {
				source += r.text + " | "
			}
		}
		if source == "" {
			t.Fatalf("docs/performance.md has no row reproduced by %s", q.command)
		}
		found := 0
		for _, name := range names {
			for _, clause := range clauseRe.Split(files[name], -1) {
				clause = strings.Join(strings.Fields(clause), " ")
				if !q.clause.MatchString(clause) || (q.skip != nil && q.skip.MatchString(clause)) {
					continue
				}
				for _, d := range durationRe.FindAllString(clause, -1) {
					found++
					if !strings.Contains(source, d) {
						t.Errorf("%s quotes %s for the %s, which docs/performance.md does not give (its row: %s): %q", name, d, q.name, source, clause)
					}
				}
			}
		}
		if found == 0 {
			t.Errorf("no page quotes the %s any more: the pattern %s finds nothing to check", q.name, q.clause)
		}
	}
}

// TestDocsStateTheTemplate: the control plane's MemorySize default, the
// two functions' timeouts, the duration alarm's threshold and the number
// of alarms and metrics are what the docs say they are.
func TestDocsStateTheTemplate(t *testing.T) {
	tpl := loadTemplate(t, "control-plane.yaml")
	res := tpl.section("Resources")
	props := func(id string) map[string]any {
		r, ok := res[id].(map[string]any)
		if !ok {
			t.Fatalf("control-plane.yaml has no resource %s", id)
		}
		return r["Properties"].(map[string]any)
	}
	params := tpl.section("Parameters")
	param := func(name string) string {
		p, ok := params[name].(map[string]any)
		if !ok {
			t.Fatalf("control-plane.yaml has no parameter %s", name)
		}
		return fmt.Sprint(p["Default"])
	}
	memory := param("MemorySize")
	timeout := fmt.Sprint(props("Function")["Timeout"])
	planTimeout := fmt.Sprint(props("PlanFunction")["Timeout"])
	threshold, err := strconv.ParseFloat(fmt.Sprint(props("DurationAlarm")["Threshold"]), 64)
	if err != nil {
		t.Fatal(err)
	}
	alarms := strconv.Itoa(len(tpl.resourcesOfType("AWS::CloudWatch::Alarm")))
	metrics := strconv.Itoa(len(emfMetrics))
	if memory != "512" || timeout != "900" {
		// Not a failure by itself: the docs follow the template. But the
		// prose around the figures (0.29 vCPU, 0.5 GB in the cost table,
		// the 720 s alarm) was written for these values; read it again.
		t.Logf("MemorySize %s MB, Timeout %s s: check the prose derived from them in docs/performance.md and docs/operations.md", memory, timeout)
	}

	files := map[string]string{}
	for _, d := range docs(t) {
		files[d.path] = strings.Join(strings.Fields(d.prose), " ")
	}
	claims := []struct {
		what  string
		re    *regexp.Regexp
		want  string
		where []string // files that must state it at least once
	}{
		{"the MemorySize default", regexp.MustCompile("`MemorySize` default of (\\d+) MB"), memory,
			[]string{"docs/performance.md", "docs/operations.md", "docs/deploy.md"}},
		{"the MemorySize default in deploy.md's parameter table", regexp.MustCompile("\\| `MemorySize` \\| (\\d+) \\|"), memory,
			[]string{"docs/deploy.md"}},
		{"the run function's timeout", regexp.MustCompile(`(\d[\d,]*) s timeout`), timeout,
			[]string{"docs/performance.md", "docs/operations.md", "docs/deploy.md"}},
		{"the plan function's timeout", regexp.MustCompile(`plan function's timeout is (\d+) s`), planTimeout,
			[]string{"docs/deploy.md"}},
		{"the duration alarm's threshold", regexp.MustCompile("max `Duration` > (\\d+) s|(\\d+) s alarm threshold"), strconv.Itoa(int(threshold / 1000)),
			[]string{"docs/operations.md"}},
		{"the number of alarms", regexp.MustCompile(`(\d+) alarms and a dashboard|Alarms \| (\d+) × \$0\.10`), alarms,
			[]string{"docs/deploy.md", "docs/operations.md"}},
		{"the number of metrics", regexp.MustCompile(`(\d+) metrics × \$0\.30`), metrics,
			[]string{"docs/operations.md"}},
		{"the plan function's reserved concurrency", regexp.MustCompile("`PlanConcurrency`[ ,(]+(\\d+)"), param("PlanConcurrency"),
			[]string{"docs/deploy.md", "docs/security.md"}},
		{"the log retention", regexp.MustCompile(`kept (\d+) days by default|(\d+)-day retention`), param("LogRetentionDays"),
			[]string{"docs/operations.md"}},
	}
	for _, c := range claims {
		for _, name := range slices.Sorted(maps.Keys(files)) {
			ms := c.re.FindAllStringSubmatch(files[name], -1)
			if len(ms) == 0 && slices.Contains(c.where, name) {
				t.Errorf("%s no longer states %s (%s): say it, or take it off this test's list", name, c.what, c.re)
			}
			for _, m := range ms {
				got := m[1]
				if got == "" && len(m) > 2 {
					got = m[2]
				}
				if got != c.want {
					t.Errorf("%s: %q says %s is %s; the template has %s", name, m[0], c.what, got, c.want)
				}
			}
		}
	}
}

// TestDeployParameterTable: every row of deploy.md's table of the control
// plane's parameters names a parameter of the template and gives its
// default ("empty" for "").
func TestDeployParameterTable(t *testing.T) {
	tpl := loadTemplate(t, "control-plane.yaml")
	params := tpl.section("Parameters")
	deployDoc := loadDoc(t, "docs/deploy.md")
	rows := tableRows(deployDoc.section(t, "## 2. Deploy the control plane"))
	if len(rows) < 10 {
		t.Fatalf("docs/deploy.md, step 2: %d rows in the parameter table", len(rows))
	}
	for _, cells := range rows {
		name := command(cells[0])
		p, ok := params[name].(map[string]any)
		if !ok {
			t.Errorf("docs/deploy.md lists the parameter %q, which control-plane.yaml does not have", cells[0])
			continue
		}
		doc := strings.ReplaceAll(cells[1], "`", "")
		if doc == "empty" {
			doc = ""
		}
		if def := fmt.Sprint(p["Default"]); doc != def {
			t.Errorf("docs/deploy.md: %s defaults to %q, the template to %q", name, doc, def)
		}
	}
}

var linkRe = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// TestDocsLinks: every relative link of README.md and docs/*.md points at
// a file that exists and, with an #anchor, at a heading of it.
func TestDocsLinks(t *testing.T) {
	all := docs(t)
	byPath := map[string]*doc{}
	for _, d := range all {
		byPath[d.path] = d
	}
	for _, d := range all {
		prose := codeSpanRe.ReplaceAllString(d.prose, "")
		for _, m := range linkRe.FindAllStringSubmatch(prose, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, anchor, _ := strings.Cut(target, "#")
			rel := d.path
			if file != "" {
				rel = filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(d.path), file)))
				if _, err := os.Stat(filepath.Join(repoRoot, rel)); err != nil {
					t.Errorf("%s: link %s: %s does not exist", d.path, target, rel)
					continue
				}
			}
			if anchor == "" {
				continue
			}
			to, ok := byPath[rel]
			if !ok {
				t.Errorf("%s: link %s: an anchor into %s, which is not a checked markdown file", d.path, target, rel)
				continue
			}
			if !to.anchors[anchor] {
				t.Errorf("%s: link %s: %s has no heading with the anchor #%s", d.path, target, rel, anchor)
			}
		}
	}
	// The rollout comment links the README's connection steps by anchor.
	if !byPath["README.md"].anchors[announce.ConnectAnchor] {
		t.Errorf("README.md has no heading with the anchor #%s, which the rollout comment links (announce.ConnectAnchor)", announce.ConnectAnchor)
	}
}

// sectionRefRe finds a section named in prose, code or a comment:
// README, "Forking" or docs/operations.md, "When the rollout status is
// red" (quotes straight, curly, or escaped in a Go string).
var sectionRefRe = regexp.MustCompile(`(README|(?:docs/)?[a-z]+\.md),? \\?["“]([^"”\\]+)\\?["”]`)

// commentMarkRe is what starts a comment line in Go and YAML, removed so
// that a section name wrapped over two comment lines reads as one.
var commentMarkRe = regexp.MustCompile(`(?m)^[ \t]*(//+|#+)`)

// TestNamedSectionsExist: every section that a page, a Go string or
// comment, a template or a workflow names as `FILE, "Section"` starts a
// heading (or a bold item) of that file, so that a moved section cannot
// leave a pointer to nowhere.
func TestNamedSectionsExist(t *testing.T) {
	byPath := map[string]*doc{}
	for _, d := range docs(t) {
		byPath[d.path] = d
	}
	var sources []string
	for _, dir := range []string{"bot", ".github"} {
		err := filepath.WalkDir(filepath.Join(repoRoot, dir), func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.IsDir() && e.Name() == "testdata" {
				return fs.SkipDir
			}
			switch filepath.Ext(p) {
			case ".go", ".tmpl", ".yaml", ".yml":
				sources = append(sources, p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range byPath {
		sources = append(sources, filepath.Join(repoRoot, d.path))
	}
	slices.Sort(sources)
	checked := 0
	for _, p := range sources {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(repoRoot, p)
		rel = filepath.ToSlash(rel)
		text := strings.Join(strings.Fields(commentMarkRe.ReplaceAllString(string(data), "")), " ")
		for _, m := range sectionRefRe.FindAllStringSubmatch(text, -1) {
			file, name := m[1], m[2]
			switch {
			case file == "README":
				file = "README.md"
			case !strings.HasPrefix(file, "docs/"):
				file = "docs/" + file
			}
			d, ok := byPath[file]
			if !ok {
				continue // not one of the docs (a file name in an example)
			}
			checked++
			found := false
			for _, h := range append(slices.Clone(d.heads), d.bolds...) {
				found = found || strings.HasPrefix(strings.ReplaceAll(h, "`", ""), name)
			}
			if !found {
				t.Errorf("%s names %s, %q, which is no section of %s", rel, file, name, file)
			}
		}
	}
	if checked < 10 {
		t.Errorf("only %d section names found: the pattern no longer matches how the repository names sections", checked)
	}
}
