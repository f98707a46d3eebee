package gitfs

import (
	"context"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/testsupport/gittest"
)

// newTestRepo returns a new git repository; without git the test skips
// loudly: gitfs is nothing without it.
func newTestRepo(t *testing.T) *gittest.Repo { return gittest.New(t, "gitfs is untested") }

// files returns every file of fsys with its content.
func files(t *testing.T, fsys fs.FS) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, p)
		out[p] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestTreeReturnsExactlyTheFilesOfTheRevision(t *testing.T) {
	r := newTestRepo(t)
	ctx := context.Background()
	r.Write(map[string]string{
		"dbusers.json":          `{"prefix": "acme"}` + "\n",
		"clusters/prod.json":    `{"name": "prod"}` + "\n",
		"users/alice.json":      `{"name": "alice"}` + "\n",
		"users/bob.json":        `{"name": "bob"}` + "\n",
		"users/nested/eve.json": "nested\n",
		"README.md":             "not a declaration\n",
		"bot/main.go":           "package main\n",
	})
	first := r.Commit("first")
	r.Write(map[string]string{
		"users/bob.json":   "",                                     // deleted
		"users/alice.json": `{"name": "alice", "v": 2}` + "\n",     // changed
		"users/carol.json": "{\n  \"name\": \"carol\"\n}\n\x00x\n", // added, with a NUL and no JSON meaning
	})
	second := r.Commit("second")
	// Uncommitted changes never show in a revision's tree.
	r.Write(map[string]string{"users/dirty.json": "{}\n", "users/alice.json": "dirty\n"})

	repo := Repo{Dir: r.Dir}
	paths := []string{"dbusers.json", "clusters", "users"}
	tests := []struct {
		rev  string
		want map[string]string
	}{
		{first, map[string]string{
			"dbusers.json":          `{"prefix": "acme"}` + "\n",
			"clusters/prod.json":    `{"name": "prod"}` + "\n",
			"users/alice.json":      `{"name": "alice"}` + "\n",
			"users/bob.json":        `{"name": "bob"}` + "\n",
			"users/nested/eve.json": "nested\n",
		}},
		{second, map[string]string{
			"dbusers.json":          `{"prefix": "acme"}` + "\n",
			"clusters/prod.json":    `{"name": "prod"}` + "\n",
			"users/alice.json":      `{"name": "alice", "v": 2}` + "\n",
			"users/carol.json":      "{\n  \"name\": \"carol\"\n}\n\x00x\n",
			"users/nested/eve.json": "nested\n",
		}},
		{"main", nil}, // same as second, filled in below
	}
	tests[2].want = tests[1].want
	for _, tt := range tests {
		t.Run(tt.rev, func(t *testing.T) {
			fsys, err := repo.Tree(ctx, tt.rev, paths...)
			if err != nil {
				t.Fatalf("Tree: %v", err)
			}
			if diff := cmp.Diff(tt.want, files(t, fsys)); diff != "" {
				t.Errorf("Tree(%s) (-want +got):\n%s", tt.rev, diff)
			}
			if _, err := fs.Stat(fsys, "users/bob.json"); tt.rev != first && err == nil {
				t.Errorf("the deleted users/bob.json is still in the tree of %s", tt.rev)
			}
			// The loader lists directories: they must exist as such.
			entries, err := fs.ReadDir(fsys, "users")
			if err != nil || len(entries) == 0 {
				t.Errorf("ReadDir(users) = %v, %v", entries, err)
			}
			var keys []string
			for p := range tt.want {
				keys = append(keys, p)
			}
			if err := fstest.TestFS(fsys, keys...); err != nil {
				t.Errorf("not a well-behaved fs.FS: %v", err)
			}
		})
	}
}

func TestTreeOfMissingPathsIsEmpty(t *testing.T) {
	r := newTestRepo(t)
	r.Write(map[string]string{"README.md": "before dbusers\n"})
	id := r.Commit("predates dbusers")
	fsys, err := Repo{Dir: r.Dir}.Tree(context.Background(), id, "dbusers.json", "clusters", "users")
	if err != nil {
		t.Fatalf("Tree: %v", err)
	}
	if got := files(t, fsys); len(got) != 0 {
		t.Errorf("Tree of a revision without declarations = %v, want nothing", got)
	}
	if _, err := fs.Stat(fsys, "dbusers.json"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat(dbusers.json) = %v, want not exist", err)
	}
}

