package ssmbundle

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dbusers/dbusers/bot/internal/config"
)

func TestTargetOf(t *testing.T) {
	tests := []struct {
		name      string
		in        config.SSM
		want      Target
		wantLimit int
	}{
		{"defaults", config.SSM{Parameter: "/p"}, Target{Pointer: "/p", Tier: "Standard", Keep: 5}, StandardLimit},
		{"standard", config.SSM{Parameter: "/p", Tier: "Standard", KeepVersions: 2}, Target{Pointer: "/p", Tier: "Standard", Keep: 2}, StandardLimit},
		{"advanced", config.SSM{Parameter: "/p", Tier: "Advanced", KeepVersions: 100}, Target{Pointer: "/p", Tier: "Advanced", Keep: 100}, AdvancedLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := TargetOf(tt.in)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("TargetOf (-want +got):\n%s", diff)
			}
			limit, err := got.Limit()
			if err != nil || limit != tt.wantLimit {
				t.Errorf("Limit() = %d, %v; want %d", limit, err, tt.wantLimit)
			}
		})
	}
	if _, err := (Target{Tier: "Intelligent-Tiering"}).Limit(); err == nil || !strings.Contains(err.Error(), `unknown SSM tier "Intelligent-Tiering"`) {
		t.Errorf("Limit of an unknown tier: %v", err)
	}
}

// TestPublishRoundTrip publishes twice and reads back, and checks the order
// of writes: every chunk, then the pointer, then the deletions.
func TestPublishRoundTrip(t *testing.T) {
	ctx := context.Background()
	api := &recorder{API: kumoClient(t)}
	tgt := Target{Pointer: pointerName(t), Tier: "Standard", Keep: 1}

	first := fleet(300, 10)
	res1, err := Publish(ctx, api, tgt, first, origin(0), false)
	if err != nil {
		t.Fatal(err)
	}
	if !res1.Changed || res1.Chunks < 2 || len(res1.Pruned) != 0 {
		t.Fatalf("first publish: %+v; want changed, several chunks, nothing pruned", res1)
	}
	checkOrder(t, api.writes(), tgt.Pointer, res1, nil)

	second := fleet(300, 10)
	second.Users = second.Users[1:] // u00000 leaves
	api.reset()
	o := origin(1)
	res2, err := Publish(ctx, api, tgt, second, o, false)
	if err != nil {
		t.Fatal(err)
	}
	if !res2.Changed || res2.Version == res1.Version || !slices.Equal(res2.Pruned, []string{res1.Version}) {
		t.Fatalf("second publish: %+v; want a new version, %s pruned", res2, res1.Version)
	}
	checkOrder(t, api.writes(), tgt.Pointer, res2, []string{res1.Version})

	b, _, err := Read(ctx, api, tgt.Pointer, unverified)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(second, b.Content); diff != "" {
		t.Errorf("content read back (-published +read):\n%s", diff)
	}
	wantMeta := Meta{Format: FormatVersion, Version: res2.Version, Commit: o.Commit, PullRequest: o.PullRequest,
		MergedBy: o.MergedBy, PublishedAt: o.Time, SHA256: res2.SHA256}
	if diff := cmp.Diff(wantMeta, b.Meta); diff != "" {
		t.Errorf("meta read back (-want +got):\n%s", diff)
	}
	if sha, _ := Hash(second); sha != res2.SHA256 {
		t.Errorf("result sha256 %s, content hashes to %s", res2.SHA256, sha)
	}
	if !strings.HasPrefix(res2.Version, "20260301T090100Z-"+res2.SHA256[:12]) {
		t.Errorf("version %s does not start with the publication time and hash", res2.Version)
	}
	if got := versionsUnder(t, api, tgt.Pointer); !slices.Equal(got, []string{res2.Version}) {
		t.Errorf("versions left: %v, want only %s", got, res2.Version)
	}
}

