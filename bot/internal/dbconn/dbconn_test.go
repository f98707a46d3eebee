package dbconn

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dbusers/dbusers/bot/internal/testsupport/mysqltest"
)

const secret = "s3cret-'pw'-never-shown"

// closedPort returns a local port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestConnectStages(t *testing.T) {
	port := closedPort(t)
	for _, tt := range []struct {
		name, mode string
		stage      string
		want       []string
	}{
		{"unreachable", "disabled", StageConnect, []string{"cluster c1: connect to 127.0.0.1 port " + strconv.Itoa(port) + " as admin:", "connection refused"}},
		{"unknown tls mode", "maybe", StageTLS, []string{"cluster c1:"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Connect(ctx(t), Target{Cluster: "c1", Host: "127.0.0.1", Port: port, User: "admin", Password: secret, TLSMode: tt.mode}, nil)
			var de *Error
			if !errors.As(err, &de) || de.Stage != tt.stage || de.Cluster != "c1" {
				t.Fatalf("error %v (%T), want an *Error at stage %s", err, err, tt.stage)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(errors.Unwrap(err).Error(), secret) {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}

// TestConnectRedactsWhatTheOpenerSays: an opener (or a driver) that quotes
// the password has it removed before the error leaves the package.
func TestConnectRedactsWhatTheOpenerSays(t *testing.T) {
	leaky := func(_ context.Context, l Login) (*sql.DB, error) { return nil, errors.New("bad login " + l.Password) }
	_, err := Connect(ctx(t), Target{Cluster: "c1", Host: "h", Port: 1, User: "u", Password: secret, TLSMode: "disabled"}, leaky)
	if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "<redacted>") {
		t.Fatalf("error = %v", err)
	}
}

func TestOpenDSN(t *testing.T) {
	port := closedPort(t)
	_, err := OpenDSN(ctx(t), "local", "admin:"+secret+"@tcp(127.0.0.1:"+strconv.Itoa(port)+")/", nil)
	if err == nil || !strings.Contains(err.Error(), "cluster local: connect to 127.0.0.1 port "+strconv.Itoa(port)+" as admin") || strings.Contains(err.Error(), secret) {
		t.Errorf("unreachable: %v", err)
	}
	_, err = OpenDSN(ctx(t), "local", "admin:"+secret+"@tcp(127.0.0.1:3306/", nil)
	if err == nil || !strings.Contains(err.Error(), "does not parse") || strings.Contains(err.Error(), secret) {
		t.Errorf("malformed DSN: %v", err)
	}
}

// TestOpenDSNDefaults: a DSN gets the timeouts, interpolation and the
// connection attribute every dbusers connection has, and logs in.
func TestOpenDSNDefaults(t *testing.T) {
	s := mysqltest.Embedded(t)
	db, err := OpenDSN(ctx(t), "embedded", s.DSN, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var one int
	if err := db.QueryRowContext(ctx(t), "SELECT ?", 1).Scan(&one); err != nil || one != 1 {
		t.Errorf("SELECT ? = %d, %v", one, err)
	}
	cfg := Config(Login{Host: "db.example", Port: 3306, User: "u", Password: "p"})
	if cfg.Addr != "db.example:3306" || cfg.Timeout != DialTimeout || cfg.ReadTimeout != IOTimeout || !cfg.InterpolateParams ||
		cfg.ConnectionAttributes != "program_name:dbusers" || cfg.Logger == nil {
		t.Errorf("config %+v", cfg)
	}
}

// TestOpenDSNProgress: a server that accepts the connection and never
// greets (a tunnel whose far end is gone) gets progress lines while the
// dial and the handshake wait, naming where and how long, and none after
// OpenDSN returns.
func TestOpenDSNProgress(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, silent
		}
	}()
	old := progressEvery
	progressEvery = 100 * time.Millisecond
	defer func() { progressEvery = old }()
	var mu sync.Mutex
	var lines []string
	progress := func(msg string) { mu.Lock(); lines = append(lines, msg); mu.Unlock() }
	addr := l.Addr().(*net.TCPAddr)
	_, err = OpenDSN(ctx(t), "local", "admin:"+secret+"@tcp("+addr.String()+")/?readTimeout=700ms", progress)
	if err == nil {
		t.Fatal("a server that never greets: no error")
	}
	mu.Lock()
	got := slices.Clone(lines)
	mu.Unlock()
	where := "127.0.0.1 port " + strconv.Itoa(addr.Port) + " as admin"
	if len(got) < 3 || got[0] != "connecting to "+where || !strings.HasPrefix(got[1], "still connecting to "+where+" (") ||
		!strings.Contains(got[1], "700ms without an answer") {
		t.Errorf("progress lines:\n%s", strings.Join(got, "\n"))
	}
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(lines) != len(got) {
		t.Errorf("progress went on after OpenDSN returned: %q", lines[len(got):])
	}
	for _, l := range lines {
		if strings.Contains(l, secret) {
			t.Errorf("a progress line holds the password: %s", l)
		}
	}
}
