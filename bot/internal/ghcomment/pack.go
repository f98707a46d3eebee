package ghcomment

import (
	"fmt"
	"slices"
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
	// to it): a body must hold a section's head and tail (up to half a
	// body, see Pack) and still carry rows forward.
	MinBody = 4096
)

// sectionSep joins sections, as review.Markdown does.
const sectionSep = "\n"

// Section is one block of a comment that Pack may split only between
// rows, and that opens and closes every piece it is split into, so that
// every comment renders on its own: a user's <details> with its table
// keeps its <summary> and header row in the next comment.
//
// It has the same fields as review.Section, so a caller converts one to
// the other with ghcomment.Section(s). The two packages do not import each
// other on purpose: review is pure (no GitHub client, no I/O) and
// ghcomment knows comments, not plans. A struct of strings is all they
// need to share; an interface would make review implement a GitHub
// concept for nothing.
type Section struct {
	// Head opens the section: for a user, the <details> and <summary>
	// lines and the table's header and delimiter rows.
	Head string
	// Rows are what the section may be split between (table rows, list
	// items), in order, each ending with its own newline.
	Rows []string
	// Tail closes the section and every piece of it, e.g. "\n</details>\n".
	Tail string
	// ContinuedHead opens the pieces after the first, so that a reader
	// sees where they come from (a <summary> that ends "(continued)");
	// "" means Head.
	ContinuedHead string
}

func (s Section) text() string { return s.Head + strings.Join(s.Rows, "") + s.Tail }

func (s Section) continued() string {
	if s.ContinuedHead == "" {
		return s.Head
	}
	return s.ContinuedHead
}

// join is the sections as one document, the text that Pack divides.
func join(sections []Section) string {
	texts := make([]string, len(sections))
	for i, s := range sections {
		texts[i] = s.text()
	}
	return strings.Join(texts, sectionSep)
}

// Pack divides sections into comment bodies of at most limit bytes
// (limit <= 0 means MaxBody; a limit below MinBody is raised to MinBody),
// in order, sections joined by a newline as in one document. It fills
// greedily: whole sections go into the current body while they fit; a
// section that does not fit in what is left starts the next body; a
// section longer than a whole body is split between its rows, its first
// piece filling what is left of the current body, each piece being its
// Head (ContinuedHead after the first), some rows and its Tail. The first
// section, the summary, is therefore whole in the first body whenever it
// fits in one. Empty sections are left out.
//
// Text is lost in one case only, which only a hostile declaration
// reaches: a row too long to fit a body with its section's head and tail
// is cut at a character boundary and ends with "… (truncated, N bytes
// left out)". A section whose Head or ContinuedHead and Tail take more
// than half a body (hostile too) is not repeated in pieces: its Head and
// Tail are sent as rows of their own, cut the same way when longer than a
// body, and its pieces may not render on their own.
//
// Pack returns nil when there is no text. Markers and "part i of n"
// headers are added later, by Upsert.
func Pack(sections []Section, limit int) []string {
	return pack(sections, limit).bodies
}

// packer is the state of one Pack: the finished bodies and the one being
// filled. carried[i] counts the bytes of the joined sections that bodies
// up to i show, which the step summary reports when it keeps one body.
type packer struct {
	limit   int
	bodies  []string
	carried []int
	cur     strings.Builder
	shown   int
}

func pack(sections []Section, limit int) *packer {
	if limit <= 0 {
		limit = MaxBody
	}
	p := &packer{limit: max(limit, MinBody)}
	for _, s := range sections {
		text := s.text()
		switch {
		case text == "":
		case len(text) <= p.room():
			p.add(text, len(text))
		case len(text) <= p.limit:
			p.flush()
			p.add(text, len(text))
		default:
			p.split(fit(s, p.limit))
		}
	}
	p.flush()
	return p
}

// room is how many bytes the current body can still take as one more
// piece, after the separator that add writes before it.
func (p *packer) room() int {
	if p.cur.Len() == 0 {
		return p.limit
	}
	return p.limit - p.cur.Len() - len(sectionSep)
}

// add appends a piece of text to the current body; shown is how many of
// its bytes come from the sections (the rest is a repeated head or tail).
func (p *packer) add(text string, shown int) {
	if p.cur.Len() > 0 {
		p.cur.WriteString(sectionSep)
		p.shown += len(sectionSep)
	}
	p.cur.WriteString(text)
	p.shown += shown
}

func (p *packer) flush() {
	if p.cur.Len() == 0 {
		return
	}
	p.bodies = append(p.bodies, p.cur.String())
	p.carried = append(p.carried, p.shown)
	p.cur.Reset()
}

// split packs a section that fit has made splittable: every row fits a
// fresh body with the head and tail, so every piece makes progress.
func (p *packer) split(s Section) {
	head, rows := s.Head, s.Rows
	for first := true; first || len(rows) > 0; first = false {
		n, size := take(rows, p.room()-len(head)-len(s.Tail))
		if n == 0 && len(rows) > 0 && p.cur.Len() > 0 {
			// Not one row fits after what the body holds: start afresh.
			p.flush()
			n, size = take(rows, p.limit-len(head)-len(s.Tail))
		}
		shown := size
		if first {
			shown += len(head)
		}
		if n == len(rows) {
			shown += len(s.Tail)
		}
		p.add(head+strings.Join(rows[:n], "")+s.Tail, shown)
		rows, head = rows[n:], s.continued()
		if len(rows) > 0 {
			p.flush()
		}
	}
}

// take counts the leading rows that fit in room bytes, and their size.
func take(rows []string, room int) (n, size int) {
	for n < len(rows) && size+len(rows[n]) <= room {
		size += len(rows[n])
		n++
	}
	return n, size
}

// fit prepares a section longer than a body for split: a head and tail of
// more than half a body become rows of their own, empty rows go, and a row
// that does not fit a body with the head and tail is truncated.
func fit(s Section, limit int) Section {
	frame := max(len(s.Head), len(s.continued())) + len(s.Tail)
	if frame > limit/2 {
		s = Section{Rows: slices.Concat([]string{s.Head}, s.Rows, []string{s.Tail})}
		frame = 0
	}
	// Without empty rows, every piece carries text. The copy keeps the
	// caller's rows as they are.
	s.Rows = slices.DeleteFunc(slices.Clone(s.Rows), func(r string) bool { return r == "" })
	for i, r := range s.Rows {
		if len(r) > limit-frame {
			s.Rows[i] = truncate(r, limit-frame)
		}
	}
	return s
}

// truncate cuts row to at most room bytes (room being at least MinBody/2),
// at a character boundary, and says how much it left out.
func truncate(row string, room int) string {
	marker := func(n int) string { return fmt.Sprintf(" … (truncated, %d bytes left out)\n", n) }
	keep := room - len(marker(len(row))) // the longest marker this row can get
	for keep > 0 && !utf8.RuneStart(row[keep]) {
		keep--
	}
	return row[:keep] + marker(len(row)-keep)
}