// checkOrder asserts that writes are: each chunk of res in order, then the
// pointer, then deletions of exactly the pruned versions' chunks.
func checkOrder(t *testing.T, writes []call, pointer string, res *Result, pruned []string) {
	t.Helper()
	var want []string
	for i := range res.Chunks {
		want = append(want, "put "+ChunkName(pointer, res.Version, i))
	}
	want = append(want, "put "+pointer)
	var got []string
	deleted := map[string]bool{}
	for _, w := range writes {
		if w.Op == "DeleteParameters" {
			for _, n := range w.Names {
				v, _, _ := strings.Cut(strings.TrimPrefix(n, VersionsPath(pointer)+"/"), "/")
				if !strings.HasPrefix(n, VersionsPath(pointer)+"/") || !slices.Contains(pruned, v) {
					t.Errorf("deleted %s, which is not a chunk of a pruned version %v", n, pruned)
				}
				deleted[v] = true
			}
			if len(got) == 0 || got[len(got)-1] != "delete" {
				got = append(got, "delete")
			}
			continue
		}
		got = append(got, "put "+w.Names[0])
	}
	if len(pruned) > 0 {
		want = append(want, "delete")
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("write order (-want +got):\n%s", diff)
	}
	for _, v := range pruned {
		if !deleted[v] {
			t.Errorf("version %s was not deleted", v)
		}
	}
}

// TestChunkLimits checks every value sent against the tier's limit, since
// the emulator accepts values of any size and SSM does not.
func TestChunkLimits(t *testing.T) {
	ctx := context.Background()
	content := fleet(2000, 40)
	for _, tc := range []struct {
		tier  string
		limit int
	}{{"Standard", 4096}, {"Advanced", 8192}} {
		t.Run(tc.tier, func(t *testing.T) {
			api := &recorder{API: kumoClient(t)}
			tgt := Target{Pointer: pointerName(t), Tier: tc.tier, Keep: 3}
			res, err := Publish(ctx, api, tgt, content, origin(0), false)
			if err != nil {
				t.Fatal(err)
			}
			writes := api.writes()
			if len(writes) != res.Chunks+1 || res.Chunks < 3 {
				t.Fatalf("%d writes for %d chunks; want every chunk and the pointer, several chunks", len(writes), res.Chunks)
			}
			total := 0
			for i, w := range writes {
				if len(w.Value) > tc.limit {
					t.Errorf("%s: value of %d bytes, over the %s limit of %d", w.Names[0], len(w.Value), tc.tier, tc.limit)
				}
				if w.Tier != tc.tier {
					t.Errorf("%s: tier %q, want %q", w.Names[0], w.Tier, tc.tier)
				}
				if i < res.Chunks-1 && len(w.Value) != tc.limit {
					t.Errorf("%s: chunk %d of %d is %d bytes; only the last may be short of %d", w.Names[0], i, res.Chunks, len(w.Value), tc.limit)
				}
				if i < res.Chunks {
					total += len(w.Value)
				}
			}
			if want := (res.Bytes + 2) / 3 * 4; total != want { // base64 of the gzip
				t.Errorf("chunks hold %d bytes, want %d (base64 of %d)", total, want, res.Bytes)
			}
			if _, _, err := Read(ctx, api, tgt.Pointer, unverified); err != nil {
				t.Error(err)
			}
		})
	}
	t.Run("unknown tier", func(t *testing.T) {
		api := &recorder{API: kumoClient(t)}
		tgt := Target{Pointer: pointerName(t), Tier: "Intelligent-Tiering", Keep: 3}
		_, err := Publish(ctx, api, tgt, content, origin(0), false)
		if err == nil || !strings.Contains(err.Error(), "unknown SSM tier") {
			t.Errorf("Publish = %v, want an unknown-tier error", err)
		}
		if len(api.calls) != 0 {
			t.Errorf("an unknown tier still made calls: %+v", api.calls)
		}
	})
	t.Run("too many chunks", func(t *testing.T) {
		// Random text hardly compresses: ~250 KB of base64 in 64-byte chunks.
		c := fleet(1, 1)
		var text strings.Builder
		for text.Len() < 300_000 {
			text.WriteString(rand.Text())
		}
		c.Users[0].Description = text.String()
		_, _, err := Encode(&Bundle{Content: c}, 64)
		if err == nil || !strings.Contains(err.Error(), "over the limit of 2000") {
			t.Errorf("Encode into 64-byte chunks = %v, want a refusal over MaxChunks", err)
		}
	})
}

