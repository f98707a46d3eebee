package ghcomment

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Defaults of RetryTransport.
const (
	DefaultAttempts  = 5
	DefaultBaseDelay = time.Second
	DefaultMaxDelay  = time.Minute
)

// RetryTransport is an http.RoundTripper that retries what GitHub asks to
// be retried: 500, 502, 503 and 504 responses, 429, and 403 responses that
// are rate limits (X-RateLimit-Remaining: 0, a Retry-After header, or a
// "secondary rate limit" message). It waits as long as GitHub says
// (Retry-After, X-RateLimit-Reset) and otherwise backs off exponentially
// with jitter. Network errors are retried for GET, PATCH and DELETE only,
// which are safe to repeat.
//
// A 5xx response to a POST is retried too: GitHub sometimes creates the
// comment and still answers 502. The duplicate that may result carries the
// same marker, and the next Upsert deletes it.
//
// When the attempts run out, or the server asks for a longer wait than
// MaxDelay, RoundTrip returns a *RetryError instead of the last response.
type RetryTransport struct {
	// Base sends the requests; nil means http.DefaultTransport.
	Base http.RoundTripper
	// Attempts bounds the tries of one request, the first included;
	// 0 means DefaultAttempts.
	Attempts int
	// BaseDelay is the first backoff, doubled for each further retry;
	// 0 means DefaultBaseDelay.
	BaseDelay time.Duration
	// MaxDelay bounds any one wait. A server that asks for more than this
	// ends the retries at once. 0 means DefaultMaxDelay.
	MaxDelay time.Duration
	// Sleep waits d or until ctx ends; nil means a timer. Tests replace it.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock for X-RateLimit-Reset; nil means time.Now.
	Now func() time.Time
}

// RetryError reports a request that was given up on.
type RetryError struct {
	Method   string
	URL      string // without the query string
	Attempts int    // how many times the request was sent
	Status   int    // the last response's status code, 0 after a network error
	Message  string // GitHub's message in the last response, if any
	Reason   string // why no further attempt was made
	Err      error  // the last network error, if any
}

func (e *RetryError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: gave up after %d attempt", e.Method, e.URL, e.Attempts)
	if e.Attempts != 1 {
		b.WriteString("s")
	}
	if e.Reason != "" {
		b.WriteString(" (" + e.Reason + ")")
	}
	switch {
	case e.Err != nil:
		fmt.Fprintf(&b, ": %v", e.Err)
	case e.Status != 0:
		fmt.Fprintf(&b, ": last response %d %s", e.Status, http.StatusText(e.Status))
		if e.Message != "" {
			b.WriteString(": " + e.Message)
		}
	}
	return b.String()
}

func (e *RetryError) Unwrap() error { return e.Err }

// RoundTrip implements http.RoundTripper.
func (t *RetryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	attempts := t.Attempts
	if attempts <= 0 {
		attempts = DefaultAttempts
	}
	maxDelay := t.MaxDelay
	if maxDelay <= 0 {
		maxDelay = DefaultMaxDelay
	}
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	for attempt := 1; ; attempt++ {
		r := req
		if attempt > 1 {
			r = req.Clone(req.Context())
			if req.Body != nil && req.Body != http.NoBody {
				body, err := req.GetBody()
				if err != nil {
					return nil, fmt.Errorf("%s %s: replay request body: %w", req.Method, redactURL(req), err)
				}
				r.Body = body
			}
		}
		resp, err := base.RoundTrip(r)
		wait, retry, msg := t.judge(req, resp, err, attempt)
		if !retry || !replayable {
			return resp, err
		}
		if err == nil && req.Context().Err() != nil {
			return resp, err
		}
		gaveUp := &RetryError{Method: req.Method, URL: redactURL(req), Attempts: attempt, Message: msg, Err: err}
		if resp != nil {
			gaveUp.Status = resp.StatusCode
			drain(resp)
		}
		switch {
		case attempt >= attempts:
			return nil, gaveUp
		case wait > maxDelay:
			gaveUp.Reason = fmt.Sprintf("github asks to wait %s, longer than the %s limit", wait.Round(time.Second), maxDelay)
			return nil, gaveUp
		}
		if err := t.sleep(req.Context(), wait); err != nil {
			return nil, err
		}
	}
}

