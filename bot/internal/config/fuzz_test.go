package config

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/dbusers/dbusers/bot/internal/diag"
	"github.com/dbusers/dbusers/bot/internal/jsonpos"
)

// FuzzDecode feeds arbitrary bytes to Decode as each kind of declaration.
// Decode must never panic, and must give exactly one of two results:
//
//   - a value: a non-nil source for the path, no diagnostics, and the bytes
//     are valid JSON that encoding/json decodes into the same type; or
//   - no source and at least one diagnostic, every one an error in that
//     file at a real place in it (line ≥ 1, column ≥ 1, not past the end).
//     A document jsonpos rejects gives exactly one "invalid JSON" error at
//     the syntax error's position.
func FuzzDecode(f *testing.F) {
	for _, dir := range []string{"testdata/base", "../../../examples/acme"} {
		for _, pattern := range []string{"*.json", "users/*.json", "clusters/*.json"} {
			paths, _ := filepath.Glob(filepath.Join(dir, pattern))
			for _, p := range paths {
				addSeed(f, p)
			}
		}
	}
	brokens, _ := filepath.Glob("testdata/broken/*/*/*.json")
	settings, _ := filepath.Glob("testdata/broken/*/*.json")
	for _, p := range append(brokens, settings...) {
		addSeed(f, p)
	}
	for _, s := range []string{"", "{}", "[]", "null", `{"name": 1}`, `{"port": 3306.0}`,
		`{"port": 1e400}`, `{"NAME": "x"}`, "\xff", `{"access": [{"role": "read", "databases": ["*"]}]}`} {
		for k := range 3 {
			f.Add(uint8(k), []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, k uint8, data []byte) {
		kinds := []struct {
			kind kind
			path string
			v    func() any
		}{
			{kindSettings, "dbusers.json", func() any { return new(Settings) }},
			{kindCluster, "clusters/x.json", func() any { return new(Cluster) }},
			{kindUser, "users/x.json", func() any { return new(User) }},
		}
		kd := kinds[int(k)%len(kinds)]
		v := kd.v()
		src, diags := Decode(kd.path, data, kd.kind, v)
		if src != nil {
			if len(diags) != 0 {
				t.Fatalf("Decode gave a source and diagnostics: %v", diags)
			}
			if src.Path != kd.path || src.Index == nil {
				t.Fatalf("source = %+v", src)
			}
			if !json.Valid(data) {
				t.Fatalf("Decode accepted invalid JSON %q", data)
			}
			if err := json.Unmarshal(data, kd.v()); err != nil {
				t.Fatalf("Decode accepted %q, which encoding/json cannot decode: %v", data, err)
			}
			return
		}
		if len(diags) == 0 {
			t.Fatalf("Decode(%q) gave neither a source nor a diagnostic", data)
		}
		end := jsonpos.PositionAt(data, len(data))
		for _, d := range diags {
			if d.File != kd.path || d.Severity != diag.Error || d.Message == "" {
				t.Fatalf("diagnostic %+v: want an error in %s with a message", d, kd.path)
			}
			if d.Line < 1 || d.Col < 1 || d.Line > end.Line || (d.Line == end.Line && d.Col > end.Col) {
				t.Fatalf("diagnostic %+v is outside the document, which ends at %d:%d", d, end.Line, end.Col)
			}
		}
		if _, err := jsonpos.Parse(data); err != nil {
			var se *jsonpos.SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("jsonpos error %v", err)
			}
			want := diag.Diagnostic{File: kd.path, Line: se.Line, Col: se.Col, Severity: diag.Error, Message: "invalid JSON: " + se.Msg}
			if len(diags) != 1 || diags[0] != want {
				t.Fatalf("Decode(%q) = %v, want %v", data, diags, want)
			}
		}
	})
}

func addSeed(f *testing.F, p string) {
	data, err := os.ReadFile(p)
	if err != nil {
		f.Fatal(err)
	}
	k := kindUser
	switch {
	case filepath.Base(p) == SettingsFile:
		k = kindSettings
	case filepath.Base(filepath.Dir(p)) == ClustersDir:
		k = kindCluster
	}
	f.Add(uint8(k), data)
}
