package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dbusers/dbusers/bot/internal/review"
	"github.com/dbusers/dbusers/bot/internal/testsupport/gittest"
)

// planNow is the clock of every plan and comment test.
var planNow = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// planCLI runs the CLI in-process with the given environment variables
// and returns its exit code and output.
func planCLI(t testing.TB, environ map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	e := env{stdout: &out, stderr: &errOut, now: func() time.Time { return planNow },
		getenv: func(k string) string { return environ[k] }}
	code = run(context.Background(), e, args)
	return code, out.String(), errOut.String()
}

// copyDeclarations copies the examples (examples/acme: dbusers.json,
// clusters/, users/) and the repository's schema/ into dir, as the root
// of a repository.
func copyDeclarations(t testing.TB, dir string) {
	t.Helper()
	repo := filepath.Join("..", "..", "..")
	examples := filepath.Join(repo, "examples", "acme")
	for _, from := range []struct{ src, p string }{
		{examples, "dbusers.json"}, {examples, "clusters"}, {examples, "users"}, {repo, "schema"},
	} {
		err := filepath.WalkDir(filepath.Join(from.src, from.p), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, err := filepath.Rel(from.src, path)
			if err != nil {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			out := filepath.Join(dir, rel)
			if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
				return err
			}
			return os.WriteFile(out, data, 0o644)
		})
		if err != nil {
			t.Fatalf("copy the examples' declarations: %v", err)
		}
	}
}

const henryJSON = `{
  "$schema": "../schema/user.schema.json",
  "name": "henry",
  "owner": "henry@acme.example",
  "kind": "human",
  "access": [
    {"clusters": ["staging-main"], "databases": ["orders"], "role": "read"}
  ]
}
`

// prRepo is a repository with the project's declarations committed on
// main and a branch "feature" that elevates alice to admin on prod, adds
// henry and deletes frank. After the branch point main moved on (ivan was
// added), which the plan must not show. The working tree is on feature.
func prRepo(t testing.TB) *gittest.Repo {
	t.Helper()
	r := gittest.New(t, "plan and comment read revisions with git")
	copyDeclarations(t, r.Dir)
	r.Commit("declarations")
	r.Git("checkout", "-q", "-b", "feature")
	alice := r.Read("users/alice.json")
	elevated := strings.Replace(alice,
		`{"clusters": ["prod-orders"], "databases": ["orders"], "role": "read"}`,
		`{"clusters": ["prod-orders"], "databases": ["orders"], "role": "admin", "reason": "schema migration OPS-9"}`, 1)
	if elevated == alice {
		t.Fatal("users/alice.json changed shape; update prRepo")
	}
	r.Write(map[string]string{"users/alice.json": elevated, "users/henry.json": henryJSON, "users/frank.json": ""})
	r.Commit("alice admin on prod, add henry, remove frank")
	r.Git("checkout", "-q", "main")
	r.Write(map[string]string{"users/ivan.json": strings.ReplaceAll(henryJSON, "henry", "ivan")})
	r.Commit("main moved on: ivan")
	r.Git("checkout", "-q", "feature")
	return r
}