// TestTreeOfSubdirectory: a repository whose declarations live in a
// subdirectory (a monorepo) is read relative to Dir, exactly as the working
// tree is read with os.DirFS(Dir); the root's files of the same names must
// not leak in.
func TestTreeOfSubdirectory(t *testing.T) {
	r := newTestRepo(t)
	r.Write(map[string]string{
		"dbusers.json":                 "root settings\n",
		"users/root.json":              "root user\n",
		"infra/db/dbusers.json":        "sub settings\n",
		"infra/db/users/alice.json":    "sub user\n",
		"infra/db/clusters/prod.json":  "sub cluster\n",
		"infra/other/users/ghost.json": "elsewhere\n",
	})
	id := r.Commit("monorepo")
	fsys, err := Repo{Dir: filepath.Join(r.Dir, "infra", "db")}.Tree(context.Background(), id, "dbusers.json", "clusters", "users")
	if err != nil {
		t.Fatalf("Tree: %v", err)
	}
	want := map[string]string{
		"dbusers.json":       "sub settings\n",
		"users/alice.json":   "sub user\n",
		"clusters/prod.json": "sub cluster\n",
	}
	if diff := cmp.Diff(want, files(t, fsys)); diff != "" {
		t.Errorf("Tree from a subdirectory (-want +got):\n%s", diff)
	}
}

// TestTreeKeepsLinksAndSubmodules: a symbolic link in a revision is a link
// in its tree (not a file holding the target's path), a submodule is an
// irregular entry, and an executable file is a regular file, as a checkout
// read with os.DirFS would show them.
func TestTreeKeepsLinksAndSubmodules(t *testing.T) {
	r := newTestRepo(t)
	r.Write(map[string]string{
		"users/alice.json":   "alice\n",
		"users/tool.json":    "executable\n",
		"fleet/prod.json":    "prod\n",
		"clusters/real.json": "real\n",
	})
	if err := os.Chmod(filepath.Join(r.Dir, "users", "tool.json"), 0o755); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"users/zed.json":    "/etc/passwd",
		"users/inside.json": "alice.json",
		"dbusers.json":      "fleet/settings.json",
	} {
		if err := os.Symlink(target, filepath.Join(r.Dir, filepath.FromSlash(link))); err != nil {
			t.Fatal(err)
		}
	}
	r.Commit("one")
	// A linked directory: clusters becomes a link to fleet.
	r.Git("rm", "-rq", "clusters")
	if err := os.Symlink("fleet", filepath.Join(r.Dir, "clusters")); err != nil {
		t.Fatal(err)
	}
	r.Commit("linked directory")
	// A gitlink (mode 160000) under users/, which has no working tree
	// (so not r.Commit, whose add -A would stage its removal).
	r.Git("update-index", "--add", "--cacheinfo", "160000,"+strings.Repeat("ab", 20)+",users/vendored.json")
	r.Git("commit", "-q", "-m", "submodule")

	fsys, err := Repo{Dir: r.Dir}.Tree(context.Background(), "HEAD", "dbusers.json", "clusters", "users")
	if err != nil {
		t.Fatalf("Tree: %v", err)
	}
	type kind struct {
		Mode   fs.FileMode
		Target string // of a link
		Data   string // of a file
	}
	want := map[string]kind{
		"dbusers.json":        {Mode: fs.ModeSymlink | 0o777, Target: "fleet/settings.json"},
		"clusters":            {Mode: fs.ModeSymlink | 0o777, Target: "fleet"},
		"users/alice.json":    {Mode: 0o644, Data: "alice\n"},
		"users/inside.json":   {Mode: fs.ModeSymlink | 0o777, Target: "alice.json"},
		"users/tool.json":     {Mode: 0o755, Data: "executable\n"},
		"users/vendored.json": {Mode: fs.ModeIrregular},
		"users/zed.json":      {Mode: fs.ModeSymlink | 0o777, Target: "/etc/passwd"},
	}
	got := map[string]kind{}
	for p := range want {
		fi, err := fs.Lstat(fsys, p)
		if err != nil {
			t.Errorf("Lstat(%s): %v", p, err)
			continue
		}
		k := kind{Mode: fi.Mode()}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			if k.Target, err = fs.ReadLink(fsys, p); err != nil {
				t.Errorf("ReadLink(%s): %v", p, err)
			}
		case fi.Mode().IsRegular():
			data, err := fs.ReadFile(fsys, p)
			if err != nil {
				t.Errorf("ReadFile(%s): %v", p, err)
			}
			k.Data = string(data)
		}
		got[p] = k
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	// The loader takes the kind of an entry from its directory listing.
	entries, err := fs.ReadDir(fsys, "users")
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]fs.FileMode{}
	for _, e := range entries {
		types[e.Name()] = e.Type()
	}
	wantTypes := map[string]fs.FileMode{"alice.json": 0, "inside.json": fs.ModeSymlink, "tool.json": 0,
		"vendored.json": fs.ModeIrregular, "zed.json": fs.ModeSymlink}
	if diff := cmp.Diff(wantTypes, types); diff != "" {
		t.Errorf("ReadDir(users) types (-want +got):\n%s", diff)
	}
	// Nothing under the linked directory is in the tree: git does not
	// follow links, and neither does Tree.
	if _, err := fs.Lstat(fsys, "clusters/prod.json"); err == nil {
		t.Error("clusters/prod.json is in the tree through the link clusters -> fleet")
	}
}

