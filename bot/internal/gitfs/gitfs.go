// Package gitfs reads the declarations of a git revision as a file system,
// so that `dbusers plan` can load the configuration at the pull request's
// base exactly as it loads the working tree. It shells out to git, which
// every CI runner has, and reads all blobs through one `git cat-file
// --batch` process so that a 10,000-file repository costs one round trip.
package gitfs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing/fstest"
	"time"
)

// Repo is a git working copy.
type Repo struct {
	Dir string
}

// run runs git with args in the repository and returns its standard output.
func (r Repo) run(ctx context.Context, stdin io.Reader, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", r.Dir}, args...)...)
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errb.String())
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("git %s: %s", args[0], msg)
	}
	return out.Bytes(), nil
}

// Resolve returns the full commit id of rev.
func (r Repo) Resolve(ctx context.Context, rev string) (string, error) {
	if strings.HasPrefix(rev, "-") {
		return "", fmt.Errorf("revision %q may not start with '-'", rev)
	}
	out, err := r.run(ctx, nil, "rev-parse", "--verify", "--quiet", "--end-of-options", rev+"^{commit}")
	if err != nil {
		return "", fmt.Errorf("unknown revision %q (fetch it, e.g. actions/checkout with fetch-depth: 0): %w", rev, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// MergeBase returns the best common ancestor of a and b: what a pull
// request is compared against, so that changes merged to the base branch
// since the branch point do not show up as the pull request's.
func (r Repo) MergeBase(ctx context.Context, a, b string) (string, error) {
	out, err := r.run(ctx, nil, "merge-base", "--end-of-options", a, b)
	if err != nil {
		return "", fmt.Errorf("no merge base between %s and %s: %w", a, b, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// Changed returns the files under paths that differ between commit from
// and commit to, or the working tree when to is "", sorted.
func (r Repo) Changed(ctx context.Context, from, to string, paths ...string) ([]string, error) {
	args := []string{"diff", "--name-only", "-z", "--no-renames", "--no-ext-diff", "--no-textconv", "--end-of-options", from}
	if to != "" {
		args = append(args, to)
	}
	out, err := r.run(ctx, nil, append(append(args, "--"), paths...)...)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, f := range bytes.Split(out, []byte{0}) {
		if len(f) > 0 {
			files = append(files, string(f))
		}
	}
	slices.Sort(files)
	return files, nil
}

// Subject returns the first line of a commit's message, for reports.
func (r Repo) Subject(ctx context.Context, rev string) (string, error) {
	out, err := r.run(ctx, nil, "log", "-1", "--format=%s", "--end-of-options", rev)
	return strings.TrimSpace(string(out)), err
}

// Tree returns the files under paths (files or directories, relative to
// Dir) at commit rev, as an in-memory file system rooted at Dir, so that it
// matches os.DirFS(Dir) when Dir is a subdirectory of the repository.
//
// Entries keep their kind, as os.DirFS would show a checkout: a symbolic
// link (mode 120000) is an fs.ModeSymlink entry whose data is the link's
// target, as in fstest.MapFS, and a submodule (mode 160000) is an
// fs.ModeIrregular entry without data. config.Load refuses both by their
// type; reading a link as a file would take its target path for content.
func (r Repo) Tree(ctx context.Context, rev string, paths ...string) (fs.FS, error) {
	// No --full-tree: git ls-tree run in Dir reads paths relative to Dir
	// and prints them relative to Dir.
	args := append([]string{"ls-tree", "-r", "-z", "--end-of-options", rev, "--"}, paths...)
	out, err := r.run(ctx, nil, args...)
	if err != nil {
		return nil, err
	}
	type entry struct {
		path, sha string
		mode      fs.FileMode
	}
	var entries []entry
	var batch bytes.Buffer
	mfs := fstest.MapFS{}
	for _, rec := range bytes.Split(out, []byte{0}) {
		if len(rec) == 0 {
			continue
		}
		meta, path, ok := bytes.Cut(rec, []byte{'\t'})
		fields := strings.Fields(string(meta))
		if !ok || len(fields) != 3 {
			return nil, fmt.Errorf("git ls-tree: unexpected line %q", rec)
		}
		mode, ok := fileMode(fields[0])
		if !ok {
			return nil, fmt.Errorf("git ls-tree: unexpected mode %q of %q", fields[0], path)
		}
		if mode&fs.ModeIrregular != 0 {
			// A submodule's object is a commit of another repository,
			// which this one does not hold.
			mfs[string(path)] = &fstest.MapFile{Mode: mode}
			continue
		}
		entries = append(entries, entry{string(path), fields[2], mode})
		batch.WriteString(fields[2] + "\n")
	}
	if len(entries) == 0 {
		return mfs, nil
	}
	blobs, err := r.run(ctx, &batch, "cat-file", "--batch")
	if err != nil {
		return nil, err
	}
	rd := bufio.NewReader(bytes.NewReader(blobs))
	for _, e := range entries {
		header, err := rd.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("git cat-file: %w", err)
		}
		f := strings.Fields(header)
		if len(f) != 3 || f[0] != e.sha {
			return nil, fmt.Errorf("git cat-file: unexpected header %q for %s", strings.TrimSpace(header), e.path)
		}
		size, err := strconv.Atoi(f[2])
		if err != nil {
			return nil, fmt.Errorf("git cat-file: bad size in %q", header)
		}
		data := make([]byte, size)
		if _, err := io.ReadFull(rd, data); err != nil {
			return nil, fmt.Errorf("git cat-file: read %s: %w", e.path, err)
		}
		if _, err := rd.Discard(1); err != nil { // the newline after each blob
			return nil, fmt.Errorf("git cat-file: %w", err)
		}
		mfs[e.path] = &fstest.MapFile{Data: data, Mode: e.mode, ModTime: time.Time{}}
	}
	return mfs, nil
}

// ChangedFiles returns the files that differ between commit base and
// head, or between base and the working tree when head is "" (what is
// committed, staged or only edited, and the untracked files that
// .gitignore does not hide): added, changed, deleted or renamed (both
// names). Paths are relative to Dir and slash-separated, as the
// declarations' diagnostics name them; files outside Dir are left out.
// The list is sorted and, even when empty, not nil.
func (r Repo) ChangedFiles(ctx context.Context, base, head string) ([]string, error) {
	for _, rev := range []string{base, head} {
		if strings.HasPrefix(rev, "-") {
			return nil, fmt.Errorf("revision %q may not start with '-'", rev)
		}
	}
	args := []string{"diff", "--name-only", "-z", "--no-renames", "--relative", "--no-ext-diff", "--end-of-options", base}
	if head != "" {
		args = append(args, head)
	}
	out, err := r.run(ctx, nil, append(args, "--")...)
	if err != nil {
		return nil, err
	}
	if head == "" {
		untracked, err := r.run(ctx, nil, "ls-files", "--others", "--exclude-standard", "-z")
		if err != nil {
			return nil, err
		}
		out = append(out, untracked...)
	}
	files := []string{}
	for _, p := range bytes.Split(out, []byte{0}) {
		if len(p) > 0 {
			files = append(files, string(p))
		}
	}
	slices.Sort(files)
	return slices.Compact(files), nil
}

// fileMode converts the mode of a git tree entry (other than a tree, which
// ls-tree -r descends into; git prints modes in canonical form) to a file
// mode.
func fileMode(gitMode string) (fs.FileMode, bool) {
	switch gitMode {
	case "100644":
		return 0o644, true
	case "100755":
		return 0o755, true
	case "120000":
		return fs.ModeSymlink | 0o777, true
	case "160000":
		return fs.ModeIrregular, true
	}
	return 0, false
}

// ErrNotRepository is returned when the directory is not inside a git
// working copy.
var ErrNotRepository = errors.New("not a git repository")

// Check verifies that Dir is inside a git working copy.
func (r Repo) Check(ctx context.Context) error {
	if _, err := r.run(ctx, nil, "rev-parse", "--git-dir"); err != nil {
		return fmt.Errorf("%s: %w (%v)", r.Dir, ErrNotRepository, err)
	}
	return nil
}
