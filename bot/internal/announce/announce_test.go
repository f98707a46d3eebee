package announce

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v60/github"
	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/renderer/html"

	"github.com/dbusers/dbusers/bot/internal/ghcomment"
	"github.com/dbusers/dbusers/bot/internal/ghcomment/ghcommenttest"
	"github.com/dbusers/dbusers/bot/internal/rollout"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var at = time.Date(2026, 3, 1, 9, 1, 0, 0, time.UTC)

const (
	version = "20260301T090000Z-ad6aa65e5287"
	commit  = ghcommenttest.MergeCommit
)

var ctxt = Context{RepoURL: "https://github.com/acme/dbaccess", Ref: commit, RunURL: "https://github.com/acme/dbaccess/actions/runs/4242", Asked: version}

func run(trigger string) rollout.Run {
	return rollout.Run{Trigger: trigger, RequestID: "8c1e2f4a-1b2c-4d5e-8f90-a1b2c3d4e5f6", LogGroup: "/aws/lambda/dbusers",
		StartedAt: at.Add(-3 * time.Second), FinishedAt: at, Clusters: 4, SignedBy: "arn:aws:kms:eu-west-1:123456789012:key/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"}
}

func users() []rollout.User {
	return []rollout.User{
		{Name: "hana", Account: "acme_hana", Auth: "iam", Kind: "human", Clusters: []string{"prod-orders", "staging-main"}},
		{Name: "reporting", Account: "acme_reporting", Auth: "password", Kind: "service", Clusters: []string{"local", "prod-orders"}},
		{Name: "bob", Account: "acme_bob", Auth: "iam", Kind: "human", Clusters: []string{"staging-main"}},
	}
}

// applied: hana joins on two clusters, gina leaves, a hand-made account
// goes, reporting's access changes; every cluster applied.
func applied() *rollout.Record {
	return rollout.Merge(nil, rollout.Update{Version: version, Commit: commit, PullRequest: "42", PublishedAt: at.Add(-time.Minute), Run: run("publish"),
		Clusters: []rollout.Cluster{
			{Name: "local", Status: rollout.Applied, Changes: 4, Statements: 4, Dropped: 2, Server: "MariaDB 10.11.19"},
			{Name: "prod-analytics", Status: rollout.Unchanged, Server: "Aurora MySQL 3.08.0 (MySQL 8.0.39)"},
			{Name: "prod-orders", Status: rollout.Applied, Changes: 3, Statements: 3, Created: 1, Server: "Aurora MySQL 3.08.0 (MySQL 8.0.39)"},
			{Name: "staging-main", Status: rollout.Applied, Changes: 2, Statements: 2, Created: 1, Server: "MySQL 8.0.39"},
		},
		Accounts: []rollout.Account{
			{User: "hana", Account: "acme_hana", Cluster: "prod-orders", Event: rollout.Created},
			{User: "hana", Account: "acme_hana", Cluster: "staging-main", Event: rollout.Created},
			{User: "gina", Account: "acme_gina", Cluster: "local", Event: rollout.Dropped},
			{User: "reporting", Account: "acme_reporting", Cluster: "prod-orders", Event: rollout.Changed},
			{Account: "acme_tmp_debug", Cluster: "local", Event: rollout.Dropped},
		},
		Users: users(),
	})
}

// problems: one cluster failed, one partial, one held drops back.
func problems() *rollout.Record {
	return rollout.Merge(nil, rollout.Update{Version: version, Commit: commit, PullRequest: "42", PublishedAt: at.Add(-time.Minute), Run: run("publish"),
		Clusters: []rollout.Cluster{
			{Name: "local", Status: rollout.Applied, Changes: 9, Statements: 9, Created: 2, Dropped: 1, Server: "MariaDB 10.11.19"},
			{Name: "prod-analytics", Status: rollout.Applied, Statements: 2, Created: 1, Held: 7, LimitTripped: "7 removals exceed the removal limit of 5 (count 5, fraction 0.1 of 40 managed accounts): nothing was dropped or locked"},
			{Name: "prod-orders", Status: rollout.Failed, Stage: "assume-role", AccountID: "111111111111", Region: "eu-west-1",
				Error: "cluster prod-orders: assume arn:aws:iam::111111111111:role/dbusers-management: operation error STS: AssumeRole, api error AccessDenied"},
			{Name: "staging-main", Status: rollout.Partial, Statements: 3, Created: 1, FailedAccountCount: 1,
				FailedAccounts: []rollout.FailedAccount{{Account: "acme_bob", User: "bob", Summary: "grant write on orders to acme_bob", Error: "Error 1142 (42000): GRANT command denied to user 'dbusers_admin'@'10.0.3.7'"}}},
		},
		Accounts: []rollout.Account{
			{User: "hana", Account: "acme_hana", Cluster: "staging-main", Event: rollout.Created},
			{User: "bob", Account: "acme_bob", Cluster: "staging-main", Event: rollout.FailedEvent, Summary: "grant write on orders to acme_bob", Error: "Error 1142 (42000): GRANT command denied to user 'dbusers_admin'@'10.0.3.7'"},
			{User: "zed", Account: "acme_zed", Cluster: "prod-analytics", Event: rollout.Held, Summary: "drop acme_zed: no user file declares zed"},
		},
		Users: users(),
	})
}