func TestPlanAcrossCommits(t *testing.T) {
	r := prRepo(t)
	code, stdout, stderr := planCLI(t, nil, "plan", "--base", "main", "--root", r.Dir)
	if code != exitChanges {
		t.Fatalf("exit %d, want %d; stderr:\n%s\nstdout:\n%s", code, exitChanges, stderr, stdout)
	}
	for _, want := range []string{
		"users: 1 added, 1 removed, 1 changed",
		"!! ALTER and CREATE ROUTINE on production for alice on prod-orders/orders (role admin)",
		"user frank is removed",
		"alice (acme_alice, human, alice@acme.example): changed",
		"elevate on prod-orders/orders: read → admin",
		"henry (acme_henry, human, henry@acme.example): added",
		"+ grant read on staging-main/orders",
		"frank (acme_frank, human, frank@acme.example): removed",
		"- revoke read on prod-analytics/analytics",
		"→ working tree (2026-03-01)",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("plan output lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "ivan") {
		t.Errorf("a change merged to main after the branch point shows up as the pull request's:\n%s", stdout)
	}
	if stderr != "" {
		t.Errorf("stderr: %s", stderr)
	}

	// Uncommitted changes in the working tree count without --head.
	r.Write(map[string]string{"users/gina.json": ""})
	_, stdout, _ = planCLI(t, nil, "plan", "--base", "main", "--root", r.Dir)
	if !strings.Contains(stdout, "gina (acme_gina, human, gina@acme.example): removed") {
		t.Errorf("an uncommitted deletion is not in the plan:\n%s", stdout)
	}
}

func TestPlanHead(t *testing.T) {
	r := prRepo(t)
	feature := r.Git("rev-parse", "feature")
	// The working tree is elsewhere, and dirty: --head ignores it.
	r.Git("checkout", "-q", "main")
	r.Write(map[string]string{"users/bob.json": ""})

	code, stdout, stderr := planCLI(t, nil, "plan", "--base", "main", "--head", "feature", "--root", r.Dir, "--format", "markdown")
	if code != exitChanges {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	for _, want := range []string{
		"### dbusers plan: 🔴 1 high risk · 3 users change",
		"→ `feature (" + feature[:12] + ")`",
		"🔴 ALTER and CREATE ROUTINE on production for alice on prod-orders/orders (role admin)",
		"<summary><b>henry</b>",
		"➖ **frank** (human, frank@acme.example): drop `acme_frank` on ",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("markdown lacks %q:\n%s", want, stdout)
		}
	}
	for _, unwanted := range []string{"<b>bob</b>", "ivan"} {
		if strings.Contains(stdout, unwanted) {
			t.Errorf("markdown shows %q, which is not in feature's change:\n%s", unwanted, stdout)
		}
	}
}

// TestPlanNotesCodeChanges: a pull request that changes dbusers' code, its
// dependencies or the workflows is told, on top of its plan, that the
// review was made by the base branch's code and that the change needs its
// own review; one that changes declarations only is not.
func TestPlanNotesCodeChanges(t *testing.T) {
	r := prRepo(t)
	const note = "This pull request changes dbusers itself ("
	_, stdout, _ := planCLI(t, nil, "plan", "--base", "main", "--root", r.Dir)
	if strings.Contains(stdout, note) {
		t.Errorf("a change to declarations alone is noted as a code change:\n%s", stdout)
	}

	r.Write(map[string]string{
		"bot/internal/plan/plan.go": "package plan // the review would lie\n",
		".github/workflows/pr.yml":  "name: changed\n",
		"go.sum":                    "example.com/evil v1.0.0 h1:x\n",
		"bot/internal/render/a.go":  "package render\n",
		"bot/internal/render/b.go":  "package render\n",
		"bot/internal/render/c.go":  "package render\n",
		"bot/internal/render/d.go":  "package render\n",
		"docs/not-code.md":          "prose\n",
	})
	r.Commit("change the review code")
	code, stdout, stderr := planCLI(t, nil, "plan", "--base", "main", "--root", r.Dir, "--format", "markdown")
	if code != exitChanges {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	want := "> ⚠️ " + note + ".github/workflows/pr.yml, bot/internal/plan/plan.go, bot/internal/render/a.go, bot/internal/render/b.go, " +
		"bot/internal/render/c.go and 2 more). The pull-request workflow reviews with the dbusers and the workflow of the base branch, " +
		"never the pull request's own: this plan does not show what the changed code would do. The code change needs its own review (CI and CODEOWNERS)."
	if !strings.Contains(stdout, want) {
		t.Errorf("markdown lacks the note\n%s\n%s", want, stdout)
	}

	// A pull request that changes code and no account still says so.
	r.Git("checkout", "-q", "-b", "code-only", "main")
	r.Write(map[string]string{"bot/cmd/dbusers/main.go": "package main\n"})
	r.Commit("code only")
	code, stdout, _ = planCLI(t, nil, "plan", "--base", "main", "--root", r.Dir, "--format", "markdown")
	if code != exitOK || !strings.HasPrefix(stdout, "### dbusers plan: no change to any database account\n") ||
		!strings.Contains(stdout, note+"bot/cmd/dbusers/main.go)") {
		t.Errorf("code only: exit %d\n%s", code, stdout)
	}
	_, stdout, _ = planCLI(t, nil, "plan", "--base", "main", "--root", r.Dir)
	if !strings.Contains(stdout, "note: "+note+"bot/cmd/dbusers/main.go)") {
		t.Errorf("code only, text:\n%s", stdout)
	}
}

func TestPlanNoChange(t *testing.T) {
	r := prRepo(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--head", "main"}, "dbusers plan: no change to any database account\n"},
		{[]string{"--head", "main", "--format", "markdown"}, "### dbusers plan: no change to any database account\n\n" +
			"<sub>dbusers · head " + r.Git("rev-parse", "main") + " · made 2026-03-01 09:00 UTC</sub>\n"},
		{[]string{"--head", "feature~1"}, "dbusers plan: no change to any database account\n"},
	} {
		code, stdout, stderr := planCLI(t, nil, append([]string{"plan", "--base", "main", "--root", r.Dir}, tc.args...)...)
		if code != exitOK || stdout != tc.want {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 0 and %q", tc.args, code, stdout, stderr, tc.want)
		}
	}
	// A description edit reaches no database: no change either.
	r.Git("checkout", "-q", "main")
	bob := r.Read("users/bob.json")
	edited := strings.Replace(bob, `"description": "Backend engineer, payments."`, `"description": "Backend engineer, payments and refunds."`, 1)
	if edited == bob {
		t.Fatal("users/bob.json changed shape; update the test")
	}
	r.Write(map[string]string{"users/bob.json": edited})
	code, stdout, _ := planCLI(t, nil, "plan", "--base", "main", "--root", r.Dir)
	if code != exitOK || stdout != "dbusers plan: no change to any database account\n" {
		t.Errorf("description edit: exit %d, %q", code, stdout)
	}
}

func TestPlanInvalidHead(t *testing.T) {
	r := prRepo(t)
	bob := r.Read("users/bob.json")
	broken := strings.Replace(bob, `"role": "write"`, `"role": "writer"`, 1)
	if broken == bob {
		t.Fatal("users/bob.json changed shape; update the test")
	}
	r.Write(map[string]string{"users/bob.json": broken})
	r.Commit("typo in a role")

	for _, format := range []string{"text", "markdown", "json"} {
		t.Run(format, func(t *testing.T) {
			code, stdout, stderr := planCLI(t, nil, "plan", "--base", "main", "--head", "HEAD", "--root", r.Dir, "--format", format)
			if code != exitError {
				t.Errorf("exit %d, want %d", code, exitError)
			}
			if !strings.Contains(stderr, "do not validate") {
				t.Errorf("stderr %q does not say why", stderr)
			}
			switch format {
			case "text":
				if !strings.Contains(stdout, "users/bob.json:") || !strings.Contains(stdout, "writer") {
					t.Errorf("diagnostics do not name the file and the role:\n%s", stdout)
				}
			case "markdown":
				if !strings.Contains(stdout, "❌ the declarations do not validate") || !strings.Contains(stdout, "| `users/bob.json` |") {
					t.Errorf("markdown:\n%s", stdout)
				}
			case "json":
				var got struct {
					Valid       bool `json:"valid"`
					Diagnostics []struct {
						File     string `json:"file"`
						Line     int    `json:"line"`
						Severity string `json:"severity"`
						Message  string `json:"message"`
					} `json:"diagnostics"`
				}
				if err := json.Unmarshal([]byte(stdout), &got); err != nil {
					t.Fatalf("json: %v\n%s", err, stdout)
				}
				var errs []string
				for _, d := range got.Diagnostics {
					if d.Severity == "error" {
						errs = append(errs, fmt.Sprintf("%s:%d: %s", d.File, d.Line, d.Message))
					}
				}
				if got.Valid || len(errs) != 1 || !strings.HasPrefix(errs[0], "users/bob.json:8: ") || !strings.Contains(errs[0], "writer") {
					t.Errorf("json: valid %v, errors %q", got.Valid, errs)
				}
			}
		})
	}
}

// TestPlanRefusesLinks: a pull request that adds users/zed.json as a link to
// a valid declaration outside the repository gets an error at the link, in
// the working tree and at a committed head, and no plan: zed is never
// shown as added, so a reviewer cannot approve what the diff does not show.
func TestPlanRefusesLinks(t *testing.T) {
	r := prRepo(t)
	outside := filepath.Join(t.TempDir(), "zed.json")
	if err := os.WriteFile(outside, []byte(strings.ReplaceAll(henryJSON, "henry", "zed")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(r.Dir, "users", "zed.json")); err != nil {
		t.Fatal(err)
	}
	const refusal = "zed.json is a symbolic link and was not followed"
	for _, tc := range []struct {
		name   string
		commit bool // the link first, so that --head reads it from git
		args   []string
	}{
		{"working tree", false, []string{"--format", "text"}},
		{"working tree, comment", false, []string{"--format", "markdown"}},
		{"committed head", true, []string{"--head", "HEAD", "--format", "text"}},
	} {
		if tc.commit {
			r.Commit("zed, as a link")
		}
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := planCLI(t, nil, append([]string{"plan", "--base", "main", "--root", r.Dir}, tc.args...)...)
			if code != exitError || !strings.Contains(stderr, "do not validate") {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, exitError, stderr)
			}
			want := "users/zed.json: error: " + refusal
			if tc.args[len(tc.args)-1] == "markdown" {
				want = "| `users/zed.json` |"
			}
			if !strings.Contains(stdout, want) || !strings.Contains(stdout, refusal) {
				t.Errorf("output lacks %q and %q:\n%s", want, refusal, stdout)
			}
			if strings.Contains(stdout, "acme_zed") || strings.Contains(stdout, "zed@acme.example") {
				t.Errorf("the linked declaration was read:\n%s", stdout)
			}
		})
	}
}

