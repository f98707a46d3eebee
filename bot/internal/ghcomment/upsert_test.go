package ghcomment

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dbusers/dbusers/bot/internal/ghcomment/ghcommenttest"
)

var target = Target{Owner: ghcommenttest.Owner, Repo: ghcommenttest.Repo, PR: ghcommenttest.PR}

// bodies of the bot's comments with key, in part order.
func botParts(f *fakeGitHub, key string) map[int]ghcommenttest.Comment {
	parts := map[int]ghcommenttest.Comment{}
	for _, c := range f.Comments() {
		if k, part, ok := parseMarker(c.Body); ok && k == key {
			if _, dup := parts[part]; dup {
				f.t.Errorf("two comments claim part %d of %q", part, key)
			}
			parts[part] = c
		}
	}
	return parts
}

func upsert(t *testing.T, f *fakeGitHub, key string, bodies ...string) Result {
	t.Helper()
	c, _ := f.client(t, nil)
	res, err := Upsert(context.Background(), c, target, key, bodies)
	if err != nil {
		t.Fatalf("Upsert: %v", err)
	}
	return res
}

func TestUpsertCreatesThenEditsInPlace(t *testing.T) {
	f := newFakeGitHub(t)

	res := upsert(t, f, "", "### Plan\n\n1 user gains access.\n")
	if want := (Result{Created: 1, URL: res.URL}); res != want || !strings.Contains(res.URL, "#issuecomment-") {
		t.Errorf("first run: %+v", res)
	}
	if got := f.Take().Methods(); got != "GET POST" {
		t.Errorf("first run requests: %s", got)
	}
	all := f.Comments()
	if len(all) != 1 || all[0].Body != "<!-- dbusers:plan part 1/1 -->\n### Plan\n\n1 user gains access.\n" {
		t.Fatalf("after first run: %+v", all)
	}
	id := all[0].ID

	res = upsert(t, f, "", "### Plan\n\n2 users gain access.\n")
	if res.Updated != 1 || res.Created != 0 || res.Deleted != 0 {
		t.Errorf("second run: %+v", res)
	}
	reqs := f.Take()
	if got := reqs.Methods(); got != "GET PATCH" {
		t.Errorf("second run requests: %s", got)
	}
	if want := fmt.Sprintf("/repos/%s/%s/issues/comments/%d", ghcommenttest.Owner, ghcommenttest.Repo, id); reqs[1].Path != want {
		t.Errorf("PATCH %s, want %s", reqs[1].Path, want)
	}
	all = f.Comments()
	if len(all) != 1 || all[0].ID != id || !strings.Contains(all[0].Body, "2 users") {
		t.Fatalf("after second run: %+v", all)
	}

	res = upsert(t, f, "", "### Plan\n\n2 users gain access.\n")
	if want := (Result{Unchanged: 1, URL: res.URL}); res != want {
		t.Errorf("third run: %+v", res)
	}
	if got := f.Take().Methods(); got != "GET" {
		t.Errorf("an identical plan sent %s, want only GET", got)
	}
}

func TestUpsertCRLFBodyIsUnchanged(t *testing.T) {
	f := newFakeGitHub(t)
	f.Seed(ghcommenttest.BotLogin, "<!-- dbusers:plan part 1/1 -->\r\nline one\r\nline two\r\n")
	res := upsert(t, f, "", "line one\nline two\n")
	if res.Unchanged != 1 {
		t.Errorf("%+v", res)
	}
	if got := f.Take().Methods(); got != "GET" {
		t.Errorf("requests: %s", got)
	}
}