// dryRun: the function runs with DBUSERS_DRY_RUN.
func dryRun() *rollout.Record {
	r := run("publish")
	r.DryRun, r.ForcedDryRun = true, true
	return rollout.Merge(nil, rollout.Update{Version: version, Commit: commit, PullRequest: "42", Run: r,
		Clusters: []rollout.Cluster{
			{Name: "prod-orders", Status: rollout.Planned, DryRun: true, Changes: 2},
			{Name: "staging-main", Status: rollout.Unchanged, DryRun: true},
		},
		Accounts: []rollout.Account{{User: "hana", Account: "acme_hana", Cluster: "prod-orders", Event: rollout.Created, DryRun: true}},
		Users:    users(),
	})
}

func refused() *rollout.Record {
	r := run("publish")
	r.Clusters, r.SignedBy = 0, ""
	r.BundleError = "bundle is not trusted: version " + version + " is unsigned (it names no signing key), and unsigned bundles are not accepted"
	return rollout.Merge(nil, rollout.Update{Version: version, Run: r})
}

// hostile: names and errors that would be markup if pasted as they are.
func hostile() *rollout.Record {
	return rollout.Merge(nil, rollout.Update{Version: version, Commit: commit, Run: run("schedule"),
		Clusters: []rollout.Cluster{
			{Name: "local", Status: rollout.Partial, FailedAccountCount: 1, Server: "MariaDB <b>10</b> | x",
				FailedAccounts: []rollout.FailedAccount{{Account: "acme_`x`|<img src=x>", Summary: "drop **it** [now](https://evil.example)", Error: "@everyone <script>alert(1)</script> ```"}}},
			{Name: "prod-orders", Status: rollout.Failed, Stage: "connect", Error: "dial tcp: lookup <b>db</b>.example | @octocat [x](javascript:alert(1))\n## heading"},
		},
		Accounts: []rollout.Account{
			{Account: "acme_`x`|<img src=x>", Host: "%' OR '1", Cluster: "local", Event: rollout.Dropped},
			{Account: "acme_`x`|<img src=x>", Cluster: "local", Event: rollout.FailedEvent, Summary: "drop **it**", Error: "@everyone <script>"},
		},
	})
}

func TestGolden(t *testing.T) {
	superseded := applied()
	supCtx := ctxt
	supCtx.Asked = "20260301T085900Z-0123456789ab"
	supCtx.Found = &rollout.Found{Record: superseded, Version: version, SupersededBy: version}
	for name, tc := range map[string]struct {
		r *rollout.Record
		c Context
	}{
		"applied":    {applied(), ctxt},
		"problems":   {problems(), ctxt},
		"dry_run":    {dryRun(), ctxt},
		"refused":    {refused(), ctxt},
		"superseded": {superseded, supCtx},
		"no_repo":    {applied(), Context{}},
		"escaping":   {hostile(), ctxt},
	} {
		t.Run(name, func(t *testing.T) {
			got := Markdown(tc.r, tc.c)
			golden(t, name+".md", got)
			for i, body := range ghcomment.Pack(Sections(tc.r, tc.c), ghcomment.MaxBody) {
				if err := ghcommenttest.CheckRenders(body); err != nil {
					t.Errorf("part %d does not render on its own: %v", i+1, err)
				}
			}
			var text strings.Builder
			rollout.Text(&text, tc.r, tc.c.Found)
			golden(t, name+".txt", text.String())
		})
	}
}

func TestGoldenUnknown(t *testing.T) {
	err := fmt.Errorf("%w: no run of version %s finished within 10m0s (the pointer names it)", rollout.ErrTimeout, version)
	var b strings.Builder
	for _, s := range UnknownSections(version, err, ctxt) {
		b.WriteString(s.Head)
	}
	golden(t, "unknown.md", b.String())
}