func TestPlanJSON(t *testing.T) {
	r := prRepo(t)
	code, stdout, stderr := planCLI(t, nil, "plan", "--base", "main", "--root", r.Dir, "--format", "json")
	if code != exitChanges {
		t.Fatalf("exit %d; stderr %s", code, stderr)
	}
	var got struct {
		Version string `json:"dbusers_version"`
		Commit  string `json:"dbusers_commit"`
		Valid   bool   `json:"valid"`
		BaseSHA string `json:"base_sha"`
		review.Review
	}
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("decode: %v\n%s", err, stdout)
	}
	if got.Version == "" || !got.Valid || len(got.BaseSHA) != 40 || !strings.Contains(got.Base, got.BaseSHA[:12]) {
		t.Errorf("version %q, valid %v, base_sha %q (base %q)", got.Version, got.Valid, got.BaseSHA, got.Base)
	}
	var names []string
	for _, u := range got.Users {
		names = append(names, fmt.Sprintf("%s:%s", u.Name, u.Status))
	}
	if strings.Join(names, " ") != "alice:changed frank:removed henry:added" {
		t.Errorf("users %v", names)
	}
	if got.Date != "2026-03-01" || got.Head != "working tree" || !strings.HasSuffix(got.Base, " of main") {
		t.Errorf("header: base %q head %q date %q", got.Base, got.Head, got.Date)
	}
	if len(got.Risks) == 0 || got.Risks[0].Level != review.High {
		t.Errorf("risks %+v", got.Risks)
	}
}