func TestUpsertFindsItsCommentOnALaterPage(t *testing.T) {
	for _, tc := range []struct {
		before, after int
		pages         []string
	}{
		{before: 150, after: 60, pages: []string{"1", "2", "3"}}, // ours is on page 2
		{before: 230, after: 0, pages: []string{"1", "2", "3"}},  // ours is last, on page 3
	} {
		t.Run(strconv.Itoa(tc.before), func(t *testing.T) {
			f := newFakeGitHub(t)
			for i := range tc.before {
				f.Seed("alice", fmt.Sprintf("comment %d: please look at the dbusers plan", i))
			}
			id := f.Seed(ghcommenttest.BotLogin, Marker("plan", 1, 1)+"\nold plan").ID
			for i := range tc.after {
				f.Seed("bob", fmt.Sprintf("later comment %d", i))
			}
			res := upsert(t, f, "", "new plan")
			if res.Updated != 1 || res.Created != 0 {
				t.Errorf("%+v", res)
			}
			reqs := f.Take()
			var pages []string
			for _, r := range reqs {
				if r.Method == http.MethodGet {
					if r.Query.Get("per_page") != "100" {
						t.Errorf("GET %s?%s: per_page is not 100", r.Path, r.Query.Encode())
					}
					pages = append(pages, r.Query.Get("page"))
				}
			}
			if diff := cmp.Diff(tc.pages, pages); diff != "" {
				t.Errorf("pages read (-want +got):\n%s", diff)
			}
			last := reqs[len(reqs)-1]
			if last.Method != http.MethodPatch || !strings.HasSuffix(last.Path, "/"+strconv.FormatInt(id, 10)) {
				t.Errorf("last request %s %s, want PATCH of comment %d", last.Method, last.Path, id)
			}
			if n := len(f.Comments()); n != tc.before+tc.after+1 {
				t.Errorf("%d comments, want %d", n, tc.before+tc.after+1)
			}
		})
	}
}

func TestUpsertSplitsThenShrinks(t *testing.T) {
	f := newFakeGitHub(t)
	sections := bigPlan(30, 5000)
	bodies := Pack(sections, MaxBody)
	if len(bodies) < 3 {
		t.Fatalf("Pack gave %d bodies, want at least 3", len(bodies))
	}
	res := upsert(t, f, "", bodies...)
	if res.Created != len(bodies) {
		t.Errorf("%+v", res)
	}
	parts := botParts(f, "plan")
	if len(parts) != len(bodies) {
		t.Fatalf("%d parts posted, want %d", len(parts), len(bodies))
	}
	for i := 1; i <= len(bodies); i++ {
		body := parts[i].Body
		head := Marker("plan", i, len(bodies)) + "\n" + fmt.Sprintf("**Part %d of %d**\n\n", i, len(bodies))
		if !strings.HasPrefix(body, head) {
			t.Errorf("part %d starts %q", i, body[:min(len(body), 80)])
		}
		if i > 1 && parts[i].ID < parts[i-1].ID {
			t.Errorf("part %d was created before part %d", i, i-1)
		}
	}
	if !strings.Contains(parts[1].Body, sections[0].text()) {
		t.Error("the summary is not whole in part 1")
	}
	if !strings.HasSuffix(res.URL, fmt.Sprintf("#issuecomment-%d", parts[1].ID)) {
		t.Errorf("URL %s is not part 1's", res.URL)
	}
	f.Take()

	// The plan shrinks to one comment: part 1 is edited, the rest deleted.
	res = upsert(t, f, "", Pack(bigPlan(2, 500), MaxBody)...)
	if want := (Result{Updated: 1, Deleted: len(bodies) - 1, URL: res.URL}); res != want {
		t.Errorf("shrink: %+v, want %+v", res, want)
	}
	reqs := f.Take()
	if reqs[1].Method != http.MethodPatch {
		t.Errorf("the edit did not come before the deletions: %s", reqs.Methods())
	}
	parts = botParts(f, "plan")
	if len(parts) != 1 || !strings.HasPrefix(parts[1].Body, Marker("plan", 1, 1)+"\n### dbusers plan") {
		t.Errorf("after shrinking: %d parts, part 1 %q", len(parts), parts[1].Body[:min(80, len(parts[1].Body))])
	}
	if n := len(f.Comments()); n != 1 {
		t.Errorf("%d comments left, want 1", n)
	}
}