// TestTreeLinksAreRefusedByLoad: at a pull request's base, as in the
// working tree, the loader reports every link and submodule where a
// declaration belongs, and reads none.
func TestTreeLinksAreRefusedByLoad(t *testing.T) {
	r := newTestRepo(t)
	r.Write(map[string]string{
		"settings/dbusers.json": `{"prefix": "acme"}` + "\n",
		"users/alice.json":      "{\n",
	})
	for link, target := range map[string]string{
		"dbusers.json":   "settings/dbusers.json",
		"users/zed.json": "alice.json",
		"clusters":       "settings",
	} {
		if err := os.Symlink(target, filepath.Join(r.Dir, filepath.FromSlash(link))); err != nil {
			t.Fatal(err)
		}
	}
	r.Commit("links")
	r.Git("update-index", "--add", "--cacheinfo", "160000,"+strings.Repeat("ab", 20)+",users/vendored.json")
	r.Git("commit", "-q", "-m", "submodule")

	fsys, err := Repo{Dir: r.Dir}.Tree(context.Background(), "HEAD", "dbusers.json", "clusters", "users")
	if err != nil {
		t.Fatalf("Tree: %v", err)
	}
	_, diags, err := config.Load(fsys, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	var got []string
	for _, d := range diags {
		got = append(got, d.File+": "+d.Message)
	}
	const notFollowed = " is a symbolic link and was not followed: declarations are read only from regular files " +
		"in the repository, whose content a reviewer sees in the pull request; "
	want := []string{
		"clusters: clusters" + notFollowed + "make it a directory",
		"dbusers.json: dbusers.json" + notFollowed + "put the file itself here",
		"users/alice.json: invalid JSON: unexpected end of file, expected a quoted key",
		"users/vendored.json: vendored.json is a special entry (a git submodule, say), not a regular file, so it was not read",
		"users/zed.json: zed.json" + notFollowed + "put the file itself here",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}
}

func TestResolve(t *testing.T) {
	r := newTestRepo(t)
	ctx := context.Background()
	r.Write(map[string]string{"a": "1\n"})
	id := r.Commit("one")
	r.Git("tag", "v1")
	repo := Repo{Dir: r.Dir}

	for _, rev := range []string{"main", "HEAD", "v1", id, id[:10], "refs/heads/main"} {
		got, err := repo.Resolve(ctx, rev)
		if err != nil || got != id {
			t.Errorf("Resolve(%q) = %q, %v; want %s", rev, got, err, id)
		}
	}

	// An annotated tag resolves to its commit, not to the tag object.
	r.Git("tag", "-a", "-m", "annotated", "v1a")
	if got, err := repo.Resolve(ctx, "v1a"); err != nil || got != id {
		t.Errorf("Resolve(annotated tag) = %q, %v; want %s", got, err, id)
	}

	_, err := repo.Resolve(ctx, "origin/main")
	if err == nil {
		t.Fatal("Resolve of an unknown revision succeeded")
	}
	for _, want := range []string{`"origin/main"`, "unknown revision", "fetch-depth: 0"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Resolve(origin/main) error %q does not say %q", err, want)
		}
	}

	t.Logf("unknown revision: %v", err)
	if _, err := repo.Tree(ctx, "no-such-branch", "users"); err == nil {
		t.Error("Tree of an unknown revision succeeded")
	}

	// A blob is not a commit.
	blob := r.Git("rev-parse", "HEAD:a")
	if _, err := repo.Resolve(ctx, blob); err == nil {
		t.Errorf("Resolve(blob %s) succeeded", blob)
	}
}