// featureRepo is a repository with the project's declarations committed
// on main and a branch "feature" (checked out) that rewrites files with
// edit, which gets each file's content and returns the new one ("" to
// delete it); files names the files edit is given or creates.
func featureRepo(t testing.TB, edit func(path, content string) string, files ...string) *gittest.Repo {
	t.Helper()
	r := gittest.New(t, "plan and comment read revisions with git")
	copyDeclarations(t, r.Dir)
	r.Commit("declarations")
	r.Git("checkout", "-q", "-b", "feature")
	changed := map[string]string{}
	for _, p := range files {
		old := ""
		if data, err := os.ReadFile(filepath.Join(r.Dir, p)); err == nil {
			old = string(data)
		}
		if changed[p] = edit(p, old); changed[p] == old {
			t.Fatalf("%s changed shape; update the test", p)
		}
	}
	r.Write(changed)
	r.Commit("feature")
	return r
}

// replaceOnce replaces old by new in s, failing the test when old is not
// there exactly once.
func replaceOnce(t testing.TB, s, old, new string) string {
	t.Helper()
	if n := strings.Count(s, old); n != 1 {
		t.Fatalf("%q occurs %d times, want once; update the test", old, n)
	}
	return strings.Replace(s, old, new, 1)
}

// TestPlanHostilePullRequest: issue 16's pull request loosens the removal
// limit, unprotects the break-glass account and grants a role that is
// trusted_admin in all but name on production. Every part is a high risk,
// with its code, in every format.
func TestPlanHostilePullRequest(t *testing.T) {
	r := featureRepo(t, func(p, s string) string {
		switch p {
		case "dbusers.json":
			s = replaceOnce(t, s, `"removal_limit": {"count": 5, "fraction": 0.2}`, `"removal_limit": {"count": 100000, "fraction": 1}`)
			s = replaceOnce(t, s, `"protected_accounts": ["acme_breakglass"],`, "")
			return replaceOnce(t, s, `"roles": {`, `"roles": {
    "ops": {"description": "Operations.", "privileges": ["ALL PRIVILEGES"]},`)
		default: // users/bob.json
			return replaceOnce(t, s, `{"clusters": ["prod-orders"], "databases": ["payments"], "role": "read"}`,
				`{"clusters": ["prod-orders"], "databases": ["payments"], "role": "ops"}`)
		}
	}, "dbusers.json", "users/bob.json")

	code, stdout, stderr := planCLI(t, nil, "plan", "--base", "main", "--root", r.Dir, "--format", "json")
	if code != exitChanges {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	var got review.Review
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("json: %v\n%s", err, stdout)
	}
	var risks []string
	for _, k := range got.Risks {
		risks = append(risks, string(k.Level)+" "+k.Kind)
	}
	want := []string{"high all_privileges", "high role_template", "high removal_limit", "high protected_accounts"}
	if !slices.Equal(risks, want) {
		t.Errorf("risks %q, want %q\n%s", risks, want, stdout)
	}

	_, md, _ := planCLI(t, nil, "plan", "--base", "main", "--root", r.Dir, "--format", "markdown")
	risky, settings, ok := strings.Cut(md, "#### Configuration changes")
	if !ok {
		t.Fatalf("no configuration changes:\n%s", md)
	}
	for _, want := range []string{
		"### dbusers plan: 🔴 4 high risks · 1 user changes",
		"🔴 every privilege (ALL PRIVILEGES) for bob on prod-orders/payments (role ops)",
		"🔴 removal limit loosened from count 5, fraction 0.2 to count 100000, fraction 1",
		"🔴 protected accounts shrink from acme_breakglass to none",
	} {
		if !strings.Contains(risky, want) {
			t.Errorf("the summary and risks lack %q:\n%s", want, md)
		}
	}
	if !strings.Contains(settings, "- removal limit count 5, fraction 0.2 → count 100000, fraction 1") {
		t.Errorf("the configuration changes lack the removal limit:\n%s", md)
	}
}

