package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

func writePointer(tb testing.TB, s *store, pointer, version string) {
	tb.Helper()
	value, _ := json.Marshal(map[string]any{"format": 1, "version": version, "sha256": strings.Repeat("a", 64), "chunks": 1})
	if _, err := s.Client.PutParameter(context.Background(), &ssm.PutParameterInput{Name: aws.String(pointer), Value: aws.String(string(value)),
		Type: "String", Tier: "Standard", Overwrite: aws.Bool(true)}); err != nil {
		tb.Fatal(err)
	}
}

// TestWaitFindsTheRecord: the record comes while the wait polls.
func TestWaitFindsTheRecord(t *testing.T) {
	s, pointer := newStore(t), pointerName(t)
	v := versionAt(0)
	writePointer(t, s, pointer, v)
	polls := 0
	go func() {
		time.Sleep(150 * time.Millisecond)
		if _, err := Write(context.Background(), s, pointer, update(v, 2, t0), 5); err != nil {
			t.Error(err)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	found, err := Wait(ctx, s, pointer, v, 20*time.Millisecond, func(p Progress) {
		polls++
		if p.Current != v {
			t.Errorf("progress names %q", p.Current)
		}
	})
	if err != nil || found.Version != v || found.SupersededBy != "" || len(found.Record.Clusters) != 2 {
		t.Fatalf("found %+v, %v", found, err)
	}
	if polls == 0 {
		t.Error("no progress while waiting")
	}
}

// TestWaitTimesOut: a record that never comes ends the wait with
// ErrTimeout and a message that says what was seen and where to look.
func TestWaitTimesOut(t *testing.T) {
	s, pointer := newStore(t), pointerName(t)
	v := versionAt(0)
	writePointer(t, s, pointer, v)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := Wait(ctx, s, pointer, v, 30*time.Millisecond, nil)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("%v, want ErrTimeout", err)
	}
	for _, want := range []string{"no run of version " + v + " finished within", "the pointer names it", "dbusers-errors", "dbusers rollout --version " + v} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error lacks %q: %v", want, err)
		}
	}
}

// TestWaitFollowsANewerVersion: a version superseded before a run read it
// never gets a record; the newer version's carries its declarations.
func TestWaitFollowsANewerVersion(t *testing.T) {
	s, pointer := newStore(t), pointerName(t)
	v, newer := versionAt(0), versionAt(1)
	writePointer(t, s, pointer, newer)
	if _, err := Write(context.Background(), s, pointer, update(newer, 3, t0), 5); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	found, err := Wait(ctx, s, pointer, v, 20*time.Millisecond, nil)
	if err != nil || found.Version != newer || found.SupersededBy != newer || found.Record.Version != newer {
		t.Fatalf("found %+v, %v", found, err)
	}
	// Its own record, when it has one, wins.
	if _, err := Write(context.Background(), s, pointer, update(v, 1, t0), 5); err != nil {
		t.Fatal(err)
	}
	if found, err = Wait(ctx, s, pointer, v, 20*time.Millisecond, nil); err != nil || found.Version != v || found.SupersededBy != "" {
		t.Fatalf("found %+v, %v", found, err)
	}
}

func TestWaitRefusesABadVersion(t *testing.T) {
	if _, err := Wait(context.Background(), newStore(t), "/p", "../x", time.Millisecond, nil); err == nil {
		t.Fatal("accepted ../x")
	}
}