// TestRevisionsStartingWithDashAreRefused: a revision comes from a flag
// that a workflow fills from the event; one starting with '-' must never
// reach git as an option (e.g. --output=FILE).
func TestRevisionsStartingWithDashAreRefused(t *testing.T) {
	r := newTestRepo(t)
	ctx := context.Background()
	r.Write(map[string]string{"users/a.json": "1\n"})
	r.Commit("one")
	repo := Repo{Dir: r.Dir}
	canary := filepath.Join(t.TempDir(), "written")

	for _, rev := range []string{"-h", "--output=" + canary, "--all", "-"} {
		_, err := repo.Resolve(ctx, rev)
		if err == nil || !strings.Contains(err.Error(), "may not start with '-'") {
			t.Errorf("Resolve(%q) = %v, want a refusal", rev, err)
		}
		// Tree and MergeBase put --end-of-options before the revision.
		if _, err := repo.Tree(ctx, rev, "users"); err == nil {
			t.Errorf("Tree(%q) succeeded", rev)
		}
		if _, err := repo.MergeBase(ctx, rev, "HEAD"); err == nil {
			t.Errorf("MergeBase(%q, HEAD) succeeded", rev)
		}
	}
	if _, err := os.Stat(canary); err == nil {
		t.Errorf("a revision was taken for an option: %s was written", canary)
	}
}

func TestMergeBase(t *testing.T) {
	r := newTestRepo(t)
	ctx := context.Background()
	r.Write(map[string]string{"users/a.json": "1\n"})
	root := r.Commit("root")
	r.Write(map[string]string{"users/b.json": "2\n"})
	fork := r.Commit("branch point")
	r.Git("checkout", "-q", "-b", "feature")
	r.Write(map[string]string{"users/c.json": "3\n"})
	feature := r.Commit("feature work")
	r.Git("checkout", "-q", "main")
	r.Write(map[string]string{"users/d.json": "4\n"})
	mainTip := r.Commit("main moved on")

	repo := Repo{Dir: r.Dir}
	for _, tt := range []struct{ a, b, want string }{
		{"main", "feature", fork},
		{"feature", "main", fork},
		{mainTip, feature, fork},
		{"main", "main", mainTip},
		{root, "feature", root},
	} {
		got, err := repo.MergeBase(ctx, tt.a, tt.b)
		if err != nil || got != tt.want {
			t.Errorf("MergeBase(%s, %s) = %q, %v; want %s", tt.a, tt.b, got, err, tt.want)
		}
	}

	// The merge base's tree has neither side's later files.
	fsys, err := repo.Tree(ctx, fork, "users")
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(files(t, fsys))); !slices.Equal(got, []string{"users/a.json", "users/b.json"}) {
		t.Errorf("merge base tree = %v", got)
	}

	// Unrelated histories have no merge base.
	r.Git("checkout", "-q", "--orphan", "unrelated")
	r.Git("rm", "-rq", "--cached", ".")
	r.Write(map[string]string{"other": "x\n"})
	r.Git("add", "other")
	r.Git("commit", "-q", "-m", "unrelated root")
	if got, err := repo.MergeBase(ctx, "unrelated", "main"); err == nil {
		t.Errorf("MergeBase of unrelated histories = %q, want an error", got)
	} else if !strings.Contains(err.Error(), "no merge base") {
		t.Errorf("MergeBase error %q does not say there is no merge base", err)
	}
}

