package config

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"
)

// today is the date every test judges expiry against: the base repository
// has an entry that expires later this year.
var today = time.Date(2026, 3, 1, 15, 4, 5, 0, time.UTC)

// readTree returns every file under dir, keyed by slash-separated path
// relative to dir.
func readTree(t testing.TB, dir string) fstest.MapFS {
	t.Helper()
	out := fstest.MapFS{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		out[filepath.ToSlash(rel)] = &fstest.MapFile{Data: data, Mode: 0o644}
		return nil
	})
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	return out
}

// overlay returns the base repository with the files of
// testdata/broken/<name> laid over it (a file there replaces or adds the
// file at the same relative path).
func overlay(t testing.TB, name string) fstest.MapFS {
	t.Helper()
	fsys := readTree(t, filepath.Join("testdata", "base"))
	if name == "" {
		return fsys
	}
	dir := filepath.Join("testdata", "broken", name)
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("case %s: %v", name, err)
	}
	for p, f := range readTree(t, dir) {
		fsys[p] = f
	}
	return fsys
}
