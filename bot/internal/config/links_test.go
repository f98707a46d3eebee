package config

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dbusers/dbusers/bot/internal/diag"
)

// The files outside the repository that links point at. Each would show if
// it were read: outside.json as an invalid JSON error, the users directory
// as a user named mallory and another invalid JSON error.
var outsideFiles = map[string]string{
	"outside.json": `{"name": "zed", "owner": ` + "\n",
	"users/mallory.json": `{"name": "mallory", "owner": "mallory@evil.example", "kind": "human",
  "access": [{"clusters": ["prod-orders"], "databases": ["orders"], "role": "read"}]}` + "\n",
	"users/broken.json": "{\n",
	"dbusers.json":      `{"prefix": "evil"` + "\n",
}

// The two problems of linkRepo before any case changes it: each must still
// be reported whatever else is wrong.
var (
	brokenCluster = d("clusters/zz_broken.json", 3, 1, E, "invalid JSON: unexpected '}', expected a value")
	brokenUser    = d("users/yy_broken.json", 3, 1, E, "invalid JSON: unexpected '}', expected a value")
)

// linkRepo writes the base repository, with one broken cluster and one
// broken user, into a new directory, and the files above into another; it
// returns both.
func linkRepo(t *testing.T) (root, outside string) {
	t.Helper()
	root, outside = t.TempDir(), t.TempDir()
	files := map[string]string{
		"clusters/zz_broken.json": "{\n  \"name\":\n}\n",
		"users/yy_broken.json":    "{\n  \"name\":\n}\n",
	}
	for p, f := range readTree(t, filepath.Join("testdata", "base")) {
		files[p] = string(f.Data)
	}
	writeFiles(t, root, files)
	writeFiles(t, outside, outsideFiles)
	return root, outside
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, s := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func fileLink(name string) string {
	return name + " is a symbolic link and was not followed: declarations are read only from regular files " +
		"in the repository, whose content a reviewer sees in the pull request; put the file itself here"
}

func dirLink(name string) string {
	return name + " is a symbolic link and was not followed: declarations are read only from regular files " +
		"in the repository, whose content a reviewer sees in the pull request; make it a directory"
}

// TestLoadRefusesLinksAndNonFiles: whatever sits where a declaration
// belongs and is not a regular file (or, for clusters/ and users/, a
// directory) is one located error; it is never followed or read, and every
// other problem of the repository is still reported.
func TestLoadRefusesLinksAndNonFiles(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, root, outside string)
		// want is the diagnostics besides brokenCluster and brokenUser,
		// which are expected unless gone says their directory was refused.
		want diag.List
		gone string
	}{
		{name: "link to a file outside the root",
			setup: func(t *testing.T, root, outside string) {
				symlink(t, filepath.Join(outside, "outside.json"), filepath.Join(root, "users", "zed.json"))
			},
			want: diag.List{d("users/zed.json", 0, 0, E, "zed.json is a symbolic link and was not followed: "+
				"declarations are read only from regular files in the repository, whose content a reviewer "+
				"sees in the pull request; put the file itself here")}},
		{name: "relative link out of the root",
			setup: func(t *testing.T, root, outside string) {
				rel, err := filepath.Rel(filepath.Join(root, "clusters"), filepath.Join(outside, "outside.json"))
				if err != nil {
					t.Fatal(err)
				}
				symlink(t, rel, filepath.Join(root, "clusters", "zed.json"))
			},
			want: diag.List{d("clusters/zed.json", 0, 0, E, fileLink("zed.json"))}},
		{name: "link to a file inside the root",
			// A reviewer sees "users/zed.json -> alice.json" and not
			// what zed would be granted, so it is refused all the same.
			setup: func(t *testing.T, root, _ string) {
				symlink(t, "alice.json", filepath.Join(root, "users", "zed.json"))
			},
			want: diag.List{d("users/zed.json", 0, 0, E, fileLink("zed.json"))}},
		{name: "dangling link",
			setup: func(t *testing.T, root, _ string) {
				symlink(t, "nowhere.json", filepath.Join(root, "users", "ghost.json"))
			},
			want: diag.List{d("users/ghost.json", 0, 0, E, fileLink("ghost.json"))}},
		{name: "linked users directory",
			setup: func(t *testing.T, root, outside string) {
				if err := os.RemoveAll(filepath.Join(root, "users")); err != nil {
					t.Fatal(err)
				}
				symlink(t, filepath.Join(outside, "users"), filepath.Join(root, "users"))
			},
			want: diag.List{d("users", 0, 0, E, dirLink("users"))},
			gone: "users/"},
		{name: "linked clusters directory inside the root",
			setup: func(t *testing.T, root, _ string) {
				if err := os.Rename(filepath.Join(root, "clusters"), filepath.Join(root, "fleet")); err != nil {
					t.Fatal(err)
				}
				symlink(t, "fleet", filepath.Join(root, "clusters"))
				// Without clusters every grant would name an unknown
				// one; only the broken user stays, to be reported.
				for _, u := range []string{"alice", "bob", "orders_api"} {
					if err := os.Remove(filepath.Join(root, "users", u+".json")); err != nil {
						t.Fatal(err)
					}
				}
			},
			want: diag.List{d("clusters", 0, 0, E, dirLink("clusters"))},
			gone: "clusters/"},
		{name: "directory named like a declaration",
			setup: func(t *testing.T, root, _ string) {
				writeFiles(t, root, map[string]string{"users/x.json/alice.json": "{\n"})
			},
			want: diag.List{d("users/x.json", 0, 0, E, "x.json is a directory, not a regular file, so it was not read")}},
		{name: "dbusers.json is a link",
			setup: func(t *testing.T, root, _ string) {
				if err := os.Rename(filepath.Join(root, SettingsFile), filepath.Join(root, "settings.json")); err != nil {
					t.Fatal(err)
				}
				symlink(t, "settings.json", filepath.Join(root, SettingsFile))
			},
			// Without settings only the built-in roles exist.
			want: diag.List{
				d("dbusers.json", 0, 0, E, fileLink("dbusers.json")),
				d("users/orders_api.json", 7, 97, E, `unknown role "etl" (known: admin, read, trusted_admin, write)`),
			}},
		{name: "dbusers.json is a link out of the root",
			setup: func(t *testing.T, root, outside string) {
				if err := os.Remove(filepath.Join(root, SettingsFile)); err != nil {
					t.Fatal(err)
				}
				symlink(t, filepath.Join(outside, SettingsFile), filepath.Join(root, SettingsFile))
			},
			want: diag.List{
				d("dbusers.json", 0, 0, E, fileLink("dbusers.json")),
				d("users/orders_api.json", 7, 97, E, `unknown role "etl" (known: admin, read, trusted_admin, write)`),
			}},
		{name: "dbusers.json is a directory",
			setup: func(t *testing.T, root, _ string) {
				if err := os.Remove(filepath.Join(root, SettingsFile)); err != nil {
					t.Fatal(err)
				}
				writeFiles(t, root, map[string]string{"dbusers.json/README": "not settings\n"})
			},
			want: diag.List{
				d("dbusers.json", 0, 0, E, "dbusers.json is a directory, not a regular file, so it was not read"),
				d("users/orders_api.json", 7, 97, E, `unknown role "etl" (known: admin, read, trusted_admin, write)`),
			}},
		{name: "users is a file",
			setup: func(t *testing.T, root, _ string) {
				if err := os.RemoveAll(filepath.Join(root, "users")); err != nil {
					t.Fatal(err)
				}
				writeFiles(t, root, map[string]string{"users": "alice\n"})
			},
			want: diag.List{d("users", 0, 0, E, "users is a regular file, not a directory, so it was not read")},
			gone: "users/"},
		{name: "a link without a declaration's name is not one",
			setup: func(t *testing.T, root, outside string) {
				symlink(t, filepath.Join(outside, "outside.json"), filepath.Join(root, "users", "README"))
				symlink(t, filepath.Join(outside, "users"), filepath.Join(root, "users", "more"))
			}},
	}
	loaders := []struct {
		name string
		load func(root string) (*Loaded, diag.List, error)
	}{
		{"LoadDir", func(root string) (*Loaded, diag.List, error) { return LoadDir(root, today) }},
		// The checks do not depend on os.Root: os.DirFS lists and lstats
		// the same way.
		{"os.DirFS", func(root string) (*Loaded, diag.List, error) { return Load(os.DirFS(root), today) }},
	}
	for _, tt := range tests {
		for _, loader := range loaders {
			t.Run(tt.name+"/"+loader.name, func(t *testing.T) {
				root, outside := linkRepo(t)
				tt.setup(t, root, outside)
				l, got, err := loader.load(root)
				if err != nil {
					t.Fatalf("a refused entry aborted the run: %v", err)
				}
				want := slices.Clone(tt.want)
				for _, b := range []diag.Diagnostic{brokenCluster, brokenUser} {
					if tt.gone == "" || !strings.HasPrefix(b.File, tt.gone) {
						want = append(want, b)
					}
				}
				want.Sort()
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("diagnostics (-want +got):\n%s\ngot:\n%s", diff, listString(got))
				}
				for _, u := range l.Config.Users {
					if u.Name == "mallory" || u.Name == "zed" || u.Name == "ghost" {
						t.Errorf("user %s was loaded through a link", u.Name)
					}
				}
				if l.Config.Settings.Prefix == "evil" {
					t.Error("settings were loaded through a link")
				}
			})
		}
	}
}

