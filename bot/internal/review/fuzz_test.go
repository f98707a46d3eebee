package review

import (
	"regexp"
	"strings"
	"testing"
)

var escapeSeeds = []string{
	"", "plain", "a|b", `a\|b`, `a\`, "`", "``x``", "x`<b>|y.json", "<script>alert(1)</script>",
	"two\nlines\r\n", "\\\\|", " ` ", "&lt;", "日本|語",
}

// unescapedPipe reports whether s has a pipe that a GFM table splits a
// row at: one preceded by an even number of backslashes (cmark-gfm's
// scanner pairs escapes from the left).
func unescapedPipe(s string) bool {
	backslashes := 0
	for _, r := range s {
		switch r {
		case '\\':
			backslashes++
			continue
		case '|':
			if backslashes%2 == 0 {
				return true
			}
		}
		backslashes = 0
	}
	return false
}

func FuzzCell(f *testing.F) {
	for _, s := range escapeSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := cell(s)
		if strings.ContainsAny(got, "<>\n\r") {
			t.Errorf("cell(%q) = %q keeps markup or a line break", s, got)
		}
		if unescapedPipe(got) {
			t.Errorf("cell(%q) = %q has a pipe that splits the cell", s, got)
		}
		// Markdown's unescaping gives the text back, line breaks aside.
		back := strings.NewReplacer(`\\`, `\`, `\|`, "|", "&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(got)
		if want := strings.NewReplacer("\n", " ", "\r", " ").Replace(s); back != want {
			t.Errorf("cell(%q) = %q reads back as %q", s, got, back)
		}
	})
}

func FuzzCode(f *testing.F) {
	for _, s := range escapeSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := code(s)
		if s == "" {
			if got != "" {
				t.Fatalf("code(\"\") = %q, want nothing", got)
			}
			return
		}
		if strings.ContainsAny(got, "\n\r") {
			t.Fatalf("code(%q) = %q spans lines", s, got)
		}
		n := len(got) - len(strings.TrimLeft(got, "`"))
		fence := strings.Repeat("`", n)
		if n == 0 || !strings.HasSuffix(got, fence) || len(got) < 2*n {
			t.Fatalf("code(%q) = %q is not fenced", s, got)
		}
		inner := got[n : len(got)-n]
		if strings.Contains(inner, fence) {
			t.Errorf("code(%q) = %q: the content holds the fence", s, got)
		}
		if strings.HasPrefix(inner, "`") || strings.HasSuffix(inner, "`") {
			t.Errorf("code(%q) = %q: a backtick touches the fence", s, got)
		}
		// CommonMark strips one space from each side when both are spaces.
		if len(inner) >= 2 && inner[0] == ' ' && inner[len(inner)-1] == ' ' && strings.Trim(inner, " ") != "" {
			inner = inner[1 : len(inner)-1]
		}
		if want := strings.NewReplacer("\n", " ", "\r", " ").Replace(s); inner != want {
			t.Errorf("code(%q) = %q shows %q", s, got, inner)
		}
		if cc := codeCell(s); strings.Contains(strings.ReplaceAll(cc, `\|`, ""), "|") {
			t.Errorf("codeCell(%q) = %q has an unescaped pipe", s, cc)
		}
	})
}

func FuzzInlineHTML(f *testing.F) {
	for _, s := range escapeSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got := inlineHTML(s); strings.ContainsAny(got, "<>\"'\n\r") {
			t.Errorf("inlineHTML(%q) = %q", s, got)
		}
	})
}

// FuzzProse: a sentence from the server, rendered as GitHub renders a
// paragraph, is text and code spans only: no HTML, link, emphasis,
// strikethrough, image or line break gets through.
func FuzzProse(f *testing.F) {
	for _, s := range append(escapeSeeds, hostileNames...) {
		f.Add(s)
	}
	f.Add("drop acme_x @acme/team https://evil.example www.evil.example a@b.c *x* _y_ ~~z~~ [l](u) ![i](u)")
	tags := regexp.MustCompile(`<(/?)([a-z0-9]+)`)
	f.Fuzz(func(t *testing.T, s string) {
		got := prose(s)
		if strings.ContainsAny(got, "\n\r") {
			t.Fatalf("prose(%q) = %q spans lines", s, got)
		}
		// As the rest of a list item, where the comment puts it.
		html := renderGFM(t, "- x "+got+"\n")
		for _, m := range tags.FindAllStringSubmatch(html, -1) {
			if tag := m[2]; tag != "ul" && tag != "li" && tag != "code" {
				t.Errorf("prose(%q) = %q renders <%s%s>:\n%s", s, got, m[1], tag, html)
			}
		}
	})
}
