//go:build unix

package config

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dbusers/dbusers/bot/internal/diag"
)

// TestLoadDoesNotOpenAPipe: a named pipe with a declaration's name is
// reported from the listing alone. Opening one for reading would block
// until a writer came, hanging the workflow.
func TestLoadDoesNotOpenAPipe(t *testing.T) {
	root, _ := linkRepo(t)
	if err := syscall.Mkfifo(filepath.Join(root, "users", "pipe.json"), 0o644); err != nil {
		t.Fatal(err)
	}
	type result struct {
		diags diag.List
		err   error
	}
	done := make(chan result, 1)
	go func() {
		_, diags, err := LoadDir(root, today)
		done <- result{diags, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatal(r.err)
		}
		want := diag.List{brokenCluster, d("users/pipe.json", 0, 0, E, "pipe.json is a named pipe, not a regular file, so it was not read"), brokenUser}
		if diff := cmp.Diff(want, r.diags); diff != "" {
			t.Errorf("diagnostics (-want +got):\n%s", diff)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("LoadDir opened the named pipe and blocks on it")
	}
}
