package ssmbundle

import (
	"errors"
	"strings"
	"testing"
)

// FuzzDecode feeds Decode arbitrary pointers and chunks (the chunks of one
// input are separated by "|", which base64 never uses). Decode must never
// panic, and it must return either a bundle whose content hashes to what
// the pointer says, or an error that says corrupt or newer format.
func FuzzDecode(f *testing.F) {
	b := bundleOf(f, fleet(2, 1), 0)
	for _, limit := range []int{64, 100, StandardLimit} {
		chunks, size, err := Encode(b, limit)
		if err != nil {
			f.Fatal(err)
		}
		p := pointerOf(b, chunks, size)
		joined := strings.Join(chunks, "|")
		f.Add(p.Format, p.Version, p.SHA256, p.Chunks, joined)
		f.Add(p.Format+1, p.Version, p.SHA256, p.Chunks, joined)
		f.Add(p.Format, p.Version, p.SHA256, p.Chunks-1, joined[:strings.LastIndex(joined, "|")+1])
		f.Add(p.Format, p.Version, strings.Repeat("0", 64), p.Chunks, joined)
		f.Add(p.Format, "other", p.SHA256, p.Chunks, joined)
		f.Add(p.Format, p.Version, p.SHA256, p.Chunks, strings.Replace(joined, "A", "B", 1))
	}
	unknown, _ := encodeRaw(f, map[string]any{"meta": b.Meta, "content": b.Content, "extra": 1})
	f.Add(1, b.Meta.Version, b.Meta.SHA256, len(unknown), strings.Join(unknown, "|"))
	empty, _ := encodeRaw(f, map[string]any{})
	f.Add(1, "", "", len(empty), strings.Join(empty, "|"))
	f.Add(1, "v", "", 0, "")
	f.Add(0, "v", "", 1, "H4sIAAAAAAAA/w==")
	f.Add(-1, "", "", -1, "|||")

	f.Fuzz(func(t *testing.T, format int, version, sha string, n int, joined string) {
		var chunks []string
		if joined != "" {
			chunks = strings.Split(joined, "|")
		}
		p := Pointer{Format: format, Version: version, SHA256: sha, Chunks: n}
		got, err := Decode(p, chunks)
		if err != nil {
			if got != nil {
				t.Errorf("Decode returned a bundle and an error: %v", err)
			}
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNewerFormat) {
				t.Errorf("Decode error is neither corrupt nor newer format: %v", err)
			}
			return
		}
		h, err := Hash(got.Content)
		if err != nil {
			t.Fatal(err)
		}
		if h != sha || got.Meta.SHA256 != sha || got.Meta.Version != version || got.Meta.Format != format {
			t.Errorf("Decode accepted a bundle that does not match its pointer: hash %s, meta %+v, pointer %+v", h, got.Meta, p)
		}
		if format > FormatVersion || format < 1 || len(chunks) != n {
			t.Errorf("Decode accepted format %d with %d of %d chunks", format, len(chunks), n)
		}
	})
}
