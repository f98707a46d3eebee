package ghcomment

import (
	"strings"
	"unicode/utf8"
)

// Size limits of one comment body, in bytes. GitHub counts characters and
// refuses bodies over 65,536 of them; Pack counts bytes, which is never less
// than the number of characters, so its parts always fit.
const (
	// GitHubMaxBody is GitHub's limit on one comment body, in characters.
	GitHubMaxBody = 65536
	// MaxBody is the default limit for Pack: it leaves room under
	// GitHubMaxBody for the hidden marker and the "part i of n" header that
	// Upsert adds to every part.
	MaxBody = 65000
	// MinBody is the smallest limit Pack accepts (smaller limits are raised
	// to it): a part must hold the reopened <details> and code fence lines
	// of the previous part and still carry text forward.
	MinBody = 4096
)

// The scanner tracks at most maxDepth nested <details> blocks and only
// looks at lines of at most maxStructLine bytes; deeper nesting and longer
// lines are treated as plain text. These bounds keep the reopen and close
// lines of a part under MinBody/2 so that every part makes progress.
const (
	maxDepth      = 4
	maxStructLine = 256
	// sectionSep joins sections, like review.Review.Markdown does.
	sectionSep = "\n"
)

// Pack splits markdown sections into comment bodies of at most limit bytes
// (limit <= 0 means MaxBody; a limit below MinBody is raised to MinBody).
// The sections are joined with a newline; the first one is the summary and
// is kept whole in the first body whenever it fits there. Bodies break
// between sections where they can, otherwise between lines, and inside a
// line only when one line is longer than a body. No text is lost or
// reordered.
//
// A body that ends inside a fenced code block or a <details> block closes
// it, and the next body opens it again with the same opening line, so that
// every comment renders on its own. Fences indented by four or more spaces
// (inside list items) are not recognized.
//
// Pack returns nil when the joined text is empty. Markers and "part i of
// n" headers are added later, by Upsert.
func Pack(sections []string, limit int) []string {
	pieces := pack(sections, limit)
	if pieces == nil {
		return nil
	}
	bodies := make([]string, len(pieces))
	for i, p := range pieces {
		bodies[i] = p.reopen + p.text + p.close
	}
	return bodies
}

// piece is one body of Pack: text is a slice of the joined input, reopen
// and close are the synthetic lines that balance it.
type piece struct {
	reopen, text, close string
}

// block is one open construct: a <details> block or a code fence.
type block struct {
	open  string // the line that opened it, without its newline
	fence byte   // '`' or '~' for a code fence, 0 for <details>
	n     int    // length of the fence's run of backticks or tildes
}

// reopenText is what a continuation body starts with to open b again. A
// <details> line is followed by a blank line so that GitHub renders the
// markdown inside it.
func (b block) reopenText() string {
	if b.fence != 0 {
		return b.open + "\n"
	}
	return b.open + "\n\n"
}

// closeText is what a body ends with to close b.
func (b block) closeText() string {
	if b.fence != 0 {
		return strings.Repeat(string(b.fence), b.n) + "\n"
	}
	return "\n</details>\n"
}

// scanState is what is open after some line: <details> blocks, then at most
// one code fence on top. extra counts <details> blocks nested deeper than
// maxDepth, which are not tracked. A scanState's stack is never modified in
// place, so states can be kept per line cheaply.
type scanState struct {
	stack []block
	extra int
}

func (s scanState) inFence() bool {
	return len(s.stack) > 0 && s.stack[len(s.stack)-1].fence != 0
}

func (s scanState) clean() bool { return len(s.stack) == 0 && s.extra == 0 }

func (s scanState) reopenText() string {
	var b strings.Builder
	for _, blk := range s.stack {
		b.WriteString(blk.reopenText())
	}
	return b.String()
}

func (s scanState) reopenLen() int {
	n := 0
	for _, blk := range s.stack {
		n += len(blk.reopenText())
	}
	return n
}

// closeText closes everything open; midLine says that the body ends inside
// a line, which must be ended first.
func (s scanState) closeText(midLine bool) string {
	if len(s.stack) == 0 {
		return ""
	}
	var b strings.Builder
	if midLine {
		b.WriteByte('\n')
	}
	for i := len(s.stack) - 1; i >= 0; i-- {
		b.WriteString(s.stack[i].closeText())
	}
	return b.String()
}