// gfm renders GitHub-flavoured markdown as GitHub does before it
// sanitizes, raw HTML passed through, so that any HTML escaping let
// through shows.
var gfm = goldmark.New(goldmark.WithExtensions(extension.GFM), goldmark.WithRendererOptions(html.WithUnsafe()))

var codeElements = regexp.MustCompile(`(?s)<pre>.*?</pre>|<code>.*?</code>`)

// TestEscaping: nothing from a server or an account name becomes markup
// once GitHub renders the comment: no element, link, heading or mention
// outside code.
func TestEscaping(t *testing.T) {
	var b bytes.Buffer
	if err := gfm.Convert([]byte(Markdown(hostile(), ctxt)), &b); err != nil {
		t.Fatal(err)
	}
	rendered := b.String()
	for _, bad := range []string{"<script", "<img", "<b>", `href="https://evil.example`, `href="javascript:`, "<h2", "&lt;h2"} {
		if strings.Contains(rendered, bad) {
			t.Errorf("the rendered comment has %q:\n%s", bad, rendered)
		}
	}
	for _, outside := range codeElements.Split(rendered, -1) {
		if strings.Contains(outside, "@everyone") || strings.Contains(outside, "@octocat") {
			t.Errorf("a mention outside code: %s", outside)
		}
	}
	for _, want := range []string{"<table>", "<li>", `href="https://github.com/acme/dbaccess/actions/runs/4242"`} {
		if !strings.Contains(rendered, want) {
			t.Errorf("the rendered comment lacks %q", want)
		}
	}
}

// TestDryRunClaimsNothing: a dry run's comment and status say so, and say
// no account was created.
func TestDryRunClaimsNothing(t *testing.T) {
	r := dryRun()
	md := Markdown(r, ctxt)
	for _, want := range []string{"🧪 dbusers rollout: dry run, nothing was applied", "**Dry run: nothing was applied.**", "`DBUSERS_DRY_RUN`",
		"would be created on prod-orders", "not on prod-orders (dry run: nothing was applied)"} {
		if !strings.Contains(md, want) {
			t.Errorf("the dry run's comment lacks %q:\n%s", want, md)
		}
	}
	for _, never := range []string{" created on prod-orders", "now on prod-orders", "how to connect", "✅ dbusers"} {
		if strings.Contains(strings.ReplaceAll(md, "would be created on", ""), never) {
			t.Errorf("the dry run's comment claims %q:\n%s", never, md)
		}
	}
	if d := r.StatusDescription(); !strings.HasPrefix(d, "dry run: nothing was applied") || r.CommitState() != "success" {
		t.Errorf("status %s: %s", r.CommitState(), d)
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", name, diff)
	}
}