func TestUpsertKeysKeepSeparateComments(t *testing.T) {
	f := newFakeGitHub(t)
	upsert(t, f, "plan", "the plan")
	upsert(t, f, "other", "the other report")
	f.Take()
	res := upsert(t, f, "other", "the other report, changed")
	if res.Updated != 1 {
		t.Errorf("%+v", res)
	}
	plan, other := botParts(f, "plan"), botParts(f, "other")
	if len(plan) != 1 || len(other) != 1 {
		t.Fatalf("plan %v, other %v", plan, other)
	}
	if plan[1].Body != Marker("plan", 1, 1)+"\nthe plan" || other[1].Body != Marker("other", 1, 1)+"\nthe other report, changed" {
		t.Errorf("plan %q, other %q", plan[1].Body, other[1].Body)
	}
	reqs := f.Take()
	if p := reqs[len(reqs)-1]; p.Method != http.MethodPatch || !strings.HasSuffix(p.Path, strconv.FormatInt(other[1].ID, 10)) {
		t.Errorf("edited %s %s, want comment %d", p.Method, p.Path, other[1].ID)
	}
	// No bodies removes the comment named key and nothing else.
	res = upsert(t, f, "other")
	if res.Deleted != 1 || res.URL != "" {
		t.Errorf("%+v", res)
	}
	if len(botParts(f, "other")) != 0 || len(botParts(f, "plan")) != 1 {
		t.Error("deleting 'other' touched 'plan'")
	}
}

// A person who posts the bot's exact marker does not get a plan of theirs
// taken for the bot's: the bot posts its own comment and leaves theirs.
func TestUpsertIgnoresMarkersPostedByPeople(t *testing.T) {
	f := newFakeGitHub(t)
	forged := f.Seed("mallory", Marker("plan", 1, 1)+"\n### Plan\n\nNothing to do.\n")
	forgedPart2 := f.Seed("mallory", Marker("plan", 2, 2)+"\nmore")
	res := upsert(t, f, "", "### Plan\n\n1 user gains trusted_admin.\n")
	if res.Created != 1 || res.Updated != 0 || res.Deleted != 0 {
		t.Errorf("result %+v; want one comment created and nobody else's edited or deleted", res)
	}
	for _, c := range f.Comments() {
		switch c.ID {
		case forged.ID, forgedPart2.ID:
			if want := map[int64]string{forged.ID: forged.Body, forgedPart2.ID: forgedPart2.Body}[c.ID]; c.Body != want || c.Updated != c.Created {
				t.Errorf("mallory's comment %d was changed: %+v", c.ID, c)
			}
		default:
			if c.Login != ghcommenttest.BotLogin || !strings.Contains(c.Body, "trusted_admin") {
				t.Errorf("unexpected comment %+v", c)
			}
		}
	}
	if n := len(f.Comments()); n != 3 {
		t.Errorf("%d comments, want mallory's 2 and the bot's 1", n)
	}
}

