package ssmbundle

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// bundleOf returns a bundle of c as Publish would build it at minute m.
func bundleOf(tb testing.TB, c Content, m int) *Bundle {
	tb.Helper()
	sha, err := Hash(c)
	if err != nil {
		tb.Fatal(err)
	}
	o := origin(m)
	return &Bundle{
		Meta: Meta{Format: FormatVersion, Version: VersionFor(o.Time, sha), Commit: o.Commit, PullRequest: o.PullRequest,
			MergedBy: o.MergedBy, PublishedAt: o.Time, SHA256: sha},
		Content: c,
	}
}

// encodeRaw gzips the JSON of any value and splits its base64 into
// Standard chunks, as Encode does for a bundle.
func encodeRaw(tb testing.TB, v any) ([]string, int) {
	tb.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(v); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	text := base64.StdEncoding.EncodeToString(buf.Bytes())
	var chunks []string
	for len(text) > 0 {
		n := min(len(text), StandardLimit)
		chunks, text = append(chunks, text[:n]), text[n:]
	}
	return chunks, buf.Len()
}

// pointerOf returns the pointer Publish would write for b and its chunks.
func pointerOf(b *Bundle, chunks []string, size int) Pointer {
	return Pointer{Format: b.Meta.Format, Version: b.Meta.Version, SHA256: b.Meta.SHA256, Chunks: len(chunks), Bytes: size,
		Commit: b.Meta.Commit, PullRequest: b.Meta.PullRequest, PublishedAt: b.Meta.PublishedAt}
}

func TestEncodeDecode(t *testing.T) {
	b := bundleOf(t, fleet(500, 20), 0)
	for _, limit := range []int{64, 65, 1000, StandardLimit, AdvancedLimit, 1 << 20} {
		chunks, size, err := Encode(b, limit)
		if err != nil {
			t.Fatalf("limit %d: %v", limit, err)
		}
		total := 0
		for i, c := range chunks {
			if len(c) > limit || len(c) == 0 {
				t.Errorf("limit %d: chunk %d is %d bytes", limit, i, len(c))
			}
			total += len(c)
		}
		if want := base64.StdEncoding.EncodedLen(size); total != want {
			t.Errorf("limit %d: %d bytes of chunks for %d bytes of gzip, want %d", limit, total, size, want)
		}
		got, err := Decode(pointerOf(b, chunks, size), chunks)
		if err != nil {
			t.Fatalf("limit %d: %v", limit, err)
		}
		if diff := cmp.Diff(b, got); diff != "" {
			t.Errorf("limit %d: round trip (-want +got):\n%s", limit, diff)
		}
	}
	if _, _, err := Encode(b, 63); err == nil {
		t.Error("Encode accepted a 63-byte chunk limit")
	}
}

// TestHash checks that the hash means "same content": equal for equal
// declarations, whatever the map order, different for any change, and
// stable through a publish and read.
func TestHash(t *testing.T) {
	a, b := fleet(10, 3), fleet(10, 3)
	b.Clusters[1].Tags = map[string]string{"z": "1", "a": "2", "m": "3"}
	a.Clusters[1].Tags = map[string]string{"m": "3", "z": "1", "a": "2"}
	ha, _ := Hash(a)
	hb, _ := Hash(b)
	if ha != hb || len(ha) != 64 {
		t.Errorf("equal contents hash to %s and %s", ha, hb)
	}
	b.Users[3].Access[1].Databases[0] = "ordersx"
	if hb, _ := Hash(b); hb == ha {
		t.Error("a changed database did not change the hash")
	}
	if got, want := VersionFor(time.Date(2026, 3, 1, 9, 5, 7, 0, time.FixedZone("x", 3600)), ha), "20260301T080507Z-"+ha[:12]; got != want {
		t.Errorf("VersionFor = %s, want %s", got, want)
	}
}

func TestDecodeNamesTheChunk(t *testing.T) {
	b := bundleOf(t, fleet(300, 10), 0)
	chunks, size, err := Encode(b, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 3, len(chunks) - 1} {
		bad := append([]string(nil), chunks...)
		bad[i] = bad[i][:5] + "%" + bad[i][6:]
		_, err := Decode(pointerOf(b, bad, size), bad)
		want := fmt.Sprintf("version %s chunk %d: base64", b.Meta.Version, i)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), want) {
			t.Errorf("bad base64 in chunk %d: %v, want %q", i, err, want)
		}
	}
}

// TestDecodeRejectsUnknownFields: a bundle with fields this reader does not
// know was written by a newer dbusers that forgot to raise the format;
// reading it anyway could drop what the new fields mean.
func TestDecodeRejectsUnknownFields(t *testing.T) {
	b := bundleOf(t, fleet(3, 1), 0)
	data, _ := json.Marshal(b)
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	m["content"].(map[string]any)["groups"] = []string{"x"}
	chunks, size := encodeRaw(t, m)
	_, err := Decode(pointerOf(b, chunks, size), chunks)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), `unknown field "groups"`) {
		t.Errorf("Decode with an unknown field = %v", err)
	}
}

// TestTenThousandUsers publishes the size DESIGN.md commits to through the
// emulator and reads it back whole.
func TestTenThousandUsers(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the 10,000-user publish in -short mode")
	}
	ctx := context.Background()
	api := &recorder{API: kumoClient(t)}
	content := fleet(10_000, 200)
	for _, tier := range []string{"Standard", "Advanced"} {
		t.Run(tier, func(t *testing.T) {
			tgt := Target{Pointer: pointerName(t), Tier: tier, Keep: 5}
			start := time.Now()
			res, err := Publish(ctx, api, tgt, content, origin(0), false)
			if err != nil {
				t.Fatal(err)
			}
			b, _, err := Read(ctx, api, tgt.Pointer, unverified)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d chunks, %d bytes of gzip, publish and read in %v", tier, res.Chunks, res.Bytes, time.Since(start).Round(time.Millisecond))
			if !reflect.DeepEqual(content, b.Content) { // cmp.Diff of 10,000 users takes seconds: only on failure
				t.Errorf("content read back (-published +read):\n%s", cmp.Diff(content, b.Content))
			}
			limit, _ := tgt.Limit()
			for _, w := range api.writes() {
				if len(w.Value) > limit {
					t.Errorf("%s: %d bytes, over %d", w.Names[0], len(w.Value), limit)
				}
			}
		})
	}
}