// TestPlanProtectedAccount: a pull request that declares the break-glass
// account, which dbusers.json protects, gets the validation errors in place
// of a plan: the review never shows a grant that the plan will skip.
func TestPlanProtectedAccount(t *testing.T) {
	r := featureRepo(t, func(_, _ string) string {
		return strings.ReplaceAll(henryJSON, "henry", "breakglass")
	}, "users/breakglass.json")
	const why = `account "acme_breakglass" is in protected_accounts of dbusers.json`
	for _, tc := range []struct{ format, want string }{
		{"text", "users/breakglass.json:3:11: error: " + why},
		{"markdown", "| `users/breakglass.json` | 3 | ❌ " + why},
		{"json", "users/breakglass.json:3:11: error: " + why},
	} {
		t.Run(tc.format, func(t *testing.T) {
			code, stdout, stderr := planCLI(t, nil, "plan", "--base", "main", "--root", r.Dir, "--format", tc.format)
			if code != exitError || !strings.Contains(stderr, "do not validate") {
				t.Errorf("exit %d, stderr %q; want %d and \"do not validate\"", code, stderr, exitError)
			}
			got := stdout
			if tc.format == "json" {
				var out struct {
					Valid       bool `json:"valid"`
					Diagnostics []struct {
						File      string `json:"file"`
						Line, Col int
						Severity  string `json:"severity"`
						Message   string `json:"message"`
					} `json:"diagnostics"`
				}
				if err := json.Unmarshal([]byte(stdout), &out); err != nil || out.Valid {
					t.Fatalf("json: %v, valid %v\n%s", err, out.Valid, stdout)
				}
				got = ""
				for _, d := range out.Diagnostics {
					got += fmt.Sprintf("%s:%d:%d: %s: %s\n", d.File, d.Line, d.Col, d.Severity, d.Message)
				}
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("output lacks %q:\n%s", tc.want, stdout)
			}
			if strings.Contains(stdout, "grant read") || strings.Contains(stdout, "added") {
				t.Errorf("the protected account is shown as a change:\n%s", stdout)
			}
		})
	}
}

