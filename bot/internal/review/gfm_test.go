package review

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/renderer/html"

	"github.com/dbusers/dbusers/bot/internal/liveplan"
	"github.com/dbusers/dbusers/bot/internal/plan"
)

// gfm renders GitHub-flavoured Markdown as GitHub does before it
// sanitizes: tables, strikethrough, autolinks and task lists, and raw HTML
// passed through (GitHub keeps <details>, <summary>, <br>, <sub>, <b> and
// <code>), so that a test sees both what the comment's markup becomes and
// any HTML that escaping let through.
var gfm = goldmark.New(goldmark.WithExtensions(extension.GFM), goldmark.WithRendererOptions(html.WithUnsafe()))

func renderGFM(t testing.TB, md string) string {
	t.Helper()
	var b bytes.Buffer
	if err := gfm.Convert([]byte(md), &b); err != nil {
		t.Fatalf("render markdown: %v", err)
	}
	return b.String()
}

var codeElements = regexp.MustCompile(`(?s)<pre>.*?</pre>|<code>.*?</code>`)

// textOutsideCode returns the rendered HTML of md cut at every code span
// and block: where GitHub turns @names into mentions and #numbers into
// links.
func textOutsideCode(t testing.TB, md string) []string {
	t.Helper()
	return codeElements.Split(renderGFM(t, md), -1)
}

// TestCommentAsGitHubShowsIt renders a full comment (a pull request that
// does a bit of everything, with a live plan and the run's context) the
// way GitHub does, and checks what a reviewer sees, in order: the
// headline, who gets what and what merging does, the risks, then the
// configuration changes and the count tables, the live plan, the users,
// and a footer with the head commit and a link to the run; tables and
// <details> blocks render as such.
func TestCommentAsGitHubShowsIt(t *testing.T) {
	base := fleet()
	head := clone(t, base)
	mixed(t, head)
	head.Settings.ProtectedAccounts = nil // one configuration change
	r := compare(t, base, head)
	r.Context = runContext
	r.Live = &liveplan.Report{ReadAt: readAt, Clusters: []liveplan.Cluster{
		prodOrders(append(newFrank(t), drift(change(t, "mysql-8.0", "ghost", "drop acme_ghost: no user file declares ghost", plan.Drop{})))...),
		bigLive(30).Clusters[0],
	}}
	html := renderGFM(t, r.Markdown())

	// In order, each after the one before.
	order := []struct{ what, html string }{
		{"the headline", "<h3>dbusers plan: 🔴 3 high risks · 5 users change</h3>"},
		{"the revisions compared, with the head commit", "→ <code>working tree</code> at <code>4bbf7e2fa288</code>"},
		{"who gets what", "<p><strong>Who:</strong> <code>+frank −erin ~alice ~bob ~orders_api</code></p>"},
		{"what merging does", "<p><strong>Merging</strong> runs 33 statements on prod-orders, staging-main"},
		{"the risks", "<h4>Needs a careful review</h4>\n<ul>\n<li>🔴 expiry removed for bob"},
		{"the configuration changes", "<h4>Configuration changes</h4>"},
		{"the count tables", "<h4>Counts</h4>\n<table>"},
		{"the second count table", "<th>environment</th>"},
		{"the live plan", "<h4>Live plan</h4>"},
		{"a drift change, marked", "<li>⚠️ <strong>drift:</strong> drop acme_ghost"},
		{"a large cluster's statements folded, as SQL", "<details><summary>30 statements"},
		{"the SQL block, drift marked", `<pre><code class="language-sql">-- DRIFT, already differs from the merged configuration: merging repairs it: grant read on orders to acme_service_account_00000`},
		{"the users", "<h4>Changes per user (5)</h4>"},
		{"a user's table inside its details", "<details open><summary><b>alice</b> <code>acme_alice</code> (human, alice@acme.example): changed, 3 change(s)</summary>\n<table>"},
		{"a removed user in one line", "<p>➖ <strong>erin</strong> (human, <a href=\"mailto:erin@acme.example\">erin@acme.example</a>): drop <code>acme_erin</code> on staging-main</p>"},
		{"the footer with the head commit", "<sub>dbusers · head " + headSHA + " · made 2026-03-01 09:00 UTC"},
		{"the run's link", `<a href="https://github.com/acme/dbaccess/actions/runs/4242">workflow run</a></sub>`},
	}
	pos := 0
	for _, o := range order {
		i := strings.Index(html[pos:], o.html)
		if i < 0 {
			if strings.Contains(html, o.html) {
				t.Errorf("%s comes too early: %q", o.what, o.html)
			} else {
				t.Errorf("%s is missing: %q", o.what, o.html)
			}
			continue
		}
		pos += i + len(o.html)
	}
	// Every table of the markdown is a table on GitHub, and nothing
	// meant as markup shows as text.
	if got, want := strings.Count(html, "<table>"), strings.Count(r.Markdown(), "\n|---|"); got != want {
		t.Errorf("%d tables rendered, the markdown has %d", got, want)
	}
	for _, raw := range []string{"| ---", "|---|", "```", "**", "&lt;details", "&lt;br"} {
		if strings.Contains(html, raw) {
			t.Errorf("rendered HTML shows markup as text: %q", raw)
		}
	}
	if t.Failed() {
		t.Logf("rendered:\n%s", html)
	}
}

// TestInvalidAsGitHubShowsIt: the invalid-declarations comment renders
// its table, errors first, then the changed files' warnings.
func TestInvalidAsGitHubShowsIt(t *testing.T) {
	html := renderGFM(t, InvalidMarkdown(invalidDiags(), []string{"users/carol.json"}, runContext))
	for _, want := range []string{"<table>", "workflow run</a>", "1 warning(s) in files this pull request does not change are not shown."} {
		if !strings.Contains(html, want) {
			t.Errorf("rendered invalid comment lacks %q:\n%s", want, html)
		}
	}
	if i, j := strings.Index(html, "❌ syntax error"), strings.Index(html, "⚠️ access expired"); i < 0 || j < 0 || i > j {
		t.Errorf("errors do not come before warnings:\n%s", html)
	}
}
