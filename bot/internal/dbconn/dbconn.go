// Package dbconn opens the connection pool a cluster is reconciled on, the
// same way for the Lambda, the CLI and the demo: TLS from the cluster
// file's mode and the RDS CA bundle, dial and I/O timeouts, query
// interpolation (one round trip per query), a connection attribute that
// names dbusers in the server's processlist, the driver's own logging off
// (its errors are returned, never printed), and a ping that proves the
// login. Every failure is an *Error that names the stage (tls or connect),
// the cluster, host and port, and never holds the password.
package dbconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/dbusers/dbusers/bot/internal/rdstls"
	"github.com/dbusers/dbusers/bot/internal/redact"
)

// Stages of connecting, named in errors and reports.
const (
	StageTLS     = "tls"
	StageConnect = "connect"
)

// Timeouts of a cluster connection.
const (
	DialTimeout = 10 * time.Second
	IOTimeout   = 60 * time.Second
)

// Error is a failure to connect, tagged with its stage. Its text names the
// cluster and, once TLS is set up, the host and port; it never holds the
// password.
type Error struct {
	Stage   string
	Cluster string
	msg     string
	err     error // already redacted
}

func (e *Error) Error() string { return e.msg }

// Unwrap returns the cause, with the password removed from its text.
func (e *Error) Unwrap() error { return e.err }

// Target is a cluster as the caller knows it: where, as whom, and how its
// file says TLS must be checked.
type Target struct {
	Cluster        string
	Host           string
	Port           int
	User, Password string
	// TLSMode is the cluster file's tls: verify-identity (also ""),
	// verify-ca, required or disabled.
	TLSMode string
	// Roots verifies the server in the verify modes.
	Roots *x509.CertPool
}

// Login is what a pool is opened with: the target with its TLS
// configuration built (nil for tls disabled).
type Login struct {
	Cluster        string
	Host           string
	Port           int
	User, Password string
	TLS            *tls.Config
}

// OpenFunc opens a pool to l without dialing; Pool is the real one, and
// tests put local servers behind it.
type OpenFunc func(ctx context.Context, l Login) (*sql.DB, error)

// Connect builds the TLS configuration of t, opens a pool with open (nil
// means Pool) and pings it. The caller closes the pool.
func Connect(ctx context.Context, t Target, open OpenFunc) (*sql.DB, error) {
	fail := func(stage, format string, err error, args ...any) error {
		err = redact.Error(err, t.Password)
		return &Error{Stage: stage, Cluster: t.Cluster, msg: fmt.Errorf(format, append(args, err)...).Error(), err: err}
	}
	tlsCfg, err := rdstls.Config(t.TLSMode, t.Host, t.Roots)
	if err != nil {
		return nil, fail(StageTLS, "cluster %s: %w", err, t.Cluster)
	}
	if open == nil {
		open = Pool
	}
	db, err := open(ctx, Login{Cluster: t.Cluster, Host: t.Host, Port: t.Port, User: t.User, Password: t.Password, TLS: tlsCfg})
	if err != nil {
		return nil, fail(StageConnect, "cluster %s: connect: %w", err, t.Cluster)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fail(StageConnect, "cluster %s: connect to %s port %d as %s: %w", err, t.Cluster, t.Host, t.Port, t.User)
	}
	return db, nil
}

// Pool opens a go-sql-driver/mysql pool to l with Config's settings. It
// does not dial.
func Pool(_ context.Context, l Login) (*sql.DB, error) {
	return OpenPool(Config(l))
}

// Config is the driver's configuration of a connection to l.
func Config(l Login) *mysql.Config {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd = l.User, l.Password
	cfg.Net, cfg.Addr = "tcp", net.JoinHostPort(l.Host, strconv.Itoa(l.Port))
	cfg.TLS = l.TLS
	Defaults(cfg)
	return cfg
}

// Defaults completes a driver configuration the way every dbusers
// connection is made; settings a DSN already has are kept.
func Defaults(cfg *mysql.Config) {
	if cfg.Timeout == 0 {
		cfg.Timeout = DialTimeout
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = IOTimeout
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = IOTimeout
	}
	if cfg.ConnectionAttributes == "" {
		cfg.ConnectionAttributes = "program_name:dbusers"
	}
	// A query with an argument (the reads' LIKE pattern) would otherwise
	// be a server-side prepared statement: two round trips and a close
	// instead of one, 4 of a converged cluster's 15 round trips. The
	// driver escapes for the session's NO_BACKSLASH_ESCAPES, and refuses
	// to interpolate for the character sets it cannot escape safely.
	cfg.InterpolateParams = true
	// The driver prints some failures ("packets.go: unexpected EOF") to
	// stderr as well as returning them; dbusers reports the returned
	// error, with the cluster's name, once.
	cfg.Logger = silent{}
}

// OpenPool opens the pool a cluster is reconciled on.
func OpenPool(cfg *mysql.Config) (*sql.DB, error) {
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("mysql connector: %w", redact.Error(err, cfg.Passwd))
	}
	db := sql.OpenDB(conn)
	// The engine works on one connection; a second one serves the ping
	// and a retry after a dropped connection.
	db.SetMaxOpenConns(2)
	db.SetConnMaxLifetime(10 * time.Minute)
	return db, nil
}

// progressEvery is how often OpenDSN's progress hears that it is still
// connecting.
var progressEvery = 5 * time.Second

// OpenDSN opens and pings a pool from a go-sql-driver/mysql DSN (the CLI's
// --dsn), with Defaults for what the DSN leaves unset. A DSN that does not
// parse is a plain error; a failure to connect is an *Error. Errors never
// contain the DSN, which holds the password. progress, when set, hears
// where it connects and, every few seconds until the server has answered,
// that it still waits: a person at a terminal then knows that a tunnel or
// a security group is what hangs, not dbusers. It is never called after
// OpenDSN returns.
func OpenDSN(ctx context.Context, cluster, dsn string, progress func(msg string)) (*sql.DB, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		// A usage error, not a failure to connect: no *Error.
		return nil, errors.New("the DSN does not parse (expected user:password@tcp(host:port)/)")
	}
	Defaults(cfg)
	if progress != nil {
		where := describeAddr(cfg) + " as " + cfg.User
		progress("connecting to " + where)
		stop, done := make(chan struct{}), make(chan struct{})
		defer func() { close(stop); <-done }()
		go func() {
			defer close(done)
			start := time.Now()
			tick := time.NewTicker(progressEvery)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					progress(fmt.Sprintf("still connecting to %s (%ds; it gives up after %s without a connection, %s without an answer)",
						where, int(time.Since(start).Round(time.Second).Seconds()), cfg.Timeout, cfg.ReadTimeout))
				}
			}
		}()
	}
	db, err := OpenPool(cfg)
	if err == nil {
		if err = db.PingContext(ctx); err != nil {
			db.Close()
		}
	}
	if err != nil {
		err = redact.Error(err, cfg.Passwd, dsn)
		return nil, &Error{Stage: StageConnect, Cluster: cluster,
			msg: fmt.Sprintf("cluster %s: connect to %s as %s: %v", cluster, describeAddr(cfg), cfg.User, err), err: err}
	}
	return db, nil
}

// describeAddr names where a DSN connects, as a person reads it.
func describeAddr(cfg *mysql.Config) string {
	if cfg.Net == "unix" {
		return "socket " + cfg.Addr
	}
	if host, port, err := net.SplitHostPort(cfg.Addr); err == nil {
		return host + " port " + port
	}
	return cfg.Addr
}

// silent is a driver logger that prints nothing.
type silent struct{}

func (silent) Print(...any) {}
