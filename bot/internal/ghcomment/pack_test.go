package ghcomment

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/dbusers/dbusers/bot/internal/ghcomment/ghcommenttest"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// userSection is a user's section as review writes it: a folded table,
// whose continuation says so in its <summary> and repeats the header.
func userSection(name string, rows []string) Section {
	const table = "| | cluster | database | change |\n|---|---|---|---|\n"
	return Section{
		Head:          "<details><summary><b>" + name + "</b></summary>\n\n" + table,
		ContinuedHead: "<details><summary><b>" + name + "</b> (continued)</summary>\n\n" + table,
		Rows:          rows,
		Tail:          "\n</details>\n",
	}
}

// grantRows are n table rows of one user, of 44 to 46 bytes each.
func grantRows(user string, n int) []string {
	rows := make([]string, n)
	for i := range rows {
		rows[i] = fmt.Sprintf("| ➕ | prod-orders | db%d | grant read to %s |\n", i, user)
	}
	return rows
}

// bigPlan is a summary and n user sections of about size bytes each.
func bigPlan(n, size int) []Section {
	sections := []Section{{Head: "### dbusers plan\n\n**Summary:** " + strconv.Itoa(n) + " users change. Production: 3 grants.\n"}}
	for i := range n {
		name := fmt.Sprintf("user%03d", i)
		sections = append(sections, userSection(name, grantRows(name, size/48)))
	}
	return sections
}

func TestPackOneBody(t *testing.T) {
	sections := bigPlan(3, 500)
	got := Pack(sections, 0)
	if want := []string{join(sections)}; !cmp.Equal(want, got) {
		t.Errorf("(-want +got):\n%s", cmp.Diff(want, got))
	}
	for _, empty := range [][]Section{nil, {}, {{}}, {{Rows: []string{""}}, {}}} {
		if got := Pack(empty, MaxBody); got != nil {
			t.Errorf("Pack(%q) = %q, want nil", empty, got)
		}
	}
}

func TestPackLimits(t *testing.T) {
	rows := strings.SplitAfter(strings.Repeat("0123456789abcdef\n", 10000), "\n") // 170,000 bytes
	for _, tc := range []struct{ limit, want int }{{0, MaxBody}, {-1, MaxBody}, {10, MinBody}, {MinBody, MinBody}, {20000, 20000}} {
		bodies := Pack([]Section{{Rows: rows}}, tc.limit)
		longest := 0
		for _, b := range bodies {
			longest = max(longest, len(b))
		}
		if longest > tc.want || longest < tc.want-17 {
			t.Errorf("limit %d: longest body %d bytes, want just under %d", tc.limit, longest, tc.want)
		}
	}
}