// TestPrune publishes seven versions keeping three, with a stray newer
// version that pruning must leave alone.
func TestPrune(t *testing.T) {
	ctx := context.Background()
	api := &recorder{API: kumoClient(t)}
	tgt := Target{Pointer: pointerName(t), Tier: "Standard", Keep: 3}
	// A version newer than any this test publishes: a concurrent publisher's
	// (or a clock ahead of ours). Not ours to judge.
	future := "20990101T000000Z-000000000000"
	put(t, api, ChunkName(tgt.Pointer, future, 0), "stray")

	var versions []string
	for i := range 7 {
		c := fleet(20+i, 3) // each publish changes the content
		res, err := Publish(ctx, api, tgt, c, origin(i), false)
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		versions = append(versions, res.Version)
		wantPruned := []string(nil)
		if i >= 3 {
			wantPruned = []string{versions[i-3]}
		}
		if diff := cmp.Diff(wantPruned, res.Pruned); diff != "" {
			t.Errorf("publish %d pruned (-want +got):\n%s", i, diff)
		}
	}
	got := versionsUnder(t, api, tgt.Pointer)
	want := append(slices.Clone(versions[4:]), future)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("versions left (-want +got):\n%s", diff)
	}
	b, _, err := Read(ctx, api, tgt.Pointer, unverified)
	if err != nil {
		t.Fatal(err)
	}
	if b.Meta.Version != versions[6] {
		t.Errorf("current version %s, want %s", b.Meta.Version, versions[6])
	}
}

func TestPublishUnchangedWritesNothing(t *testing.T) {
	ctx := context.Background()
	api := &recorder{API: kumoClient(t)}
	tgt := Target{Pointer: pointerName(t), Tier: "Standard", Keep: 3}
	content := fleet(50, 5)
	first, err := Publish(ctx, api, tgt, content, origin(0), false)
	if err != nil {
		t.Fatal(err)
	}
	pointerBefore := get(t, api, tgt.Pointer)
	api.reset()
	again, err := Publish(ctx, api, tgt, fleet(50, 5), origin(5), false)
	if err != nil {
		t.Fatal(err)
	}
	want := &Result{Version: first.Version, SHA256: first.SHA256, Chunks: first.Chunks, Bytes: first.Bytes}
	if diff := cmp.Diff(want, again); diff != "" {
		t.Errorf("unchanged publish (-want +got):\n%s", diff)
	}
	if w := api.writes(); len(w) != 0 {
		t.Errorf("an unchanged publish wrote: %+v", w)
	}
	if got := get(t, api, tgt.Pointer); got != pointerBefore {
		t.Errorf("pointer changed:\n%s\n%s", pointerBefore, got)
	}
}