// With a personal access token the bot's comments are a person's: Author
// names whose they are, and then only that login's are taken.
func TestUpsertWithAuthorTakesThatLoginsComments(t *testing.T) {
	f := newFakeGitHub(t)
	own := f.Seed("Platform-Bot", Marker("plan", 1, 1)+"\nold plan")
	other := f.Seed("mallory", Marker("plan", 1, 1)+"\nforged plan")
	botPosted := f.Seed(ghcommenttest.BotLogin, Marker("plan", 1, 1)+"\nfrom the Actions token")
	c, _ := f.client(t, nil)
	as := target
	as.Author = "platform-bot" // logins compare case-insensitively, as on GitHub
	res, err := Upsert(context.Background(), c, as, "", []string{"new plan"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Updated != 1 || res.Created != 0 || res.Deleted != 0 {
		t.Errorf("result %+v; want platform-bot's comment edited, nothing else", res)
	}
	for _, c := range f.Comments() {
		want := map[int64]string{
			own.ID:       Marker("plan", 1, 1) + "\nnew plan",
			other.ID:     Marker("plan", 1, 1) + "\nforged plan",
			botPosted.ID: Marker("plan", 1, 1) + "\nfrom the Actions token",
		}[c.ID]
		if c.Body != want {
			t.Errorf("comment %d by %s: %q, want %q", c.ID, c.Login, c.Body, want)
		}
	}
}

func TestUpsertNeverTouchesOtherComments(t *testing.T) {
	f := newFakeGitHub(t)
	others := map[int64]string{}
	for _, body := range []string{
		"dbusers plan: looks good to me",
		"> <!-- dbusers:plan part 1/1 -->\n> quoted from the bot",
		"As the bot said: <!-- dbusers:plan part 1/1 -->",
		"<!-- dbusers:planner part 1/1 -->\nanother key",
		"<!-- dbusers-plan part=1 -->\nan older marker format",
		"<!-- dbusers:plan part 0/1 -->\nno part zero",
	} {
		others[f.Seed("alice", body).ID] = body
	}
	upsert(t, f, "", "plan v1")
	upsert(t, f, "", "plan v2", "part two")
	upsert(t, f, "", "plan v3")
	for _, r := range f.Take() {
		for id := range others {
			if strings.HasSuffix(r.Path, "/comments/"+strconv.FormatInt(id, 10)) {
				t.Errorf("%s %s touched someone else's comment", r.Method, r.Path)
			}
		}
	}
	for _, c := range f.Comments() {
		if body, ok := others[c.ID]; ok && c.Body != body {
			t.Errorf("comment %d changed to %q", c.ID, c.Body)
		}
		delete(others, c.ID)
	}
	if len(others) != 0 {
		t.Errorf("comments deleted: %v", others)
	}
}

func TestUpsertRemovesDuplicateParts(t *testing.T) {
	f := newFakeGitHub(t)
	older := f.Seed(ghcommenttest.BotLogin, Marker("plan", 1, 2)+"\n**Part 1 of 2**\n\nfrom run A").ID
	newest := f.Seed(ghcommenttest.BotLogin, Marker("plan", 1, 2)+"\n**Part 1 of 2**\n\nfrom run B").ID
	stale := f.Seed(ghcommenttest.BotLogin, Marker("plan", 2, 2)+"\n**Part 2 of 2**\n\nrest").ID
	res := upsert(t, f, "", "now it fits")
	if want := (Result{Updated: 1, Deleted: 2, URL: res.URL}); res != want {
		t.Errorf("%+v, want %+v", res, want)
	}
	all := f.Comments()
	if len(all) != 1 || all[0].ID != newest {
		t.Errorf("kept %+v, want only comment %d (older %d, stale %d)", all, newest, older, stale)
	}
}

func TestUpsertRecreatesACommentDeletedMeanwhile(t *testing.T) {
	f := newFakeGitHub(t)
	f.Seed(ghcommenttest.BotLogin, Marker("plan", 1, 1)+"\nold")
	f.failNext(http.MethodPatch, 1, http.StatusNotFound, nil, "404.json")
	res := upsert(t, f, "", "new")
	if res.Created != 1 || res.Updated != 0 {
		t.Errorf("%+v", res)
	}
	if got := f.Take().Methods(); got != "GET PATCH POST" {
		t.Errorf("requests %s", got)
	}
}

func TestUpsertRetries(t *testing.T) {
	now := time.Date(2024, 3, 5, 12, 0, 0, 0, time.UTC)
	h := func(kv ...string) http.Header {
		hd := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			hd.Set(kv[i], kv[i+1])
		}
		return hd
	}
	for _, tc := range []struct {
		name     string
		seed     bool // a part to edit exists
		method   string
		status   int
		header   http.Header
		body     string
		minWait  time.Duration
		maxWait  time.Duration
		requests string
	}{
		{"502 on list", false, "GET", 502, nil, "502.json", 500 * time.Millisecond, time.Second, "GET GET POST"},
		{"503 on edit replays the body", true, "PATCH", 503, nil, "502.json", 500 * time.Millisecond, time.Second, "GET PATCH PATCH"},
		{"429 with Retry-After on create replays the body", false, "POST", 429, h("Retry-After", "7"), "403_secondary_rate_limit.json", 7 * time.Second, 7 * time.Second, "GET POST POST"},
		{"403 primary rate limit waits for the reset", true, "PATCH", 403,
			h("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", strconv.FormatInt(now.Add(30*time.Second).Unix(), 10)),
			"403_rate_limit.json", 31 * time.Second, 31 * time.Second, "GET PATCH PATCH"},
		{"403 secondary rate limit with Retry-After", false, "GET", 403, h("Retry-After", "3"), "403_secondary_rate_limit.json", 3 * time.Second, 3 * time.Second, "GET GET POST"},
		{"403 secondary rate limit without Retry-After waits a minute", false, "POST", 403, nil, "403_secondary_rate_limit.json", 30 * time.Second, time.Minute, "GET POST POST"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeGitHub(t)
			if tc.seed {
				f.Seed(ghcommenttest.BotLogin, Marker("plan", 1, 1)+"\nold")
			}
			f.failNext(tc.method, 1, tc.status, tc.header, tc.body)
			c, waits := f.client(t, func() time.Time { return now })
			if _, err := Upsert(context.Background(), c, target, "", []string{"the plan"}); err != nil {
				t.Fatal(err)
			}
			reqs := f.Take()
			if got := reqs.Methods(); got != tc.requests {
				t.Errorf("requests %s, want %s", got, tc.requests)
			}
			if len(*waits) != 1 || (*waits)[0] < tc.minWait || (*waits)[0] > tc.maxWait {
				t.Errorf("waits %v, want one in [%s, %s]", *waits, tc.minWait, tc.maxWait)
			}
			var sent []string
			for _, r := range reqs {
				if r.Method == tc.method {
					sent = append(sent, r.Body)
				}
			}
			if len(sent) != 2 || sent[0] != sent[1] {
				t.Errorf("the retried request's body differs from the first: %q", sent)
			}
			if parts := botParts(f, "plan"); parts[1].Body != Marker("plan", 1, 1)+"\nthe plan" {
				t.Errorf("posted %q", parts[1].Body)
			}
		})
	}
}