// TestPlanBaseBeforeDbusers: a repository whose main predates dbusers
// (no dbusers.json at the merge base) is compared against nothing.
func TestPlanBaseBeforeDbusers(t *testing.T) {
	r := gittest.New(t, "plan and comment read revisions with git")
	r.Write(map[string]string{"README.md": "# access requests\n"})
	r.Commit("before dbusers")
	r.Git("checkout", "-q", "-b", "adopt")
	copyDeclarations(t, r.Dir)
	r.Commit("adopt dbusers")

	code, stdout, stderr := planCLI(t, nil, "plan", "--base", "main", "--root", r.Dir)
	if code != exitChanges {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	users, err := os.ReadDir(filepath.Join(r.Dir, "users"))
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("users: %d added;", len(users)); !strings.Contains(stdout, want) {
		t.Errorf("plan lacks %q:\n%s", want, stdout)
	}
	if strings.Contains(stdout, "prefix") && !strings.Contains(stdout, "dbusers.json added") {
		t.Errorf("adopting dbusers is reported as a prefix change:\n%s", stdout)
	}
	if strings.Contains(stdout, "removed") {
		t.Errorf("nothing can be removed when the base has nothing:\n%s", stdout)
	}
}

func TestPlanErrors(t *testing.T) {
	r := prRepo(t)
	notRepo := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"no base", []string{"plan", "--root", r.Dir}, "--base is required"},
		{"unknown base", []string{"plan", "--base", "origin/main", "--root", r.Dir}, `unknown revision "origin/main" (fetch it`},
		{"unknown head", []string{"plan", "--base", "main", "--head", "nope", "--root", r.Dir}, `unknown revision "nope"`},
		{"dash revision", []string{"plan", "--base", "--output=/tmp/x", "--root", r.Dir}, "may not start with '-'"},
		{"not a repository", []string{"plan", "--base", "main", "--root", notRepo}, "not a git repository"},
		{"bad format", []string{"plan", "--base", "main", "--root", r.Dir, "--format", "yaml"}, `unknown format "yaml"`},
		{"extra argument", []string{"plan", "--base", "main", "--root", r.Dir, "extra"}, `unexpected argument "extra"`},
		{"bad flag", []string{"plan", "--nope"}, "flag provided but not defined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := planCLI(t, nil, tc.args...)
			if code != exitError || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, exitError, tc.want)
			}
			if stdout != "" {
				t.Errorf("stdout %q", stdout)
			}
		})
	}

	// A base that exists but does not validate (validated by an older
	// dbusers, or pushed past the check): the pull request that repairs it
	// is compared against nothing, with a note, so its check can go green.
	r.Git("checkout", "-q", "main")
	bob := r.Read("users/bob.json")
	r.Write(map[string]string{"users/bob.json": strings.Replace(bob, `"role": "write"`, `"role": "writer"`, 1)})
	r.Commit("broken main")
	r.Git("checkout", "-q", "-b", "fix")
	r.Write(map[string]string{"users/bob.json": bob})
	r.Commit("fix bob")
	code, stdout, stderr := planCLI(t, nil, "plan", "--base", "main", "--root", r.Dir)
	if code != exitChanges || !strings.Contains(stdout, "does not validate") || !strings.Contains(stdout, "users/bob.json") ||
		!strings.Contains(stdout, "compares against an empty configuration") {
		t.Errorf("broken base: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// bigRepo writes a 10,000-user repository with two commits into dir:
// main, and a branch "feature" (checked out) that elevates 200 users,
// removes 100 and adds 100.
func bigRepo(dir string) (string, error) {
	git := func(args ...string) error {
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=bench", "-c", "user.email=bench@dbusers.example",
			"-c", "commit.gpgsign=false"}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("git %v: %v: %s", args, err, out)
		}
		return nil
	}
	if err := git("init", "-q", "-b", "main"); err != nil {
		return "", err
	}
	files := map[string]string{}
	src := filepath.Join("..", "..", "..")
	for _, p := range []string{"dbusers.json", "clusters/local.json", "clusters/prod-analytics.json", "clusters/prod-orders.json", "clusters/staging-main.json"} {
		data, err := os.ReadFile(filepath.Join(src, p))
		if err != nil {
			return "", err
		}
		files[p] = string(data)
	}
	user := func(i int, role string) string {
		return fmt.Sprintf(`{
  "name": "u%05d",
  "owner": "team%d@acme.example",
  "kind": "human",
  "access": [
    {"environments": ["staging"], "databases": ["*"], "role": "%s"},
    {"clusters": ["prod-orders"], "databases": ["orders"], "role": "read", "expires": "2026-12-31"}
  ]
}
`, i, i%50, role)
	}
	for i := range 10000 {
		files[fmt.Sprintf("users/u%05d.json", i)] = user(i, "read")
	}
	write := func() error {
		for p, s := range files {
			full := filepath.Join(dir, filepath.FromSlash(p))
			if s == "" {
				if err := os.Remove(full); err != nil {
					return err
				}
				delete(files, p)
				continue
			}
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(full, []byte(s), 0o644); err != nil {
				return err
			}
		}
		return nil
	}
	if err := write(); err != nil {
		return "", err
	}
	if err := git("add", "-A"); err != nil {
		return "", err
	}
	if err := git("commit", "-q", "-m", "10,000 users"); err != nil {
		return "", err
	}
	if err := git("checkout", "-q", "-b", "feature"); err != nil {
		return "", err
	}
	changed := map[string]string{}
	for i := 0; i < 10000; i += 50 {
		changed[fmt.Sprintf("users/u%05d.json", i)] = user(i, "write") // 200 elevated
	}
	for i := 25; i < 10000; i += 100 {
		changed[fmt.Sprintf("users/u%05d.json", i)] = "" // 100 removed
	}
	for i := 10000; i < 10100; i++ {
		changed[fmt.Sprintf("users/u%05d.json", i)] = user(i, "read") // 100 added
	}
	files = changed
	if err := write(); err != nil {
		return "", err
	}
	if err := git("add", "-A"); err != nil {
		return "", err
	}
	if err := git("commit", "-q", "-m", "change 400 users"); err != nil {
		return "", err
	}
	return dir, nil
}

