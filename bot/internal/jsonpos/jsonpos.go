// Package jsonpos maps the values of a JSON document to their line and column,
// so that every problem dbusers finds in a declaration can point at the exact
// place a person has to edit. It also rejects what encoding/json silently
// accepts but a reviewer would misread: duplicate keys and absurd nesting.
package jsonpos

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/dbusers/dbusers/bot/internal/quote"
)

// MaxDepth bounds nesting. Declarations are at most four levels deep; a
// deeper document is hostile or broken, and recursion must stay bounded.
const MaxDepth = 32

// Position is a 1-based line and column (columns count characters, not bytes).
type Position struct {
	Line, Col int
}

// Index holds the position of every value in one document, keyed by JSON
// pointer (RFC 6901: "" for the root, "/access/0/role" for a nested value).
//
// The maps are built on first use: most documents are valid and never asked
// for a position, and building them costs more than checking the syntax.
type Index struct {
	src    []byte
	once   sync.Once
	values map[string]int // pointer -> byte offset of the value
	keys   map[string]int // pointer -> byte offset of the key naming it
	// marks are the positions of rune starts about every markEvery bytes,
	// made on first use: a document with thousands of problems must not
	// be scanned from its start for each one.
	marksOnce sync.Once
	marks     []mark
}

// markEvery is the distance between two marks, in bytes.
const markEvery = 512

// mark is the position of the rune starting at byte off.
type mark struct {
	off int
	pos Position
}

// build indexes every value and key of the accepted document.
func (x *Index) build() {
	x.once.Do(func() {
		x.values, x.keys = map[string]int{}, map[string]int{}
		p := &parser{src: x.src, idx: x}
		p.skipSpace()
		if err := p.value("", 0); err != nil {
			panic("jsonpos: document accepted by Parse fails to index: " + err.Error())
		}
	})
}

// SyntaxError is a document that is not valid JSON, with the place it breaks.
type SyntaxError struct {
	Position
	Msg string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("%d:%d: %s", e.Line, e.Col, e.Msg)
}

// Parse indexes src. It fails with a *SyntaxError on malformed JSON, on a key
// repeated within one object, or on nesting deeper than MaxDepth.
func Parse(src []byte) (*Index, error) {
	p := &parser{src: src}
	p.skipSpace()
	if err := p.value("", 0); err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos < len(p.src) {
		return nil, p.errorf("unexpected %s after the top-level value", p.describe())
	}
	return &Index{src: src}, nil
}

// Value returns the position of the value at pointer. For a pointer that does
// not exist (a missing required property, say) it returns the position of
// the nearest existing ancestor, which is where the fix goes.
func (x *Index) Value(pointer string) Position {
	x.build()
	for {
		if off, ok := x.values[pointer]; ok {
			return x.At(off)
		}
		if pointer == "" {
			return Position{1, 1}
		}
		pointer = pointer[:strings.LastIndexByte(pointer, '/')]
	}
}

// Key returns the position of the key that names the value at pointer, or
// the value's own position for array elements and the root.
func (x *Index) Key(pointer string) Position {
	x.build()
	if off, ok := x.keys[pointer]; ok {
		return x.At(off)
	}
	return x.Value(pointer)
}

// Before returns the pointer of the value that starts last before offset:
// for an offset just past a scalar, that scalar. It places errors that only
// carry a byte offset, such as encoding/json's.
func (x *Index) Before(offset int) string {
	x.build()
	best, bestOff := "", -1
	for ptr, off := range x.values {
		if off < offset && off > bestOff {
			best, bestOff = ptr, off
		}
	}
	return best
}

// At converts a byte offset into a position, as PositionAt does, in time
// independent of the offset.
func (x *Index) At(offset int) Position {
	x.marksOnce.Do(func() {
		x.marks = []mark{{0, Position{1, 1}}}
		next := markEvery
		advance(x.src, 0, Position{1, 1}, len(x.src), func(off int, pos Position) {
			if off >= next {
				x.marks = append(x.marks, mark{off, pos})
				next = off + markEvery
			}
		})
	})
	offset = min(offset, len(x.src))
	i := max(0, sort.Search(len(x.marks), func(i int) bool { return x.marks[i].off > offset })-1)
	return advance(x.src, x.marks[i].off, x.marks[i].pos, offset, nil)
}