func TestUpsertGivesUp(t *testing.T) {
	t.Run("after five attempts", func(t *testing.T) {
		f := newFakeGitHub(t)
		f.failNext(http.MethodGet, 5, http.StatusBadGateway, nil, "502.json")
		c, waits := f.client(t, nil)
		_, err := Upsert(context.Background(), c, target, "", []string{"the plan"})
		var re *RetryError
		if !errors.As(err, &re) || re.Attempts != 5 || re.Status != 502 {
			t.Fatalf("err %v, want a RetryError after 5 attempts", err)
		}
		for _, want := range []string{"pull request acme/dbaccess#42: list comments", "gave up after 5 attempts", "502 Bad Gateway", "Server Error"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
		if got := f.Take().Methods(); got != "GET GET GET GET GET" {
			t.Errorf("requests %s", got)
		}
		if len(*waits) != 4 {
			t.Fatalf("waits %v, want 4", *waits)
		}
		for i, w := range *waits {
			full := DefaultBaseDelay << i
			if w < full/2 || w > full {
				t.Errorf("wait %d is %s, want in [%s, %s]", i+1, w, full/2, full)
			}
		}
	})
	t.Run("when asked to wait too long", func(t *testing.T) {
		f := newFakeGitHub(t)
		f.failNext(http.MethodPost, 1, http.StatusForbidden, http.Header{"Retry-After": {"3600"}}, "403_secondary_rate_limit.json")
		c, waits := f.client(t, nil)
		_, err := Upsert(context.Background(), c, target, "", []string{"the plan"})
		if err == nil || !strings.Contains(err.Error(), "gave up after 1 attempt (github asks to wait 1h0m0s, longer than the 1m0s limit)") {
			t.Errorf("err %v", err)
		}
		if len(*waits) != 0 {
			t.Errorf("waited %v", *waits)
		}
	})
}

func TestUpsertExplainsRefusals(t *testing.T) {
	for _, tc := range []struct {
		name      string
		method    string
		status    int
		bodyFile  string
		target    Target
		readOnly  bool
		want      []string
		requested string
	}{
		{"fork's read-only token", "POST", 403, "403_integration.json", target, true, []string{
			"pull request acme/dbaccess#42: create part 1: github refused to write the comment (403 Resource not accessible by integration): the token is read-only — pull requests from forks get a read-only GITHUB_TOKEN; run the comment step from a workflow_run or pull_request_target workflow, or grant \"permissions: pull-requests: write\"",
		}, "GET POST"},
		{"no read permission", "GET", 403, "403_integration.json", target, true, []string{"github refused to read the comments (403 Resource not accessible by integration)"}, "GET"},
		{"locked conversation", "POST", 403, "403_locked.json", target, false, []string{"the pull request's conversation is locked"}, "GET POST"},
		{"bad token", "GET", 401, "401.json", target, false, []string{"github rejected the token (401 Bad credentials)"}, "GET"},
		{"wrong pull request", "", 0, "", Target{Owner: ghcommenttest.Owner, Repo: ghcommenttest.Repo, PR: 4242}, false, []string{
			"pull request acme/dbaccess#4242: list comments: github answered 404 Not Found: the repository or pull request number is wrong, or the token cannot see it",
		}, "GET"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeGitHub(t)
			if tc.method != "" {
				f.failNext(tc.method, 1, tc.status, nil, tc.bodyFile)
			}
			c, waits := f.client(t, nil)
			_, err := Upsert(context.Background(), c, tc.target, "", []string{"the plan"})
			if err == nil {
				t.Fatal("no error")
			}
			if errors.Is(err, ErrReadOnlyToken) != tc.readOnly {
				t.Errorf("errors.Is(err, ErrReadOnlyToken) = %v: %v", !tc.readOnly, err)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q\ndoes not say %q", err, want)
				}
			}
			if got := f.Take().Methods(); got != tc.requested {
				t.Errorf("requests %s, want %s (no retry)", got, tc.requested)
			}
			if len(*waits) != 0 {
				t.Errorf("waited %v", *waits)
			}
		})
	}
}