func (s scanState) closeLen(midLine bool) int {
	if len(s.stack) == 0 {
		return 0
	}
	n := 0
	if midLine {
		n = 1
	}
	for _, blk := range s.stack {
		n += len(blk.closeText())
	}
	return n
}

// next is the state after line (without its newline).
func (s scanState) next(line string) scanState {
	if len(line) > maxStructLine {
		return s
	}
	if s.inFence() {
		top := s.stack[len(s.stack)-1]
		if closesFence(line, top.fence, top.n) {
			return scanState{stack: s.stack[: len(s.stack)-1 : len(s.stack)-1], extra: s.extra}
		}
		return s
	}
	if c, n, ok := opensFence(line); ok {
		return s.push(block{open: line, fence: c, n: n})
	}
	switch {
	case opensDetails(line):
		if len(s.stack) >= maxDepth {
			return scanState{stack: s.stack, extra: s.extra + 1}
		}
		return s.push(block{open: line})
	case closesDetails(line):
		if s.extra > 0 {
			return scanState{stack: s.stack, extra: s.extra - 1}
		}
		if len(s.stack) > 0 {
			return scanState{stack: s.stack[: len(s.stack)-1 : len(s.stack)-1]}
		}
	}
	return s
}

func (s scanState) push(b block) scanState {
	stack := make([]block, len(s.stack), len(s.stack)+1)
	copy(stack, s.stack)
	return scanState{stack: append(stack, b), extra: s.extra}
}

// indent returns line without up to three leading spaces, and whether the
// indentation was at most three spaces (more makes an indented code block).
func indent(line string) (string, bool) {
	i := 0
	for i < len(line) && line[i] == ' ' {
		i++
	}
	return line[i:], i <= 3
}

// opensFence reports whether line opens a CommonMark code fence.
func opensFence(line string) (byte, int, bool) {
	rest, ok := indent(line)
	if !ok || len(rest) < 3 || (rest[0] != '`' && rest[0] != '~') {
		return 0, 0, false
	}
	c := rest[0]
	n := 0
	for n < len(rest) && rest[n] == c {
		n++
	}
	if n < 3 || (c == '`' && strings.IndexByte(rest[n:], '`') >= 0) {
		return 0, 0, false
	}
	return c, n, true
}

// closesFence reports whether line closes a fence of n characters c.
func closesFence(line string, c byte, n int) bool {
	rest, ok := indent(line)
	if !ok {
		return false
	}
	run := 0
	for run < len(rest) && rest[run] == c {
		run++
	}
	return run >= n && strings.Trim(rest[run:], " \t\r") == ""
}

func opensDetails(line string) bool {
	rest, ok := indent(line)
	if !ok || !hasPrefixFold(rest, "<details") {
		return false
	}
	if len(rest) > len("<details") {
		switch rest[len("<details")] {
		case '>', ' ', '\t', '\r':
		default:
			return false
		}
	}
	return !strings.Contains(strings.ToLower(rest), "</details>")
}