// PositionAt converts a byte offset of src into a 1-based line and column.
func PositionAt(src []byte, offset int) Position {
	return advance(src, 0, Position{1, 1}, min(offset, len(src)), nil)
}

// advance returns the position of offset, walking src from the rune that
// starts at byte from, at pos. It calls each, when set, with the position of
// every rune start it passes.
func advance(src []byte, from int, pos Position, offset int, each func(int, Position)) Position {
	for i := from; i < offset; {
		if each != nil {
			each(i, pos)
		}
		r, size := utf8.DecodeRune(src[i:])
		if r == '\n' {
			pos.Line++
			pos.Col = 1
		} else {
			pos.Col++
		}
		i += size
	}
	return pos
}

// Pointer joins path segments into a JSON pointer, escaping "~" and "/".
func Pointer(segments ...string) string {
	var b strings.Builder
	for _, s := range segments {
		b.WriteByte('/')
		s = strings.ReplaceAll(s, "~", "~0")
		b.WriteString(strings.ReplaceAll(s, "/", "~1"))
	}
	return b.String()
}

type parser struct {
	src []byte
	pos int
	idx *Index // nil when only checking the syntax
}

func (p *parser) errorf(format string, args ...any) error {
	return &SyntaxError{Position: PositionAt(p.src, p.pos), Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) describe() string {
	if p.pos >= len(p.src) {
		return "end of file"
	}
	r, _ := utf8.DecodeRune(p.src[p.pos:])
	if r < 0x20 || r == utf8.RuneError {
		return fmt.Sprintf("character %U", r)
	}
	return strconv.QuoteRune(r)
}

func (p *parser) skipSpace() {
	for p.pos < len(p.src) {
		switch p.src[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) value(pointer string, depth int) error {
	if p.pos >= len(p.src) {
		return p.errorf("unexpected end of file, expected a value")
	}
	if p.idx != nil {
		p.idx.values[pointer] = p.pos
	}
	switch c := p.src[p.pos]; {
	case c == '{':
		return p.object(pointer, depth)
	case c == '[':
		return p.array(pointer, depth)
	case c == '"':
		_, err := p.str()
		return err
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	default:
		for _, lit := range []string{"true", "false", "null"} {
			if strings.HasPrefix(string(p.src[p.pos:min(len(p.src), p.pos+5)]), lit) {
				p.pos += len(lit)
				return nil
			}
		}
		return p.errorf("unexpected %s, expected a value", p.describe())
	}
}

// enter checks the nesting of an object or array that starts at p.pos;
// depth is the number of containers around it, so it opens level depth+1.
func (p *parser) enter(depth int) error {
	if depth >= MaxDepth {
		return p.errorf("nesting deeper than %d levels", MaxDepth)
	}
	return nil
}

func (p *parser) object(pointer string, depth int) error {
	if err := p.enter(depth); err != nil {
		return err
	}
	p.pos++ // {
	seen := map[string]bool{}
	p.skipSpace()
	if p.pos < len(p.src) && p.src[p.pos] == '}' {
		p.pos++
		return nil
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.src) || p.src[p.pos] != '"' {
			return p.errorf("unexpected %s, expected a quoted key", p.describe())
		}
		keyStart := p.pos
		key, err := p.str()
		if err != nil {
			return err
		}
		if seen[key] {
			p.pos = keyStart
			return p.errorf("key %s appears twice in one object", quote.Value(key))
		}
		seen[key] = true
		var child string
		if p.idx != nil {
			child = pointer + Pointer(key)
			p.idx.keys[child] = keyStart
		}
		p.skipSpace()
		if p.pos >= len(p.src) || p.src[p.pos] != ':' {
			return p.errorf("unexpected %s, expected ':' after key %s", p.describe(), quote.Value(key))
		}
		p.pos++
		p.skipSpace()
		if err := p.value(child, depth+1); err != nil {
			return err
		}
		p.skipSpace()
		if p.pos >= len(p.src) {
			return p.errorf("unexpected end of file, expected ',' or '}'")
		}
		switch p.src[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return nil
		default:
			return p.errorf("unexpected %s, expected ',' or '}'", p.describe())
		}
	}
}

func (p *parser) array(pointer string, depth int) error {
	if err := p.enter(depth); err != nil {
		return err
	}
	p.pos++ // [
	p.skipSpace()
	if p.pos < len(p.src) && p.src[p.pos] == ']' {
		p.pos++
		return nil
	}
	for i := 0; ; i++ {
		p.skipSpace()
		var child string
		if p.idx != nil {
			child = pointer + "/" + strconv.Itoa(i)
		}
		if err := p.value(child, depth+1); err != nil {
			return err
		}
		p.skipSpace()
		if p.pos >= len(p.src) {
			return p.errorf("unexpected end of file, expected ',' or ']'")
		}
		switch p.src[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return nil
		default:
			return p.errorf("unexpected %s, expected ',' or ']'", p.describe())
		}
	}
}

// str reads a string token and returns its decoded value.
func (p *parser) str() (string, error) {
	start := p.pos
	p.pos++ // opening quote
	simple := true
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == '"':
			p.pos++
			raw := p.src[start:p.pos]
			if simple {
				return string(raw[1 : len(raw)-1]), nil
			}
			// Decode exactly as encoding/json does (surrogate pairs,
			// lone surrogates as U+FFFD), so that duplicate keys are the
			// keys encoding/json would see as equal.
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				p.pos = start
				return "", p.errorf("invalid string")
			}
			return s, nil
		case c == '\\':
			simple = false
			if p.pos+1 >= len(p.src) {
				p.pos++
				return "", p.errorf("unexpected end of file in a string")
			}
			switch p.src[p.pos+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.pos += 2
			case 'u':
				if p.pos+6 > len(p.src) || !isHex(p.src[p.pos+2:p.pos+6]) {
					return "", p.errorf("invalid \\u escape in a string")
				}
				p.pos += 6
			default:
				return "", p.errorf("invalid escape \\%c in a string", p.src[p.pos+1])
			}
		case c < 0x20:
			return "", p.errorf("control character %U in a string (escape it)", rune(c))
		default:
			if c >= 0x80 {
				simple = false
				r, size := utf8.DecodeRune(p.src[p.pos:])
				if r == utf8.RuneError && size == 1 {
					return "", p.errorf("invalid UTF-8 in a string")
				}
				p.pos += size
				continue
			}
			p.pos++
		}
	}
	return "", p.errorf("unexpected end of file in a string")
}