// BenchmarkPlan10kUsers runs the whole `plan --base` path on a
// 10,000-user repository: git reads the base revision, both sides load and
// validate, the review compares them, and markdown is rendered.
func BenchmarkPlan10kUsers(b *testing.B) {
	if _, err := exec.LookPath("git"); err != nil {
		b.Skipf("SKIP: git is not installed: %v", err)
	}
	dir, err := bigRepo(b.TempDir()) // not timed: b.Loop starts the timer
	if err != nil {
		b.Fatal(err)
	}
	var out, errOut bytes.Buffer
	e := env{stdout: &out, stderr: &errOut, now: func() time.Time { return planNow }, getenv: func(string) string { return "" }}
	b.ReportAllocs()
	for b.Loop() {
		out.Reset()
		errOut.Reset()
		if code := run(context.Background(), e, []string{"plan", "--base", "main", "--root", dir, "--format", "markdown"}); code != exitChanges {
			b.Fatalf("exit %d: %s", code, errOut.String())
		}
	}
	b.StopTimer()
	if !strings.Contains(out.String(), "users: 100 added, 100 removed, 200 changed") {
		b.Errorf("unexpected plan: %.300s", out.String())
	}
}

// TestCLIDoesNotLinkEmbeddedServer keeps the CLI lean: every pull request
// builds it cold, and the embedded MySQL-compatible server and the AWS
// emulator (the demo's and the tests' stand-ins) must not come along.
func TestCLIDoesNotLinkEmbeddedServer(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		if root := os.Getenv("GOROOT"); root != "" {
			goTool, err = filepath.Join(root, "bin", "go"), nil
		}
	}
	if err != nil {
		t.Skipf("SKIP: the go tool is not available (%v); cannot check the CLI's dependencies", err)
	}
	cmd := exec.Command(goTool, "list", "-deps", "-f", "{{.ImportPath}}\t{{join .Imports \" \"}}", ".")
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list -deps: %v\n%s", err, stderr)
	}
	forbidden := []string{
		"github.com/dolthub/",                              // go-mysql-server and its vitess
		"github.com/sivchari/kumo",                         // the AWS emulator
		"github.com/dbusers/dbusers/bot/internal/embedded", // the demo's server wiring
	}
	importers := map[string][]string{}
	var deps []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, "\t")
		deps = append(deps, pkg)
		for _, imp := range strings.Fields(imports) {
			importers[imp] = append(importers[imp], pkg)
		}
	}
	if !slices.Contains(deps, "github.com/dbusers/dbusers/bot/internal/review") {
		t.Fatalf("go list -deps looks wrong (no review package among %d deps)", len(deps))
	}
	for _, pkg := range deps {
		for _, f := range forbidden {
			if strings.HasPrefix(pkg, f) {
				t.Errorf("the CLI links %s (imported by %s); keep it in bot/cmd/demo", pkg, strings.Join(importers[pkg], ", "))
			}
		}
	}
	nonStd := 0
	for _, pkg := range deps {
		if first, _, _ := strings.Cut(pkg, "/"); strings.Contains(first, ".") {
			nonStd++
		}
	}
	t.Logf("the CLI links %d packages, %d outside the standard library", len(deps), nonStd)
}
