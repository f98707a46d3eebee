package ssmbundle

import (
	"context"
	"testing"
	"time"
)

// BenchmarkPublishRead10kUsers publishes a configuration of 10,000 users
// and 200 clusters to the in-process emulator (Standard tier) and reads it
// back, as one merge and one Lambda start would. Target: under 2 s per
// publish and read.
func BenchmarkPublishRead10kUsers(b *testing.B) {
	ctx := context.Background()
	api := kumoClient(b)
	content := fleet(10_000, 200)
	var res *Result
	start := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		// A new pointer each time, so every publish writes a whole bundle.
		tgt := Target{Pointer: pointerName(b), Tier: "Standard", Keep: 5}
		var err error
		if res, err = Publish(ctx, api, tgt, content, origin(0), false); err != nil {
			b.Fatal(err)
		}
		if _, _, err := Read(ctx, api, tgt.Pointer, unverified); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Milliseconds())/float64(b.N), "ms/op")
	b.ReportMetric(float64(res.Chunks), "chunks")
	b.ReportMetric(float64(res.Bytes), "bytes")
}
