// Package gittest builds throw-away git repositories for the tests of code
// that reads revisions through the git command (gitfs, and `dbusers plan`
// and `dbusers comment` on top of it). Such code is only proven against
// real git, so the repositories are real ones, in a temporary directory,
// made with a fixed identity and clock and without the user's or the
// system's git configuration, so that a developer's settings cannot change
// what a test sees.
//
// Like net/http/httptest it is an ordinary package that only tests import.
package gittest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Repo is a git repository in a temporary directory that the test removes
// when it ends. Its methods fail the test on any error, so a test reads
// as the story of the repository.
type Repo struct {
	// Dir is the working tree (and, under .git, the repository).
	Dir string
	tb  testing.TB
}

// New runs git init in a new temporary directory, on branch main. When git
// is not installed it skips the test, loudly, with untested saying what
// therefore went untested: a green run without git must not look like a
// full one.
func New(tb testing.TB, untested string) *Repo {
	tb.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		tb.Skipf("SKIP: git is not installed (%v); %s", err, untested)
	}
	r := &Repo{Dir: tb.TempDir(), tb: tb}
	r.Git("init", "-q", "-b", "main")
	return r
}

// Git runs git in the repository and returns its trimmed output. The
// identity, the dates of commits and the configuration are fixed, so the
// same steps always make the same commit ids.
func (r *Repo) Git(args ...string) string {
	r.tb.Helper()
	cmd := exec.Command("git", append([]string{"-C", r.Dir,
		"-c", "user.name=dbusers test", "-c", "user.email=test@dbusers.example",
		"-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main"}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_DATE=2026-03-01T09:00:00Z", "GIT_COMMITTER_DATE=2026-03-01T09:00:00Z")
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.tb.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// Write writes files (slash-separated path → content) into the working
// tree, creating directories as needed; an empty content removes the file.
func (r *Repo) Write(files map[string]string) {
	r.tb.Helper()
	for p, s := range files {
		full := filepath.Join(r.Dir, filepath.FromSlash(p))
		if s == "" {
			if err := os.Remove(full); err != nil {
				r.tb.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			r.tb.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(s), 0o644); err != nil {
			r.tb.Fatal(err)
		}
	}
}

// Read returns the content of a file (slash-separated path) in the working
// tree.
func (r *Repo) Read(p string) string {
	r.tb.Helper()
	data, err := os.ReadFile(filepath.Join(r.Dir, filepath.FromSlash(p)))
	if err != nil {
		r.tb.Fatal(err)
	}
	return string(data)
}

// Commit stages everything and commits (an empty commit when nothing
// changed); it returns the commit id.
func (r *Repo) Commit(msg string) string {
	r.tb.Helper()
	r.Git("add", "-A")
	r.Git("commit", "-q", "--allow-empty", "-m", msg)
	return r.Git("rev-parse", "HEAD")
}
