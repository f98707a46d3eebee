package ghcomment

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// maxClose bounds the close lines of one body.
const maxClose = 1 + maxDepth*len("\n</details>\n") + maxStructLine + 1

func TestPackOneBody(t *testing.T) {
	sections := []string{"### Plan\n\nsummary\n", "<details><summary>alice</summary>\n\n```sql\nGRANT 1;\n```\n</details>\n", "tail"}
	got := Pack(sections, 0)
	want := []string{strings.Join(sections, "\n")}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, empty := range [][]string{nil, {}, {""}} {
		if got := Pack(empty, MaxBody); got != nil {
			t.Errorf("Pack(%q) = %q, want nil", empty, got)
		}
	}
}

func TestPackLimits(t *testing.T) {
	text := strings.Repeat("0123456789abcdef\n", 10000) // 170,000 bytes
	for _, tc := range []struct{ limit, want int }{{0, MaxBody}, {-1, MaxBody}, {10, MinBody}, {MinBody, MinBody}, {20000, 20000}} {
		bodies := Pack([]string{text}, tc.limit)
		longest := 0
		for _, b := range bodies {
			longest = max(longest, len(b))
		}
		if longest > tc.want || longest < tc.want-17 {
			t.Errorf("limit %d: longest body %d bytes, want just under %d", tc.limit, longest, tc.want)
		}
	}
}