// lyingFS lists every entry as a regular file and hides Lstat, as a
// listing taken before a file was swapped for a link or a directory would.
type lyingFS struct{ fs.FS }

func (f lyingFS) ReadDir(name string) ([]fs.DirEntry, error) {
	entries, err := fs.ReadDir(f.FS, name)
	for i, e := range entries {
		entries[i] = regularEntry{e}
	}
	return entries, err
}

type regularEntry struct{ fs.DirEntry }

func (regularEntry) Type() fs.FileMode { return 0 }

// TestLoadChecksWhatItOpened: when the listing was wrong, what was opened
// is still checked (a directory is reported, not read), and through an
// os.Root a link that the listing missed cannot lead out of the root.
func TestLoadChecksWhatItOpened(t *testing.T) {
	root, outside := linkRepo(t)
	writeFiles(t, root, map[string]string{"users/x.json/alice.json": "{\n"})
	r, err := os.OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	_, got, err := Load(lyingFS{r.FS()}, today)
	if err != nil {
		t.Fatal(err)
	}
	want := diag.List{brokenCluster, d("users/x.json", 0, 0, E, "x.json is a directory, not a regular file, so it was not read"), brokenUser}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}

	symlink(t, filepath.Join(outside, "outside.json"), filepath.Join(root, "users", "zed.json"))
	l, got, err := Load(lyingFS{r.FS()}, today)
	if err == nil {
		t.Fatalf("a link out of the root was read: %v\n%s", l.Config.Users, listString(got))
	}
	if !strings.Contains(err.Error(), "read users/zed.json: ") {
		t.Errorf("error %q does not name users/zed.json", err)
	}
}