func closesDetails(line string) bool {
	rest, ok := indent(line)
	return ok && hasPrefixFold(rest, "</details>")
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// joinSections is the text that Pack divides.
func joinSections(sections []string) string {
	return strings.Join(sections, sectionSep)
}

// scanned is the joined text cut into lines, with the scanner's state after
// each line and where sections end.
type scanned struct {
	text       string
	end        []int       // end of line i, after its newline
	after      []scanState // state after line i
	sectionEnd []bool      // a section boundary (or the end of the text) is at end[i]
	nextEnd    []int       // the first line j >= i with sectionEnd[j]
}

func scan(sections []string) *scanned {
	text := joinSections(sections)
	sc := &scanned{text: text}
	// Offsets where sections after the first start; each is a line start.
	var starts []int
	off := 0
	for i, s := range sections {
		if i > 0 {
			off += len(sectionSep)
			starts = append(starts, off)
		}
		off += len(s)
	}
	lines := strings.Count(text, "\n") + 1
	sc.end = make([]int, 0, lines)
	sc.after = make([]scanState, 0, lines)
	sc.sectionEnd = make([]bool, 0, lines)
	var st scanState
	for pos := 0; pos < len(text); {
		e := strings.IndexByte(text[pos:], '\n')
		var line string
		if e < 0 {
			line, e = text[pos:], len(text)
		} else {
			line, e = text[pos:pos+e], pos+e+1
		}
		st = st.next(line)
		// Every section starts after a newline, so at the end of a line.
		boundary := e == len(text)
		for len(starts) > 0 && starts[0] <= e {
			boundary = boundary || starts[0] == e
			starts = starts[1:]
		}
		sc.end = append(sc.end, e)
		sc.after = append(sc.after, st)
		sc.sectionEnd = append(sc.sectionEnd, boundary)
		pos = e
	}
	sc.nextEnd = make([]int, len(sc.end))
	next := len(sc.end) - 1
	for i := len(sc.end) - 1; i >= 0; i-- {
		if sc.sectionEnd[i] {
			next = i
		}
		sc.nextEnd[i] = next
	}
	return sc
}

func (sc *scanned) before(i int) scanState {
	if i == 0 {
		return scanState{}
	}
	return sc.after[i-1]
}

func (sc *scanned) start(i int) int {
	if i == 0 {
		return 0
	}
	return sc.end[i-1]
}

// closeLenAt is the close cost of a body that ends after line j.
func (sc *scanned) closeLenAt(j int) int {
	if sc.end[j] == len(sc.text) {
		return 0
	}
	return sc.after[j].closeLen(false)
}

func pack(sections []string, limit int) []piece {
	if limit <= 0 {
		limit = MaxBody
	}
	limit = max(limit, MinBody)
	sc := scan(sections)
	text := sc.text
	var out []piece
	p, li := 0, 0 // the next body starts at byte p, inside (or at the start of) line li
	for p < len(text) {
		st := sc.before(li)
		room := limit - st.reopenLen()
		bestSec, bestLine := -1, -1
		for j := li; j < len(sc.end) && sc.end[j]-p <= room; j++ {
			if sc.end[j]-p+sc.closeLenAt(j) > room {
				continue
			}
			bestLine = j
			if sc.sectionEnd[j] {
				bestSec = j
			}
		}
		var e int
		switch {
		case bestSec >= 0:
			e = sc.end[bestSec]
			// Start the next section in a fresh body if it fits in one;
			// if it must be split anyway, fill this body first.
			if bestLine > bestSec && !sc.fitsFresh(bestSec+1, limit) {
				e = sc.end[bestLine]
			}
		case bestLine >= 0:
			e = sc.end[bestLine]
		default:
			e = sc.cut(p, li, limit)
		}
		out = append(out, sc.piece(p, e, li))
		p = e
		for li < len(sc.end) && sc.end[li] <= p {
			li++
		}
	}
	return out
}

// fitsFresh reports whether the section starting at line i fits in a body
// of its own.
func (sc *scanned) fitsFresh(i, limit int) bool {
	j := sc.nextEnd[i]
	return sc.before(i).reopenLen()+sc.end[j]-sc.start(i)+sc.closeLenAt(j) <= limit
}

// cut returns where to end a body that starts at p inside line li, a line
// too long for any body. Both fragments stay longer than maxStructLine, so
// that neither can look like a fence or <details> line on its own.
func (sc *scanned) cut(p, li, limit int) int {
	st := sc.before(li)
	room := limit - st.reopenLen() - st.closeLen(true)
	rest := sc.end[li] - p
	e := p + min(room, rest-(maxStructLine+2))
	for e > p && !utf8.RuneStart(sc.text[e]) {
		e--
	}
	if e <= p { // unreachable with limit >= MinBody; never loop forever
		e = p + 1
		for e < len(sc.text) && !utf8.RuneStart(sc.text[e]) {
			e++
		}
	}
	return e
}

// piece builds the body from p to e; line li contains p.
func (sc *scanned) piece(p, e, li int) piece {
	pc := piece{reopen: sc.before(li).reopenText(), text: sc.text[p:e]}
	if e == len(sc.text) {
		return pc
	}
	// Find the line that ends at or contains e.
	j := li
	for sc.end[j] < e {
		j++
	}
	if sc.end[j] == e {
		pc.close = sc.after[j].closeText(false)
	} else {
		pc.close = sc.before(j).closeText(true)
	}
	return pc
}