func TestPackBreaksBetweenSections(t *testing.T) {
	summary := "### Summary\n" + strings.Repeat("s", 988) + "\n"                           // 1000 bytes
	sec := func(c string) string { return strings.Repeat(strings.Repeat(c, 99)+"\n", 20) } // 2000 bytes
	sections := []string{summary, sec("a"), sec("b"), sec("c")}
	got := Pack(sections, MinBody)
	want := []string{
		summary + "\n" + sec("a") + "\n", // the summary with the section that fits after it
		sec("b") + "\n" + sec("c"),       // b and c together: 4001 bytes
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestPackFillsBeforeSplittingAHugeSection(t *testing.T) {
	summary := "### Summary\nsmall\n"
	huge := strings.Repeat("GRANT SELECT ON `orders`.* TO 'acme_alice'@'%';\n", 300) // 15,000 bytes
	got := pack([]string{summary, huge}, MinBody)
	if len(got) != 4 {
		t.Fatalf("%d bodies, want 4", len(got))
	}
	if !strings.HasPrefix(got[0].text, summary+"\nGRANT") {
		t.Errorf("body 1 does not go on with the huge section after the summary: %q", got[0].text[:60])
	}
	for i, p := range got {
		if !strings.HasSuffix(p.text, ";\n") {
			t.Errorf("body %d does not end at a line end: %q", i+1, p.text[len(p.text)-20:])
		}
	}
}

func TestPackClosesAndReopensBlocks(t *testing.T) {
	grants := strings.Repeat("GRANT SELECT ON `orders`.* TO 'acme_bob'@'%';\n", 200) // 9,400 bytes
	for _, tc := range []struct {
		name, open, close string
		section           string
	}{
		{
			name:    "fence",
			open:    "```sql\n",
			close:   "```\n",
			section: "```sql\n" + grants + "```\n",
		},
		{
			name:    "tilde fence of four",
			open:    "  ~~~~ sql\n",
			close:   "~~~~\n",
			section: "  ~~~~ sql\n" + grants + "~~~~\n",
		},
		{
			name:    "details",
			open:    "<details open><summary><b>bob</b></summary>\n\n",
			close:   "\n</details>\n",
			section: "<details open><summary><b>bob</b></summary>\n\n" + grants + "</details>\n",
		},
		{
			name:    "fence in details in details",
			open:    "<details><summary>prod</summary>\n\n<DETAILS><summary>bob</summary>\n\n```sql\n",
			close:   "```\n\n</details>\n\n</details>\n",
			section: "<details><summary>prod</summary>\n\n<DETAILS><summary>bob</summary>\n\n```sql\n" + grants + "```\n</details>\n</details>\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pieces := pack([]string{"summary\n", tc.section}, MinBody)
			if len(pieces) < 3 {
				t.Fatalf("%d bodies, want at least 3", len(pieces))
			}
			for i, p := range pieces {
				if i > 0 && p.reopen != tc.open {
					t.Errorf("body %d reopens with %q, want %q", i+1, p.reopen, tc.open)
				}
				if i < len(pieces)-1 && p.close != tc.close {
					t.Errorf("body %d closes with %q, want %q", i+1, p.close, tc.close)
				}
			}
			if last := pieces[len(pieces)-1]; last.close != "" {
				t.Errorf("the last body closes with %q", last.close)
			}
		})
	}
}

func TestPackIgnoresWhatIsNotABlock(t *testing.T) {
	grants := strings.Repeat("GRANT SELECT ON `orders`.* TO 'acme_bob'@'%';\n", 200)
	for _, section := range []string{
		"    ```sql\n" + grants,                                          // indented four spaces: code, not a fence
		"``` has `backticks`\n" + grants,                                 // a backtick fence's info string has no backticks
		"<detailsfoo>\n" + grants,                                        // not a details tag
		"<details><summary>x</summary>y</details>\n" + grants,            // opened and closed on one line
		"<details>" + strings.Repeat("x", maxStructLine) + "\n" + grants, // too long to track
	} {
		for _, p := range pack([]string{section}, MinBody) {
			if p.reopen != "" || p.close != "" {
				t.Errorf("%.30q: body reopens %q, closes %q", section, p.reopen, p.close)
			}
		}
	}
	// Inside a fence, a <details> line is text, and a shorter run does
	// not close a longer fence.
	section := "````\n<details>\n```\n" + grants + "````\n"
	pieces := pack([]string{section}, MinBody)
	for _, p := range pieces[:len(pieces)-1] {
		if p.close != "````\n" {
			t.Errorf("closes with %q, want the four-backtick fence", p.close)
		}
	}
}

func TestPackHardSplitsALongLine(t *testing.T) {
	line := strings.Repeat("日本語のテキスト🙂 ", 2000) // one line of 52,000 bytes
	for _, sections := range [][]string{
		{"summary", line},
		{"summary", "```\n" + line + "\n```\n"},
		{line + "\nnext line\n"},
	} {
		pieces := pack(sections, MinBody)
		checkPieces(t, sections, MinBody, pieces)
		if len(pieces) < 13 {
			t.Errorf("%d bodies for 52,000 bytes in bodies of %d", len(pieces), MinBody)
		}
		for i, p := range pieces {
			if !utf8.ValidString(p.text) {
				t.Errorf("body %d cut a character in two", i+1)
			}
		}
	}
}

// checkPieces checks what holds for every input: bodies within limit,
// the text whole and in order, bodies that Pack assembles the same way,
// the summary whole in body 1 when it fits there, and every body balanced
// by the package's own scanner (when the input stays within the tracked
// depth).
func checkPieces(t testing.TB, sections []string, limit int, pieces []piece) {
	t.Helper()
	limit = max(limit, MinBody)
	text := joinSections(sections)
	var joined strings.Builder
	for i, p := range pieces {
		if n := len(p.reopen + p.text + p.close); n > limit {
			t.Errorf("body %d has %d bytes, limit %d", i+1, n, limit)
		}
		if p.text == "" {
			t.Errorf("body %d carries no text", i+1)
		}
		joined.WriteString(p.text)
	}
	if joined.String() != text {
		t.Fatalf("the bodies' text differs from the input")
	}
	bodies := Pack(sections, limit)
	if len(bodies) != len(pieces) {
		t.Fatalf("Pack made %d bodies, pack %d", len(bodies), len(pieces))
	}
	for i, p := range pieces {
		if bodies[i] != p.reopen+p.text+p.close {
			t.Errorf("body %d is not reopen+text+close", i+1)
		}
	}
	if text == "" {
		return
	}
	if len(sections[0])+len(sectionSep)+maxClose <= limit && !strings.HasPrefix(pieces[0].text, sections[0]) {
		t.Errorf("the summary (%d bytes) is not whole in body 1", len(sections[0]))
	}
	if utf8.ValidString(text) {
		for i, b := range bodies {
			if !utf8.ValidString(b) {
				t.Errorf("body %d is not valid UTF-8", i+1)
			}
		}
	}
	if n := len(sections) + 2*len(text)/limit + 1; len(pieces) > n {
		t.Errorf("%d bodies for %d sections of %d bytes in all, want at most %d", len(pieces), len(sections), len(text), n)
	}
	// Balance, as the scanner sees it.
	sc := scan(sections)
	for _, st := range sc.after {
		if st.extra > 0 {
			return // nested deeper than tracked: no promise
		}
	}
	for i, b := range bodies {
		st := scanText(b)
		want := scanState{}
		if i == len(bodies)-1 {
			want = sc.after[len(sc.after)-1]
		}
		if !sameState(st, want) {
			t.Errorf("body %d ends with %q open, want %q", i+1, openLines(st), openLines(want))
		}
	}
}

func scanText(s string) scanState {
	var st scanState
	for line := range strings.Lines(s) {
		st = st.next(strings.TrimSuffix(line, "\n"))
	}
	return st
}

func openLines(st scanState) []string {
	var out []string
	for _, b := range st.stack {
		out = append(out, b.open)
	}
	return out
}

func sameState(a, b scanState) bool {
	return a.extra == b.extra && cmp.Equal(openLines(a), openLines(b))
}

// balancedMarkdown is an independent check for the markdown that
// genSections writes: ```sql fences closed by ```, <details> lines closed
// by </details>, nothing open at the end.
func balancedMarkdown(body string) error {
	fence, depth := false, 0
	for line := range strings.Lines(body) {
		l := strings.TrimSpace(line)
		switch {
		case fence:
			fence = l != "```"
		case strings.HasPrefix(l, "```"):
			fence = true
		case strings.HasPrefix(l, "<details"):
			depth++
		case l == "</details>":
			if depth--; depth < 0 {
				return fmt.Errorf("</details> without <details>")
			}
		}
	}
	if fence || depth != 0 {
		return fmt.Errorf("ends inside a fence (%v) or %d <details>", fence, depth)
	}
	return nil
}

// genSections writes a random plan: a summary and sections of text,
// tables, fenced SQL and nested <details>, some longer than a body, some
// with lines longer than a body.
func genSections(r *rand.Rand, limit int) []string {
	words := []string{"GRANT", "SELECT", "ON", "`orders`.*", "TO", "'acme_alice'@'%'", "é", "日本", "🙂", "|", "x", "`code`", "<b>", "—"}
	line := func(maxLen int) string {
		var b strings.Builder
		n := r.IntN(maxLen + 1)
		for b.Len() < n {
			b.WriteString(words[r.IntN(len(words))])
			b.WriteByte(' ')
		}
		return strings.TrimRight(b.String(), " ")
	}
	var block func(b *strings.Builder, depth, size int)
	block = func(b *strings.Builder, depth, size int) {
		start := b.Len()
		for b.Len()-start < size {
			switch k := r.IntN(10); {
			case k < 5:
				b.WriteString(line(120) + "\n")
			case k < 6:
				b.WriteString("\n| a | b |\n|---|---|\n| " + line(40) + " | " + line(40) + " |\n")
			case k < 7 && r.IntN(40) == 0:
				b.WriteString(line(limit*3/2) + "\n") // longer than a body
			case k < 8:
				b.WriteString("```sql\n")
				for range r.IntN(200) {
					b.WriteString(line(80) + "\n")
				}
				b.WriteString("```\n")
			case depth < 3:
				fmt.Fprintf(b, "<details%s><summary>%s</summary>\n\n", []string{"", " open"}[r.IntN(2)], line(60))
				block(b, depth+1, r.IntN(size+1))
				b.WriteString("</details>\n")
			}
		}
	}
	sizes := []int{10, 200, limit / 3, limit, 3 * limit}
	var sections []string
	for range 1 + r.IntN(20) {
		var b strings.Builder
		block(&b, 0, sizes[r.IntN(len(sizes))])
		sections = append(sections, b.String())
	}
	return sections
}

func TestPackProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 120 {
		limit := MinBody + r.IntN(12000)
		sections := genSections(r, limit)
		pieces := pack(sections, limit)
		checkPieces(t, sections, limit, pieces)
		for j, b := range Pack(sections, limit) {
			if err := balancedMarkdown(b); err != nil {
				t.Errorf("case %d, limit %d, body %d of %d: %v", i, limit, j+1, len(pieces), err)
			}
		}
		if t.Failed() {
			t.Fatalf("case %d failed", i)
		}
	}
}

// TestPackGolden shows what the parts of a plan look like, one user's
// section split inside its <details> and code fence.
func TestPackGolden(t *testing.T) {
	sections := append(bigPlan(3, 1500), strings.ReplaceAll(bigPlan(1, 6000)[1], "user000", "user003"))
	bodies := Pack(sections, MinBody)
	var b strings.Builder
	for i, body := range bodies {
		b.WriteString(frame("plan", i+1, len(bodies), body))
		b.WriteString("\n<!-- ====== end of comment ====== -->\n")
	}
	path := filepath.Join("testdata", "pack.golden.md")
	if *update {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), b.String()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