// judge decides whether to retry, and after how long. A wait the server
// asked for is returned as is (the caller compares it with MaxDelay); a
// backoff of our own is capped at MaxDelay. msg is GitHub's message in an
// error response that judge had to read.
func (t *RetryTransport) judge(req *http.Request, resp *http.Response, err error, attempt int) (wait time.Duration, retry bool, msg string) {
	if err != nil {
		if req.Context().Err() != nil {
			return 0, false, ""
		}
		switch req.Method {
		case http.MethodGet, http.MethodHead, http.MethodPatch, http.MethodDelete, http.MethodPut:
			return t.backoff(attempt, 0), true, ""
		}
		return 0, false, ""
	}
	switch resp.StatusCode {
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		if d, ok := t.serverWait(resp); ok {
			return d, true, peekMessage(resp)
		}
		return t.backoff(attempt, 0), true, peekMessage(resp)
	case http.StatusTooManyRequests, http.StatusForbidden:
		msg := peekMessage(resp)
		if d, ok := t.serverWait(resp); ok {
			return d, true, msg
		}
		if resp.StatusCode == http.StatusTooManyRequests || resp.Header.Get("X-RateLimit-Remaining") == "0" ||
			strings.Contains(strings.ToLower(msg), "secondary rate limit") {
			// GitHub: without Retry-After, wait at least a minute.
			return t.backoff(attempt, time.Minute), true, msg
		}
	}
	return 0, false, ""
}

// serverWait is the wait that a rate-limited response asks for.
func (t *RetryTransport) serverWait(resp *http.Response) (time.Duration, bool) {
	now := time.Now
	if t.Now != nil {
		now = t.Now
	}
	if v := strings.TrimSpace(resp.Header.Get("Retry-After")); v != "" {
		if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
			return time.Duration(secs) * time.Second, true
		}
		if at, err := http.ParseTime(v); err == nil {
			return max(at.Sub(now()), 0), true
		}
	}
	if resp.Header.Get("X-RateLimit-Remaining") == "0" {
		if secs, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64); err == nil {
			// One second more: the reset time has a resolution of seconds.
			return max(time.Unix(secs, 0).Sub(now())+time.Second, 0), true
		}
		return 0, false
	}
	return 0, false
}

// backoff is BaseDelay·2^(attempt-1), at least floor, capped at MaxDelay,
// with "equal jitter": a random point in its upper half.
func (t *RetryTransport) backoff(attempt int, floor time.Duration) time.Duration {
	d := t.BaseDelay
	if d <= 0 {
		d = DefaultBaseDelay
	}
	maxDelay := t.MaxDelay
	if maxDelay <= 0 {
		maxDelay = DefaultMaxDelay
	}
	for i := 1; i < attempt && d < maxDelay; i++ {
		d *= 2
	}
	d = min(max(d, floor), maxDelay)
	half := d / 2
	return half + rand.N(half+1)
}

func (t *RetryTransport) sleep(ctx context.Context, d time.Duration) error {
	if t.Sleep != nil {
		return t.Sleep(ctx, d)
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// peekMessage reads GitHub's "message" from an error response and puts the
// body back for the caller.
func peekMessage(resp *http.Response) string {
	if resp.Body == nil {
		return ""
	}
	const limit = 64 << 10
	data, _ := io.ReadAll(io.LimitReader(resp.Body, limit))
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(data), resp.Body), resp.Body}
	var body struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(data, &body) != nil {
		return ""
	}
	return body.Message
}

func drain(resp *http.Response) {
	if resp.Body != nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		_ = resp.Body.Close()
	}
}

// redactURL is the request URL without its query string.
func redactURL(req *http.Request) string {
	u := *req.URL
	u.RawQuery = ""
	u.User = nil
	return u.String()
}