// TestPublishRepairsBrokenVersion: the content is unchanged but a chunk of
// the current version was deleted by hand; publishing writes it again.
func TestPublishRepairsBrokenVersion(t *testing.T) {
	ctx := context.Background()
	api := &recorder{API: kumoClient(t)}
	tgt := Target{Pointer: pointerName(t), Tier: "Standard", Keep: 3}
	content := fleet(200, 5)
	first, err := Publish(ctx, api, tgt, content, origin(0), false)
	if err != nil {
		t.Fatal(err)
	}
	deleteParam(t, api, ChunkName(tgt.Pointer, first.Version, 1))
	res, err := Publish(ctx, api, tgt, content, origin(1), false)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || res.Version == first.Version || !strings.Contains(res.Repaired, "missing chunk") {
		t.Errorf("publish over a broken version: %+v; want a new version and the reason", res)
	}
	if _, _, err := Read(ctx, api, tgt.Pointer, unverified); err != nil {
		t.Error(err)
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	ctx := context.Background()
	api := &recorder{API: kumoClient(t)}
	tgt := Target{Pointer: pointerName(t), Tier: "Standard", Keep: 3}

	res, err := Publish(ctx, api, tgt, fleet(100, 5), origin(0), true)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || res.Chunks == 0 || res.Version == "" {
		t.Errorf("dry run of a first publish: %+v; want what would be written", res)
	}
	if w := api.writes(); len(w) != 0 {
		t.Errorf("a dry run wrote: %+v", w)
	}
	if _, _, err := Read(ctx, api, tgt.Pointer, unverified); !errors.Is(err, ErrNoPointer) {
		t.Errorf("Read after a dry run = %v, want ErrNoPointer", err)
	}

	// Over a published version: still nothing written, nothing pruned.
	for i := range 4 {
		if _, err := Publish(ctx, api, tgt, fleet(100+i, 5), origin(1+i), false); err != nil {
			t.Fatal(err)
		}
	}
	before := versionsUnder(t, api, tgt.Pointer)
	api.reset()
	res, err = Publish(ctx, api, tgt, fleet(200, 5), origin(10), true)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || len(res.Pruned) != 0 {
		t.Errorf("dry run of a change: %+v", res)
	}
	if w := api.writes(); len(w) != 0 {
		t.Errorf("a dry run wrote: %+v", w)
	}
	if after := versionsUnder(t, api, tgt.Pointer); !slices.Equal(before, after) {
		t.Errorf("versions changed in a dry run: %v → %v", before, after)
	}
}

// TestFailedChunkKeepsPreviousVersion: when a chunk cannot be written, the
// pointer is not touched and readers keep the previous version.
func TestFailedChunkKeepsPreviousVersion(t *testing.T) {
	ctx := context.Background()
	api := &recorder{API: kumoClient(t)}
	tgt := Target{Pointer: pointerName(t), Tier: "Standard", Keep: 3}
	first, err := Publish(ctx, api, tgt, fleet(100, 5), origin(0), false)
	if err != nil {
		t.Fatal(err)
	}
	api.failPut = func(name string) bool { return strings.HasSuffix(name, "/0002") }
	_, err = Publish(ctx, api, tgt, fleet(1000, 5), origin(1), false)
	if err == nil || !strings.Contains(err.Error(), "the pointer still names the previous version") {
		t.Fatalf("Publish with a failing chunk = %v", err)
	}
	b, _, err := Read(ctx, api, tgt.Pointer, unverified)
	if err != nil {
		t.Fatal(err)
	}
	if b.Meta.Version != first.Version {
		t.Errorf("current version %s, want the previous %s", b.Meta.Version, first.Version)
	}
}

func TestPublishRefusals(t *testing.T) {
	ctx := context.Background()
	api := &recorder{API: kumoClient(t)}
	tgt := Target{Pointer: pointerName(t), Tier: "Standard", Keep: 3}

	_, err := Publish(ctx, api, tgt, fleet(1, 1), Origin{}, false)
	if err == nil || !strings.Contains(err.Error(), "no publication time") {
		t.Errorf("Publish without a time = %v", err)
	}

	put(t, api, tgt.Pointer, "not json")
	_, err = Publish(ctx, api, tgt, fleet(1, 1), origin(0), false)
	if err == nil || !strings.Contains(err.Error(), "is not a dbusers pointer") {
		t.Errorf("Publish over a foreign parameter = %v", err)
	}

	put(t, api, tgt.Pointer, fmt.Sprintf(`{"format": 2, "version": "v", "sha256": %q, "chunks": 1}`, strings.Repeat("a", 64)))
	api.reset()
	_, err = Publish(ctx, api, tgt, fleet(1, 1), origin(0), false)
	if err == nil || !strings.Contains(err.Error(), "written by a newer dbusers") {
		t.Errorf("Publish over a newer format = %v", err)
	}
	if w := api.writes(); len(w) != 0 {
		t.Errorf("refused publishes wrote: %+v", w)
	}
}