func isHex(b []byte) bool {
	for _, c := range b {
		if !strings.ContainsRune("0123456789abcdefABCDEF", rune(c)) {
			return false
		}
	}
	return true
}

func (p *parser) number() error {
	start := p.pos
	if p.src[p.pos] == '-' {
		p.pos++
	}
	digits := func() int {
		n := 0
		for p.pos < len(p.src) && p.src[p.pos] >= '0' && p.src[p.pos] <= '9' {
			p.pos++
			n++
		}
		return n
	}
	if p.pos < len(p.src) && p.src[p.pos] == '0' {
		p.pos++
	} else if digits() == 0 {
		return p.errorf("invalid number")
	}
	if p.pos < len(p.src) && p.src[p.pos] == '.' {
		p.pos++
		if digits() == 0 {
			return p.errorf("invalid number: digits expected after '.'")
		}
	}
	if p.pos < len(p.src) && (p.src[p.pos] == 'e' || p.src[p.pos] == 'E') {
		p.pos++
		if p.pos < len(p.src) && (p.src[p.pos] == '+' || p.src[p.pos] == '-') {
			p.pos++
		}
		if digits() == 0 {
			return p.errorf("invalid number: digits expected in the exponent")
		}
	}
	if p.pos == start {
		return p.errorf("invalid number")
	}
	return nil
}
