package ghcomment

import (
	"strings"
	"testing"
)

// fuzzSections reads sections from text: cut at every \x1e into
// sections; a section with \x1f in it is its head, rows and tail between
// them (a head being cut at \x1d into Head and ContinuedHead), one
// without is rows only, one a line.
func fuzzSections(text string) []Section {
	var sections []Section
	for _, field := range strings.Split(text, "\x1e") {
		parts := strings.Split(field, "\x1f")
		if len(parts) == 1 {
			sections = append(sections, Section{Rows: strings.SplitAfter(field, "\n")})
			continue
		}
		head, continued, _ := strings.Cut(parts[0], "\x1d")
		sections = append(sections, Section{Head: head, ContinuedHead: continued, Rows: parts[1 : len(parts)-1], Tail: parts[len(parts)-1]})
	}
	return sections
}

// FuzzPack packs arbitrary sections (fuzzSections), repeated (up to 64
// times, 256 KiB) to reach several bodies, under a limit between MinBody
// and MinBody+8191, and checks what holds for every input (checkPack): no
// body over the limit; the sections whole and in order across the bodies,
// or split between rows with their head and tail in every piece; a body
// ended only where the next piece does not fit; no row lost or changed but
// the documented truncation of one too long for a body; the summary whole
// in body 1 when it fits.
func FuzzPack(f *testing.F) {
	for _, s := range []string{
		"",
		"### Plan\n\nNo changes.\n",
		"summary\x1e<details><summary>alice</summary>\n\n| a | b |\n|---|---|\n\x1d<details><summary>alice (continued)</summary>\n\n| a | b |\n|---|---|\n\x1f| 1 | 2 |\n\x1f| 3 | 4 |\n\x1f\n</details>\n",
		"<details>\n\n\x1f- item\n\x1f- item 2\n\x1f\x1f\x1f\n</details>\n",
		"\x1e\x1e\x1eempty sections\x1e\x1f\x1f",
		"日本語🙂\r\n```\r\ncrlf\r\n```\r\n",
		strings.Repeat("日本語🙂", 1100) + "\n\x1ea row longer than any body of the fuzzed limits",
		strings.Repeat("h", 3000) + "\x1frow\n\x1ftail: a head of more than half a body\n",
		"head\x1d" + strings.Repeat("c", 3000) + "\x1frow\n\x1ftail\n",
	} {
		f.Add(s, uint16(0), uint8(0))
		f.Add(s, uint16(1000), uint8(60))
	}
	f.Fuzz(func(t *testing.T, s string, extra uint16, repeat uint8) {
		limit := MinBody + int(extra%8192)
		text := strings.Repeat(s, 1+int(repeat)%64)
		if len(text) > 256<<10 {
			t.Skip("input too large")
		}
		sections := fuzzSections(text)
		checkPack(t, sections, limit, Pack(sections, limit))
	})
}