func TestUpsertRejectsBadInput(t *testing.T) {
	f := newFakeGitHub(t)
	c, _ := f.client(t, nil)
	for _, tc := range []struct {
		name   string
		target Target
		key    string
		bodies []string
		want   string
	}{
		{"key with a space", target, "my plan", []string{"x"}, `comment key "my plan"`},
		{"key closing the comment", target, "a-->", []string{"x"}, `comment key "a-->"`},
		{"no number", Target{Owner: "acme", Repo: "dbaccess"}, "", []string{"x"}, "positive number"},
		{"body too long", target, "", []string{strings.Repeat("x", GitHubMaxBody)}, "part 1 of 1 has 65567 characters, more than GitHub's 65536 (use Pack)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Upsert(context.Background(), c, tc.target, tc.key, tc.bodies)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want %q", err, tc.want)
			}
		})
	}
	if got := f.Take().Methods(); got != "" {
		t.Errorf("bad input sent requests: %s", got)
	}
}

func TestMarkerRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		key  string
		i, n int
	}{{"plan", 1, 1}, {"other", 3, 12}, {"a.b_c-9", 9999, 9999}} {
		key, part, ok := parseMarker(frame(tc.key, tc.i, tc.n, "body"))
		if !ok || key != tc.key || part != tc.i {
			t.Errorf("parseMarker(frame(%q, %d, %d)) = %q, %d, %v", tc.key, tc.i, tc.n, key, part, ok)
		}
	}
	// The frame fits in what MaxBody leaves of GitHub's limit.
	if n := len(frame(strings.Repeat("k", 64), 9999, 9999, "")); n > GitHubMaxBody-MaxBody {
		t.Errorf("the longest frame takes %d bytes, more than the %d that MaxBody leaves", n, GitHubMaxBody-MaxBody)
	}
}

// After a response that used up the rate limit, go-github refuses further
// requests itself until the reset; Upsert says so.
func TestUpsertExplainsAnExhaustedRateLimit(t *testing.T) {
	f := newFakeGitHub(t)
	reset := time.Now().Add(40 * time.Minute).Truncate(time.Second)
	f.failNext(http.MethodGet, 1, http.StatusOK, http.Header{
		"X-Ratelimit-Remaining": {"0"},
		"X-Ratelimit-Reset":     {strconv.FormatInt(reset.Unix(), 10)},
	}, "empty_list.json")
	c, _ := f.client(t, nil)
	_, err := Upsert(context.Background(), c, target, "", []string{"the plan"})
	want := "pull request acme/dbaccess#42: create part 1: github API rate limit of 1000 requests exhausted until " + reset.UTC().Format(time.RFC3339) + ": try again later"
	if err == nil || err.Error() != want {
		t.Errorf("err %v\nwant %s", err, want)
	}
	if got := f.Take().Methods(); got != "GET" {
		t.Errorf("requests %s, want only the GET that used up the limit", got)
	}
}
