package ghcomment

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// scriptedTransport answers requests from a list of responses (or errors)
// and records the bodies it was sent.
type scriptedTransport struct {
	answers []func() (*http.Response, error)
	bodies  []string
}

func (s *scriptedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	body := ""
	if req.Body != nil {
		b, _ := io.ReadAll(req.Body)
		body = string(b)
	}
	s.bodies = append(s.bodies, body)
	if len(s.answers) == 0 {
		return nil, errors.New("no more answers")
	}
	a := s.answers[0]
	s.answers = s.answers[1:]
	return a()
}

func status(code int, header ...string) func() (*http.Response, error) {
	return func() (*http.Response, error) {
		h := http.Header{}
		for i := 0; i < len(header); i += 2 {
			h.Set(header[i], header[i+1])
		}
		return &http.Response{StatusCode: code, Header: h, Body: io.NopCloser(strings.NewReader(`{"message":"m"}`))}, nil
	}
}

func netErr() (*http.Response, error) { return nil, syscall.ECONNRESET }

func TestRetryTransport(t *testing.T) {
	now := time.Date(2024, 3, 5, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		method  string
		body    io.Reader // nil: no body; replayable when built by http.NewRequest
		answers []func() (*http.Response, error)
		sends   int
		status  int    // final status, 0 for an error
		err     string // part of the error
		waits   []time.Duration
	}{
		{name: "network error on GET is retried", method: "GET", answers: []func() (*http.Response, error){netErr, status(200)},
			sends: 2, status: 200},
		{name: "network error on POST is not", method: "POST", body: strings.NewReader("x"), answers: []func() (*http.Response, error){netErr},
			sends: 1, err: "connection reset"},
		{name: "Retry-After as a date", method: "GET", answers: []func() (*http.Response, error){
			status(503, "Retry-After", now.Add(10*time.Second).Format(http.TimeFormat)), status(200)},
			sends: 2, status: 200, waits: []time.Duration{10 * time.Second}},
		{name: "rate limit reset already passed", method: "GET", answers: []func() (*http.Response, error){
			status(403, "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "1000"), status(200)},
			sends: 2, status: 200, waits: []time.Duration{0}},
		{name: "403 that is no rate limit is returned", method: "POST", body: strings.NewReader("x"), answers: []func() (*http.Response, error){status(403)},
			sends: 1, status: 403},
		{name: "404 is returned", method: "GET", answers: []func() (*http.Response, error){status(404)}, sends: 1, status: 404},
		{name: "501 is not retried", method: "GET", answers: []func() (*http.Response, error){status(501)}, sends: 1, status: 501},
		{name: "a body that cannot be replayed is not retried", method: "POST", body: io.MultiReader(strings.NewReader("x")),
			answers: []func() (*http.Response, error){status(502)}, sends: 1, status: 502},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &scriptedTransport{answers: tc.answers}
			var waits []time.Duration
			rt := &RetryTransport{Base: st, Now: func() time.Time { return now },
				Sleep: func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }}
			req, err := http.NewRequest(tc.method, "https://api.github.com/repos/a/b/issues/1/comments?page=2", tc.body)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := rt.RoundTrip(req)
			if len(st.bodies) != tc.sends {
				t.Errorf("sent %d times, want %d", len(st.bodies), tc.sends)
			}
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if b, _ := io.ReadAll(resp.Body); string(b) != `{"message":"m"}` {
				t.Errorf("the caller got body %q", b)
			}
			if tc.waits != nil && len(waits) > 0 && waits[0] != tc.waits[0] {
				t.Errorf("waits %v, want %v", waits, tc.waits)
			}
			for i := 1; i < len(st.bodies); i++ {
				if st.bodies[i] != st.bodies[0] {
					t.Errorf("attempt %d sent %q, the first %q", i+1, st.bodies[i], st.bodies[0])
				}
			}
		})
	}
}

func TestRetryTransportStopsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	st := &scriptedTransport{answers: []func() (*http.Response, error){status(502), status(200)}}
	rt := &RetryTransport{Base: st, BaseDelay: time.Hour, MaxDelay: 2 * time.Hour}
	req, _ := http.NewRequestWithContext(ctx, "GET", "https://api.github.com/x", nil)
	time.AfterFunc(10*time.Millisecond, cancel)
	start := time.Now()
	_, err := rt.RoundTrip(req)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s to notice the cancellation", d)
	}
}

func TestRetryErrorMessage(t *testing.T) {
	st := &scriptedTransport{answers: []func() (*http.Response, error){netErr, netErr}}
	rt := &RetryTransport{Base: st, Attempts: 2, Sleep: func(context.Context, time.Duration) error { return nil }}
	req, _ := http.NewRequest("DELETE", "https://api.github.com/repos/a/b/issues/comments/7?token=secret", nil)
	_, err := rt.RoundTrip(req)
	want := "DELETE https://api.github.com/repos/a/b/issues/comments/7: gave up after 2 attempts: connection reset by peer"
	if err == nil || err.Error() != want {
		t.Errorf("err %v\nwant %s", err, want)
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Error("the RetryError does not wrap the network error")
	}
}