func client(t *testing.T, gh *ghcommenttest.Server) *github.Client {
	t.Helper()
	c, err := ghcomment.NewClient(&http.Client{Transport: &ghcomment.RetryTransport{Sleep: func(context.Context, time.Duration) error { return nil }}},
		ghcommenttest.Token, gh.URL)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var target = Target{Owner: ghcommenttest.Owner, Repo: ghcommenttest.Repo, Commit: commit, Comment: true, Status: true}

// TestPost: the pull request is found from the merge commit, the comment
// is posted once and edited in place after, and the status links to it.
func TestPost(t *testing.T) {
	gh := ghcommenttest.NewServer(t)
	c := client(t, gh)
	ctx := context.Background()
	if err := Pending(ctx, c, target, version, ctxt.RunURL); err != nil {
		t.Fatal(err)
	}
	posted, err := Post(ctx, c, target, applied(), ctxt, ctxt.RunURL)
	if err != nil {
		t.Fatal(err)
	}
	if posted.PR != ghcommenttest.PR || posted.Comment.Created != 1 || posted.CommentURL == "" {
		t.Fatalf("posted %+v", posted)
	}
	comments := gh.BotComments()
	if len(comments) != 1 || !strings.HasPrefix(comments[0].Body, "<!-- dbusers:rollout part 1/1 -->\n### ✅ dbusers rollout: applied on 4 of 4 cluster(s)") {
		t.Fatalf("comments %+v", comments)
	}
	want := []ghcommenttest.Status{
		{SHA: commit, State: "pending", Context: "dbusers/rollout", Description: "waiting for the Lambda's run of " + version, TargetURL: ctxt.RunURL},
		{SHA: commit, State: "success", Context: "dbusers/rollout", Description: "applied on 4 of 4 cluster(s)", TargetURL: posted.CommentURL},
	}
	if diff := cmp.Diff(want, gh.Statuses()); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	// A re-run edits the comment rather than adding one.
	if posted, err = Post(ctx, c, target, problems(), ctxt, ctxt.RunURL); err != nil || posted.Comment.Updated != 1 {
		t.Fatalf("second post: %+v %v", posted, err)
	}
	if n := len(gh.BotComments()); n != 1 {
		t.Errorf("%d comments after the second post", n)
	}
	last := gh.Statuses()[2]
	if last.State != "failure" || !strings.Contains(last.Description, "prod-orders (failed at assume-role)") {
		t.Errorf("status %+v", last)
	}
}

// TestPostWithoutPullRequest: a direct push has no pull request; the
// status is still set, and the note says why there is no comment.
func TestPostWithoutPullRequest(t *testing.T) {
	gh := ghcommenttest.NewServer(t)
	tg := target
	tg.Commit = strings.Repeat("ab", 20)
	r := applied()
	r.PullRequest = ""
	posted, err := Post(context.Background(), client(t, gh), tg, r, ctxt, ctxt.RunURL)
	if err != nil || posted.PR != 0 || len(posted.Notes) != 1 || !strings.Contains(posted.Notes[0], "no merged pull request") {
		t.Fatalf("posted %+v %v", posted, err)
	}
	if len(gh.BotComments()) != 0 || len(gh.Statuses()) != 1 || gh.Statuses()[0].TargetURL != ctxt.RunURL {
		t.Errorf("comments %v, statuses %v", gh.BotComments(), gh.Statuses())
	}
	// With the record's pull request, that one is commented on.
	posted, err = Post(context.Background(), client(t, gh), tg, applied(), ctxt, ctxt.RunURL)
	if err != nil || posted.PR != 42 || len(gh.BotComments()) != 1 {
		t.Fatalf("posted %+v %v", posted, err)
	}
}

// TestPostReadOnlyToken: a token that may not write says which
// permission is missing, for the comment and for the status.
func TestPostReadOnlyToken(t *testing.T) {
	gh := ghcommenttest.NewServer(t)
	gh.RefuseWrites()
	_, err := Post(context.Background(), client(t, gh), target, applied(), ctxt, ctxt.RunURL)
	if !errors.Is(err, ghcomment.ErrReadOnlyToken) || !strings.Contains(err.Error(), `"permissions: statuses: write"`) ||
		!strings.Contains(err.Error(), "pull-requests: write") {
		t.Errorf("error %v", err)
	}
}

// TestPostLargeRecord: 200 clusters and hundreds of accounts split into
// comments that each render on their own, the summary whole in the first.
func TestPostLargeRecord(t *testing.T) {
	u := rollout.Update{Version: version, Commit: commit, PullRequest: "42", Run: run("publish")}
	for i := range 200 {
		name := fmt.Sprintf("cluster-%03d", i)
		c := rollout.Cluster{Name: name, Status: rollout.Applied, Statements: 40, Created: 20, Server: "MySQL 8.0.39"}
		if i%4 == 0 {
			c = rollout.Cluster{Name: name, Status: rollout.Failed, Stage: "connect", Error: strings.Repeat("dial tcp 10.0.0.1:3306: i/o timeout; ", 25)}
		}
		u.Clusters = append(u.Clusters, c)
		for j := range 10 {
			u.Accounts = append(u.Accounts, rollout.Account{User: fmt.Sprintf("user%03d", j*20+i%20), Account: fmt.Sprintf("acme_user%03d", j*20+i%20), Cluster: name, Event: rollout.Created})
		}
	}
	for j := range 200 {
		u.Users = append(u.Users, rollout.User{Name: fmt.Sprintf("user%03d", j), Account: fmt.Sprintf("acme_user%03d", j), Auth: "iam"})
	}
	r := rollout.Merge(nil, u)
	gh := ghcommenttest.NewServer(t)
	posted, err := Post(context.Background(), client(t, gh), target, r, ctxt, ctxt.RunURL)
	if err != nil {
		t.Fatal(err)
	}
	comments := gh.BotComments()
	t.Logf("200 clusters, 200 users: %d comment(s)", len(comments))
	if len(comments) < 2 || posted.Comment.Created != len(comments) {
		t.Fatalf("%d comments, posted %+v", len(comments), posted)
	}
	for i, c := range comments {
		if err := ghcommenttest.CheckRenders(c.Body); err != nil {
			t.Errorf("comment %d: %v", i+1, err)
		}
	}
	if !strings.Contains(comments[0].Body, "#### Needs attention") || !strings.Contains(comments[0].Body, "**cluster-196**") {
		t.Error("the first comment does not carry the whole summary")
	}
}