// TestPackGreedy: whole sections share a body while they fit; one that
// does not fit what is left moves whole to the next body; one longer than
// a body fills what is left, then goes on in bodies of its own.
func TestPackGreedy(t *testing.T) {
	summary := Section{Head: "### Summary\n" + strings.Repeat("s", 988) + "\n"} // 1000 bytes
	sec := func(c string) Section {
		return Section{Head: "#### " + c + "\n", Rows: strings.SplitAfter(strings.Repeat(strings.Repeat(c, 99)+"\n", 20), "\n")[:20]}
	} // 2006 bytes
	huge := userSection("huge", grantRows("huge", 300)) // 14,000 bytes
	// piece is the part of huge with rows i to j.
	piece := func(head string, i, j int) string { return head + strings.Join(huge.Rows[i:j], "") + huge.Tail }
	for _, tc := range []struct {
		name     string
		sections []Section
		want     []string
	}{
		{
			name:     "small sections share a body, the next moves whole",
			sections: []Section{summary, sec("a"), sec("b"), sec("c")},
			want: []string{
				summary.text() + "\n" + sec("a").text(),
				sec("b").text() + "\n" + sec("c").text(),
			},
		},
		{
			name:     "a huge section fills what is left, then bodies of its own",
			sections: []Section{summary, huge, sec("a")},
			want: []string{
				summary.text() + "\n" + piece(huge.Head, 0, 59),
				piece(huge.ContinuedHead, 59, 137),
				piece(huge.ContinuedHead, 137, 215),
				piece(huge.ContinuedHead, 215, 293),
				piece(huge.ContinuedHead, 293, 300) + "\n" + sec("a").text(),
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Pack(tc.sections, MinBody)
			checkPack(t, tc.sections, MinBody, got)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestPackRepeatsTableHeader is the bug Pack was rewritten for: a table
// split between two comments went on in the second one without its
// header, and GitHub showed raw pipes. Now every body renders on its own.
func TestPackRepeatsTableHeader(t *testing.T) {
	alice := userSection("alice", grantRows("alice", 200))
	sections := []Section{{Head: "### dbusers plan\n"}, alice}
	bodies := Pack(sections, MinBody)
	checkPack(t, sections, MinBody, bodies)
	if len(bodies) < 3 {
		t.Fatalf("%d bodies for %d bytes in bodies of %d", len(bodies), len(alice.text()), MinBody)
	}
	for i, b := range bodies {
		if err := ghcommenttest.CheckRenders(b); err != nil {
			t.Errorf("body %d: %v", i+1, err)
		}
		if i > 0 && !strings.HasPrefix(b, "<details><summary><b>alice</b> (continued)</summary>\n\n| | cluster | database | change |\n|---|---|---|---|\n| ➕ |") {
			t.Errorf("body %d does not open the table again: %.150q", i+1, b)
		}
	}
	// The checker sees the bug: a body cut from its table's header.
	if err := ghcommenttest.CheckRenders(strings.Join(alice.Rows[:3], "") + alice.Tail); err == nil {
		t.Errorf("CheckRenders accepts table rows without a header")
	}
}

// TestPackTruncatesALongRow: a row that no body can hold with its head and
// tail (only a hostile declaration writes one) is cut, with a marker that
// says so, rather than making a body over the limit. It is the one place
// where Pack loses text.
func TestPackTruncatesALongRow(t *testing.T) {
	long := strings.Repeat("日本語のテキスト🙂 ", 2000) + "\n" // 52,001 bytes
	for _, tc := range []struct {
		name    string
		section Section
		cut     string // the row that is cut
	}{
		{"in a table", userSection("mallory", []string{"| ➕ | a |\n", "| " + long, "| ➕ | b |\n"}), "| " + long},
		{"without head or tail", Section{Rows: []string{"before\n", long, "after\n"}}, long},
		{"a head of more than half a body", Section{Head: long, Rows: []string{"row\n"}, Tail: "tail\n"}, long},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sections := []Section{{Head: "### dbusers plan\n"}, tc.section}
			bodies := Pack(sections, MinBody)
			checkPack(t, sections, MinBody, bodies)
			all := strings.Join(bodies, "")
			m := truncatedRow.FindStringSubmatchIndex(all)
			if m == nil {
				t.Fatalf("no truncation marker")
			}
			left, _ := strconv.Atoi(all[m[2]:m[3]])
			kept := tc.cut[:len(tc.cut)-left]
			if !strings.HasSuffix(all[:m[0]], kept) || !utf8.ValidString(kept) {
				t.Errorf("the cut row does not end with its first %d bytes, cut at a character boundary", len(kept))
			}
			if !utf8.ValidString(all) {
				t.Errorf("a body is not valid UTF-8")
			}
		})
	}
}

// truncatedRow matches the end of a row that fit cut; its group is how
// many bytes it left out.
var truncatedRow = regexp.MustCompile(` … \(truncated, (\d+) bytes left out\)\n`)

// checkPack checks what Pack promises for every input. Every body is
// within limit. Read in order, the bodies are the non-empty sections in
// order, joined by sectionSep within a body: a section that fits a body
// whole, the others in pieces of Head (ContinuedHead after the first),
// consecutive rows and Tail, each piece but the last ending its body. The
// fill is greedy: a body ends only where what comes next does not fit in
// it. Rows are whole but where fit must cut them, as checkFit checks. So
// the summary is whole in body 1 when it fits a body.
func checkPack(t testing.TB, sections []Section, limit int, bodies []string) {
	t.Helper()
	if limit <= 0 {
		limit = MaxBody
	}
	limit = max(limit, MinBody)
	for i, b := range bodies {
		if len(b) > limit || b == "" {
			t.Fatalf("body %d has %d bytes, limit %d", i+1, len(b), limit)
		}
	}
	b, off := 0, 0
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("body %d of %d, byte %d: %s", b+1, len(bodies), off, fmt.Sprintf(format, args...))
	}
	// next moves past the separator, or to the next body when this one
	// is full: that is, when next bytes do not fit after what it holds.
	next := func(si int, need int) {
		t.Helper()
		switch {
		case b >= len(bodies):
			fail("section %d is missing", si)
		case off == 0:
		case off == len(bodies[b]):
			if off+len(sectionSep)+need <= limit {
				fail("body ends, but %d more bytes of section %d fit in it", need, si)
			}
			if b++; b >= len(bodies) {
				fail("section %d is missing", si)
			}
			off = 0
		case strings.HasPrefix(bodies[b][off:], sectionSep):
			off += len(sectionSep)
		default:
			fail("no separator before section %d", si)
		}
	}
	for si, s := range sections {
		text := s.text()
		if text == "" {
			continue
		}
		if len(text) <= limit {
			next(si, len(text))
			if !strings.HasPrefix(bodies[b][off:], text) {
				fail("section %d (%d bytes) is not whole here", si, len(text))
			}
			off += len(text)
			continue
		}
		f := fit(s, limit)
		checkFit(t, s, f, limit)
		next(si, len(f.Head)+len(f.Rows[0])+len(f.Tail))
		head, rows := f.Head, f.Rows
		for {
			// A piece: head, as many rows as match (unambiguous, as no
			// row is empty), tail; then the body ends unless it is the
			// section's last piece.
			rest := bodies[b][off:]
			if !strings.HasPrefix(rest, head) {
				fail("section %d does not go on here with its head %.80q", si, head)
			}
			pos, n := len(head), 0
			for n < len(rows) && strings.HasPrefix(rest[pos:], rows[n]) && pos+len(rows[n])+len(f.Tail) <= len(rest) {
				pos += len(rows[n])
				n++
			}
			if !strings.HasPrefix(rest[pos:], f.Tail) || n == 0 {
				fail("section %d: a piece with %d rows, then %.80q, not the tail", si, n, rest[pos:])
			}
			off += pos + len(f.Tail)
			if rows = rows[n:]; len(rows) == 0 {
				break
			}
			if off != len(bodies[b]) {
				fail("section %d: a piece that does not end its body", si)
			}
			if len(bodies[b])+len(rows[0]) <= limit {
				fail("body ends, but row %.80q of section %d fits in it", rows[0], si)
			}
			if b++; b >= len(bodies) {
				fail("section %d is cut short", si)
			}
			off, head = 0, f.continued()
		}
	}
	if len(bodies) > 0 && (b != len(bodies)-1 || off != len(bodies[b])) {
		fail("the bodies go on after the last section")
	}
	if len(bodies) > 0 && len(sections[0].text()) <= limit && !strings.HasPrefix(bodies[0], sections[0].text()) {
		t.Errorf("the summary (%d bytes) is not whole in body 1", len(sections[0].text()))
	}
}

// checkFit checks that fit changed s only as Pack documents: a head and
// tail of more than half a body become rows, empty rows go, and a row that does not fit
// a body with the head and tail keeps its first bytes, cut at a character
// boundary, and a marker that counts the rest.
func checkFit(t testing.TB, s, f Section, limit int) {
	t.Helper()
	frame := max(len(s.Head), len(s.continued())) + len(s.Tail)
	rows, room := s.Rows, limit-frame
	if frame > limit/2 {
		rows, room = append(append([]string{s.Head}, s.Rows...), s.Tail), limit
		s = Section{}
	}
	rows = slices.DeleteFunc(slices.Clone(rows), func(r string) bool { return r == "" })
	if f.Head != s.Head || f.continued() != s.continued() || f.Tail != s.Tail || len(f.Rows) != len(rows) {
		t.Fatalf("fit changed the section's frame: %q, %q, %q, %d rows", f.Head, f.continued(), f.Tail, len(f.Rows))
	}
	for i, row := range rows {
		got := f.Rows[i]
		if len(row) <= room {
			if got != row {
				t.Errorf("row %d (%d bytes, room %d) changed", i, len(row), room)
			}
			continue
		}
		m := truncatedRow.FindStringSubmatchIndex(got)
		if m == nil || m[1] != len(got) || len(got) > room {
			t.Fatalf("row %d (%d bytes, room %d) is not cut with a marker: %d bytes, %.60q", i, len(row), room, len(got), got[max(0, len(got)-60):])
		}
		left, _ := strconv.Atoi(got[m[2]:m[3]])
		kept := got[:m[0]]
		if kept != row[:len(row)-left] || (utf8.ValidString(row) && !utf8.ValidString(kept)) {
			t.Errorf("row %d: the marker says %d bytes left out of %d, but %d are kept", i, left, len(row), len(kept))
		}
	}
}

// genSections writes a random plan: a summary, users' tables in
// <details>, lists with code blocks as rows, some longer than a body,
// some rows longer than a body. Unless hostile, no head and tail take
// more than half a body, so that every body must render on its own.
func genSections(r *rand.Rand, limit int, hostile bool) []Section {
	words := []string{"GRANT", "SELECT", "ON", "`orders`.*", "TO", "'acme_alice'@'%'", "é", "日本", "🙂", `\|`, "x", "`code`", "<b>", "—"}
	line := func(maxLen int) string {
		var b strings.Builder
		n := r.IntN(maxLen + 1)
		for b.Len() < n {
			b.WriteString(words[r.IntN(len(words))])
			b.WriteByte(' ')
		}
		return strings.TrimRight(b.String(), " ")
	}
	sections := []Section{{Head: "### dbusers plan: " + line(60) + "\n\n" + line(400) + "\n"}}
	for range r.IntN(20) {
		var s Section
		prefix, row := "", func() string { return "" }
		switch r.IntN(3) {
		case 0:
			s, prefix = userSection(line(30), nil), "| ➕ | "
			row = func() string { return prefix + line(20) + " | " + line(20) + " | " + line(60) + " |\n" }
		case 1:
			s.Head, s.ContinuedHead, prefix = "#### "+line(40)+"\n\n", "#### (continued)\n\n", "- "
			row = func() string {
				if r.IntN(10) == 0 {
					return "```sql\n" + line(80) + "\n" + line(80) + "\n```\n"
				}
				return prefix + line(100) + "\n"
			}
		case 2:
			// Empty, or only a head.
			if r.IntN(2) == 0 {
				s.Head = line(100) + "\n"
			}
		}
		for range r.IntN([]int{1, 10, 100, 600}[r.IntN(4)]) {
			s.Rows = append(s.Rows, row())
		}
		if len(s.Rows) > 0 && r.IntN(20) == 0 {
			s.Rows[r.IntN(len(s.Rows))] = prefix + line(limit*3/2) + "\n" // longer than a body
		}
		if hostile && r.IntN(10) == 0 {
			s.Head = "<details><summary>" + line(limit) + "</summary>\n\n"
		}
		sections = append(sections, s)
	}
	return sections
}

func TestPackProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 150 {
		limit := MinBody + r.IntN(12000)
		hostile := i%3 == 2
		sections := genSections(r, limit, hostile)
		bodies := Pack(sections, limit)
		checkPack(t, sections, limit, bodies)
		for j, b := range bodies {
			if err := ghcommenttest.CheckRenders(b); err != nil && !hostile {
				t.Errorf("case %d, limit %d, body %d of %d: %v", i, limit, j+1, len(bodies), err)
			}
		}
		if t.Failed() {
			t.Fatalf("case %d failed", i)
		}
	}
}

// TestPackGolden shows what the parts of a plan look like: three users
// that share bodies, then one whose table is split, its <details> and
// header opened again in every part.
func TestPackGolden(t *testing.T) {
	sections := append(bigPlan(3, 1500), userSection("user003", grantRows("user003", 130)))
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