func TestChanged(t *testing.T) {
	r := newTestRepo(t)
	ctx := context.Background()
	r.Write(map[string]string{"bot/main.go": "package main\n", "go.mod": "module x\n", "users/a.json": "{}\n"})
	first := r.Commit("first")
	r.Write(map[string]string{"bot/main.go": "package main // changed\n", "bot/new.go": "package main\n", "users/a.json": `{"v": 2}` + "\n"})
	second := r.Commit("second")
	r.Write(map[string]string{"go.mod": "module y\n"}) // uncommitted
	repo := Repo{Dir: r.Dir}
	code := []string{"bot", "go.mod", "go.sum", ".github"}
	for _, tc := range []struct {
		name, from, to string
		want           []string
	}{
		{"commits", first, second, []string{"bot/main.go", "bot/new.go"}},
		{"commit to working tree", first, "", []string{"bot/main.go", "bot/new.go", "go.mod"}},
		{"no change", second, second, nil},
	} {
		got, err := repo.Changed(ctx, tc.from, tc.to, code...)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: Changed = %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
	if _, err := repo.Changed(ctx, "nope", "", code...); err == nil {
		t.Error("Changed from an unknown revision succeeded")
	}
}

func TestSubject(t *testing.T) {
	r := newTestRepo(t)
	r.Write(map[string]string{"a": "1\n"})
	r.Commit("grant alice read on prod\n\nbody text")
	got, err := Repo{Dir: r.Dir}.Subject(context.Background(), "HEAD")
	if err != nil || got != "grant alice read on prod" {
		t.Errorf("Subject = %q, %v", got, err)
	}
}

func TestCheck(t *testing.T) {
	r := newTestRepo(t)
	ctx := context.Background()
	if err := (Repo{Dir: r.Dir}).Check(ctx); err != nil {
		t.Errorf("Check(repository) = %v", err)
	}
	plain := t.TempDir()
	// A directory outside any repository; GIT_CEILING_DIRECTORIES is not
	// needed because TempDir is never inside the module's checkout.
	err := Repo{Dir: plain}.Check(ctx)
	if err == nil {
		t.Skipf("SKIP: %s is inside a git repository; cannot test Check's refusal", plain)
	}
	if !errors.Is(err, ErrNotRepository) || !strings.Contains(err.Error(), plain) {
		t.Errorf("Check(plain dir) = %v, want it to name the directory and say %q", err, ErrNotRepository)
	}
}

// TestChangedFiles: the files a pull request changes, between two
// commits and between a commit and the working tree (edits, staged
// files, deletions and untracked files, not ignored ones), relative to
// Dir when the declarations live in a subdirectory.
func TestChangedFiles(t *testing.T) {
	r := newTestRepo(t)
	ctx := context.Background()
	r.Write(map[string]string{
		".gitignore":         "*.tmp\n",
		"dbusers.json":       "{}\n",
		"users/alice.json":   "alice\n",
		"users/bob.json":     "bob\n",
		"users/carol.json":   "carol\n",
		"users/dave.json":    "dave\n",
		"infra/users/x.json": "x\n",
	})
	base := r.Commit("base")
	r.Write(map[string]string{
		"users/alice.json":   "alice v2\n",
		"users/bob.json":     "",      // deleted
		"users/we ird|.json": "odd\n", // a name git would quote without -z
		"infra/users/x.json": "x v2\n",
	})
	r.Git("mv", "users/carol.json", "users/caroline.json")
	head := r.Commit("head")
	// The working tree goes further: an edit, a staged file, an untracked
	// one and an ignored one.
	r.Write(map[string]string{"users/dave.json": "dave v2\n", "users/erin.json": "erin\n", "users/frank.json": "frank\n", "users/scratch.tmp": "tmp\n"})
	r.Git("add", "users/erin.json")

	repo := Repo{Dir: r.Dir}
	for _, tc := range []struct {
		name, head string
		dir        string
		want       []string
	}{
		{"commits", head, "", []string{"infra/users/x.json", "users/alice.json", "users/bob.json", "users/carol.json", "users/caroline.json", "users/we ird|.json"}},
		{"working tree", "", "", []string{"infra/users/x.json", "users/alice.json", "users/bob.json", "users/carol.json", "users/caroline.json",
			"users/dave.json", "users/erin.json", "users/frank.json", "users/we ird|.json"}},
		{"subdirectory", "", "infra", []string{"users/x.json"}},
		{"no change", base, "", []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo := repo
			if tc.dir != "" {
				repo.Dir = filepath.Join(r.Dir, tc.dir)
			}
			got, err := repo.ChangedFiles(ctx, base, tc.head)
			if err != nil {
				t.Fatal(err)
			}
			if got == nil {
				t.Errorf("ChangedFiles returned nil, want a list")
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ChangedFiles (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := repo.ChangedFiles(ctx, "--output=/tmp/x", ""); err == nil {
		t.Errorf("a revision that looks like an option was accepted")
	}
	if _, err := repo.ChangedFiles(ctx, "no-such-rev", ""); err == nil {
		t.Errorf("an unknown revision was accepted")
	}
}
