// Package savedplan is the plan file of `dbusers reconcile --plan-file`,
// which works as terraform's saved plans do: a dry run writes the plan it
// showed, with the fingerprint of that plan and of the server state it was
// made from, and `--confirm --plan-file` applies only that plan. The run
// that applies plans afresh under its lock, as every run does, and refuses
// before its first write when the fingerprint it makes differs
// (engine.Options.Expect): the file never says what to send, it only
// says what a person agreed to, so a file edited by hand can stop a run and
// never steer one.
package savedplan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/dbusers/dbusers/bot/internal/engine"
	"github.com/dbusers/dbusers/bot/internal/flavor"
	"github.com/dbusers/dbusers/bot/internal/liveplan"
	"github.com/dbusers/dbusers/bot/internal/plan"
)

// Format is the version of the file's shape. A file of another format is
// refused rather than read in part.
const Format = 1

// MaxSize bounds the file read back: a plan of 60,000 changes is about
// 20 MB of JSON.
const MaxSize = 64 << 20

// File is a saved plan.
type File struct {
	Format int `json:"dbusers_plan_format"`
	// DBUsersVersion and DBUsersCommit name the dbusers that wrote it.
	DBUsersVersion string `json:"dbusers_version"`
	DBUsersCommit  string `json:"dbusers_commit,omitempty"`
	Cluster        string `json:"cluster"`
	// Server is what the server said it was, e.g. "MariaDB 10.11.19".
	Server string    `json:"server"`
	MadeAt time.Time `json:"made_at"`
	// Fingerprint is what the run that applies must make again.
	Fingerprint engine.Fingerprint `json:"fingerprint"`
	// Changes, Held and Skipped are the plan as it was shown, with the
	// redacted statements: for the person, and for telling what changed
	// when the plan is stale. They are not what is applied.
	Changes []liveplan.Change `json:"changes"`
	Held    []liveplan.Change `json:"held,omitempty"`
	Skipped []plan.Skip       `json:"skipped,omitempty"`
}

// ErrNoPlan means the result holds no plan to save (the run failed before
// it planned).
var ErrNoPlan = errors.New("the run made no plan to save")

// New is the saved plan of a dry run's result.
func New(r *engine.Result, f flavor.Flavor, madeAt time.Time, version, commit string) (File, error) {
	if r.Plan == nil || r.Fingerprint == nil {
		return File{}, ErrNoPlan
	}
	file := File{Format: Format, DBUsersVersion: version, DBUsersCommit: commit, Cluster: r.Cluster,
		Server: r.Server, MadeAt: madeAt.UTC(), Fingerprint: *r.Fingerprint, Changes: []liveplan.Change{},
		Skipped: r.Plan.Skipped}
	for _, ch := range r.Plan.Changes {
		file.Changes = append(file.Changes, liveplan.NewChange(ch, f, false))
	}
	for _, ch := range r.Plan.Held {
		file.Held = append(file.Held, liveplan.NewChange(ch, f, false))
	}
	return file, nil
}

// Write writes the file atomically (a temporary file in the same
// directory, renamed over path), mode 0600: a plan names accounts and
// their grants, which is not everyone's to read.
func Write(path string, file File) error {
	data, err := json.MarshalIndent(file, "", "  ")
	if err != nil {
		return fmt.Errorf("plan file %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("plan file %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("plan file %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("plan file %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("plan file %s: %w", path, err)
	}
	return nil
}

// Read reads a file Write wrote for cluster, refusing anything else: a
// file of another format or cluster, unknown fields, data after it, a
// missing fingerprint, more than MaxSize bytes.
func Read(path, cluster string) (File, error) {
	fail := func(format string, args ...any) (File, error) {
		return File{}, fmt.Errorf("plan file %s: "+format, append([]any{path}, args...)...)
	}
	fh, err := os.Open(path)
	if err != nil {
		return File{}, fmt.Errorf("plan file: %w", err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, MaxSize+1))
	if err != nil {
		return fail("%v", err)
	}
	if len(data) > MaxSize {
		return fail("larger than %d MB: not a plan file dbusers wrote", MaxSize>>20)
	}
	// The format first, so that a file of a later format says so rather
	// than "unknown field". (Unmarshal also refuses data after the plan.)
	var head struct {
		Format *int `json:"dbusers_plan_format"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return fail("not JSON: %v", err)
	}
	switch {
	case head.Format == nil:
		return fail("no dbusers_plan_format: not a plan file `dbusers reconcile --plan-file` wrote")
	case *head.Format != Format:
		return fail("format %d, this dbusers reads format %d: make the plan again with this dbusers", *head.Format, Format)
	}
	var file File
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&file); err != nil {
		return fail("%v", err)
	}
	if !isDigest(file.Fingerprint.State) || !isDigest(file.Fingerprint.Plan) {
		return fail("the fingerprint is missing or malformed")
	}
	if file.Cluster != cluster {
		return fail("is a plan of cluster %q, not %q", file.Cluster, cluster)
	}
	return file, nil
}

func isDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Difference lists how a plan made now differs from the saved one, as the
// statements (or, for a change without one, the sentence) only one of them
// has: "- " saved only, "+ " now only. Ended sessions are left out, as the
// fingerprint leaves them out. At most max lines, the last saying how many
// more there are.
func Difference(saved File, now *plan.Plan, f flavor.Flavor, max int) []string {
	line := func(c liveplan.Change) string {
		if c.Statement != "" {
			return c.Statement
		}
		return c.Summary
	}
	count := func(cs []liveplan.Change) map[string]int {
		m := map[string]int{}
		for _, c := range cs {
			m[line(c)]++
		}
		return m
	}
	var fresh, freshHeld []liveplan.Change
	if now != nil {
		for _, ch := range now.Changes {
			fresh = append(fresh, liveplan.NewChange(ch, f, false))
		}
		for _, ch := range now.Held {
			freshHeld = append(freshHeld, liveplan.NewChange(ch, f, false))
		}
	}
	var out []string
	// only emits each change of these that the others do not have as
	// often (a multiset difference, in the order of these).
	only := func(mark string, these, others []liveplan.Change) {
		left := count(others)
		for _, c := range these {
			if c.Action() == plan.EndSession {
				continue
			}
			if l := line(c); left[l] > 0 {
				left[l]--
			} else {
				out = append(out, mark+l)
			}
		}
	}
	diff := func(label string, was, is []liveplan.Change) {
		only("- "+label, was, is)
		only("+ "+label, is, was)
	}
	diff("", saved.Changes, fresh)
	diff("held back: ", saved.Held, freshHeld)
	if max > 0 && len(out) > max {
		more := len(out) - (max - 1)
		out = append(slices.Clone(out[:max-1]), fmt.Sprintf("... and %d more", more))
	}
	return out
}
