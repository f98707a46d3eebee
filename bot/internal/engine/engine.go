// Package engine reconciles one cluster: it takes the server's named lock,
// reads the live state, plans, applies the plan one statement at a time with
// an audit record each, and then reads again to prove the server converged.
// Every entry point (the CLI, the Lambda, the demo) runs clusters through
// it, so the safety rails hold everywhere.
package engine

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/dbusers/dbusers/bot/internal/audit"
	"github.com/dbusers/dbusers/bot/internal/desired"
	"github.com/dbusers/dbusers/bot/internal/mysqlstate"
	"github.com/dbusers/dbusers/bot/internal/plan"
	"github.com/dbusers/dbusers/bot/internal/redact"
	"github.com/dbusers/dbusers/bot/internal/render"
)

// LockName is the named lock that keeps two runs from interleaving on one
// server. It includes the prefix: deployments with different prefixes
// manage disjoint accounts and need not wait for each other.
func LockName(prefix desired.Prefix) string { return "dbusers." + string(prefix) }

// ErrLocked means another run holds the lock; this run changed nothing.
var ErrLocked = errors.New("another dbusers run holds the lock on this server")

// ErrNotConverged means the plan was applied but the server still differs.
var ErrNotConverged = errors.New("not converged")

// Options says what to reconcile and how.
type Options struct {
	// State is the fleet's desired state: prefix, protected accounts,
	// removal limit and role templates come from it.
	State *desired.State
	// Cluster is the cluster to reconcile, normally one of State.Clusters.
	Cluster desired.Cluster
	// Passwords maps password secret references to passwords.
	Passwords map[string]string
	// Apply sends the plan; without it the run is a dry run.
	Apply bool
	// LockTimeout bounds the wait for the named lock (default 30 s).
	LockTimeout time.Duration
	// Audit receives one record per applied or failed statement.
	Audit         audit.Sink
	ConfigVersion string
	Commit        string
	// Now is the clock for audit times and durations (default time.Now).
	Now func() time.Time
}

// Status is a cluster's outcome.
type Status string

// Outcomes of a run on one cluster.
const (
	Unchanged Status = "unchanged" // nothing to do
	Planned   Status = "planned"   // dry run with changes
	Applied   Status = "applied"   // changes applied and verified
	Failed    Status = "failed"    // see Error; Applied lists what took effect
)

// Step is one statement that took effect.
type Step struct {
	Change     plan.Change `json:"change"`
	Statement  string      `json:"statement"` // redacted
	DurationMS float64     `json:"duration_ms"`
}

// Result is what happened on one cluster.
type Result struct {
	Cluster string `json:"cluster"`
	Status  Status `json:"status"`
	// Server describes the server reconciled, e.g. "MariaDB 10.11.19".
	Server     string        `json:"server,omitempty"`
	Plan       *plan.Plan    `json:"plan,omitempty"`
	Applied    []Step        `json:"applied,omitempty"`
	NotApplied []plan.Change `json:"not_applied,omitempty"`
	// InDoubt is the change whose statement was sent when the connection
	// was lost, before the server answered: it may or may not have taken
	// effect. The next run reads the server and settles it.
	InDoubt []plan.Change `json:"in_doubt,omitempty"`
	Error   string        `json:"error,omitempty"`
	// Err is the error behind Error, for errors.Is.
	Err error `json:"-"`
	// Queries counts every statement sent, reads included; Writes counts
	// statements that change the server.
	Queries    int     `json:"queries"`
	Writes     int     `json:"writes"`
	DurationMS float64 `json:"duration_ms"`
}

// Reconcile runs one cluster on db. It never returns a nil result; failures
// are in Result.Err, with the work already done listed.
func Reconcile(ctx context.Context, db *sql.DB, opt Options) *Result {
	now := opt.Now
	if now == nil {
		now = time.Now
	}
	start := now()
	res := &Result{Cluster: opt.Cluster.Name}
	conn, err := db.Conn(ctx)
	var c *counting
	if err == nil {
		c = &counting{conn: conn}
		defer conn.Close()
		err = run(ctx, c, opt, res, now)
	}
	if c != nil {
		res.Queries, res.Writes = c.queries, c.writes
	}
	if err != nil {
		res.Err = sanitize(err, opt.Passwords)
		res.Error = res.Err.Error()
		res.Status = Failed
	}
	res.DurationMS = ms(now().Sub(start))
	return res
}

func run(ctx context.Context, c *counting, opt Options, res *Result, now func() time.Time) (err error) {
	name := opt.Cluster.Name
	timeout := opt.LockTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	if err := lock(ctx, c, LockName(opt.State.Prefix), timeout); err != nil {
		return fmt.Errorf("cluster %s: %w", name, err)
	}
	defer func() {
		// A failed release is harmless (the lock dies with the session) but
		// worth reporting if nothing else failed.
		if rerr := unlock(context.WithoutCancel(ctx), c, LockName(opt.State.Prefix)); rerr != nil && err == nil {
			err = fmt.Errorf("cluster %s: release lock: %w", name, rerr)
		}
	}()

	id, err := mysqlstate.Detect(ctx, c)
	if err != nil {
		return fmt.Errorf("cluster %s: %w", name, err)
	}
	res.Server = id.String()
	if err := mysqlstate.CheckEngine(opt.Cluster.Engine, id); err != nil {
		return fmt.Errorf("cluster %s: %w", name, err)
	}
	if id.NoBackslashEscapes() {
		// render.Literal escapes with backslashes; make them mean that on
		// this session rather than send a password that means something else.
		if err := c.session(ctx, render.EnableBackslashEscapes()); err != nil {
			return fmt.Errorf("cluster %s: reset sql_mode: %w", name, err)
		}
	}
	p, err := readAndPlan(ctx, c, opt, id)
	if err != nil {
		return fmt.Errorf("cluster %s: %w", name, err)
	}
	res.Plan = p
	switch {
	case p.Empty():
		res.Status = Unchanged
		return nil
	case !opt.Apply:
		res.Status = Planned
		return nil
	}

	if err := apply(ctx, c, opt, p, res, now); err != nil {
		return fmt.Errorf("cluster %s: %w", name, err)
	}
	// Verify: what was applied must leave nothing to do.
	again, err := readAndPlan(ctx, c, opt, id)
	if err != nil {
		return fmt.Errorf("cluster %s: verify: %w", name, err)
	}
	if !again.Empty() {
		var left []string
		for _, ch := range again.Changes {
			left = append(left, ch.Summary)
		}
		return fmt.Errorf("cluster %s: %w: %d change(s) remain after applying: %s",
			name, ErrNotConverged, len(again.Changes), strings.Join(left, "; "))
	}
	res.Status = Applied
	return nil
}

// readAndPlan reads the accounts of the server run has already detected
// (mysqlstate.Read would detect it again, two more queries on every run and
// every verify).
func readAndPlan(ctx context.Context, c *counting, opt Options, id mysqlstate.Identity) (*plan.Plan, error) {
	srv, err := mysqlstate.ReadAccounts(ctx, c, id, opt.State.Prefix)
	if err != nil {
		return nil, fmt.Errorf("read live state: %w", err)
	}
	return plan.Diff(plan.Input{
		Cluster:   opt.Cluster,
		Server:    srv,
		Prefix:    opt.State.Prefix,
		Protected: opt.State.Protected,
		Limit:     opt.State.RemovalLimit,
		Roles:     opt.State.Roles,
		Passwords: opt.Passwords,
	}), nil
}

// apply sends the plan one statement at a time. The first failure stops the
// cluster: later statements may depend on it (a GRANT on a user whose
// CREATE failed), and a person should look before anything else changes.
func apply(ctx context.Context, c *counting, opt Options, p *plan.Plan, res *Result, now func() time.Time) error {
	flv := opt.Cluster.Flavor()
	for i, ch := range p.Changes {
		st, err := render.Change(ch, flv)
		if err != nil {
			res.NotApplied = p.Changes[i:]
			return fmt.Errorf("render %q: %w", ch.Summary, err)
		}
		t0 := now()
		_, err = c.exec(ctx, st.SQL)
		d := now().Sub(t0)
		rec := audit.Record{
			Time: t0.UTC(), Cluster: opt.Cluster.Name, Account: ch.Account.String(), User: ch.User,
			Action: string(ch.Action()), Summary: ch.Summary, Statement: st.Redacted,
			ConfigVersion: opt.ConfigVersion, Commit: opt.Commit, Outcome: audit.Applied, DurationMS: ms(d),
		}
		inDoubt := false
		if err != nil {
			inDoubt = !answered(err)
			// The statement knows its own password, including the
			// fragments a server echoes back ("near '...'").
			err = sanitize(st.SanitizeError(err), opt.Passwords)
			if inDoubt {
				err = fmt.Errorf("connection lost before the server answered (%w); the statement may have taken effect, the next run reads the server again and settles it", err)
			}
			rec.Outcome, rec.Error = audit.Failed, err.Error()
			if inDoubt {
				rec.Outcome = audit.InDoubt
			}
		}
		if opt.Audit != nil {
			if aerr := opt.Audit.Record(rec); aerr != nil && err == nil {
				// An unaudited change is a change nobody can account
				// for: stop here.
				res.Applied = append(res.Applied, Step{Change: ch, Statement: st.Redacted, DurationMS: ms(d)})
				res.NotApplied = p.Changes[i+1:]
				return fmt.Errorf("audit log: %w (statement was applied: %s)", aerr, st.Redacted)
			}
		}
		if err != nil {
			if inDoubt {
				res.InDoubt = p.Changes[i : i+1]
				res.NotApplied = p.Changes[i+1:]
			} else {
				res.NotApplied = p.Changes[i:]
			}
			return fmt.Errorf("%s: %s: %w", ch.Summary, st.Redacted, err)
		}
		res.Applied = append(res.Applied, Step{Change: ch, Statement: st.Redacted, DurationMS: ms(d)})
	}
	return nil
}

// answered reports whether a failed statement's error is the server's
// answer, which means the statement did not take effect. Anything else (a
// connection closed, reset or timed out, a cancelled context) may have
// struck after the server ran the statement; only driver.ErrBadConn
// promises that nothing was sent.
func answered(err error) bool {
	var server *mysql.MySQLError
	return errors.As(err, &server) || errors.Is(err, driver.ErrBadConn)
}

// lock takes the named lock, waiting up to timeout for another run to
// release it. It waits one second per query: a single GET_LOCK that waits
// longer than the connection's read timeout (the CLI and the Lambda use
// 60 s, and accept longer lock timeouts) would end as a lost connection
// instead of ErrLocked.
func lock(ctx context.Context, c *counting, name string, timeout time.Duration) error {
	secs := max(1, int(timeout.Round(time.Second)/time.Second))
	for range secs {
		var got sql.NullInt64
		if err := c.queryRow(ctx, render.GetLock(name, 1)).Scan(&got); err != nil {
			return fmt.Errorf("take lock %s: %w", name, err)
		}
		if got.Valid && got.Int64 == 1 {
			return nil
		}
		if !got.Valid {
			break // NULL: the server failed to wait (killed, out of memory)
		}
	}
	return fmt.Errorf("%w (%s, waited %ds); nothing was changed", ErrLocked, name, secs)
}

func unlock(ctx context.Context, c *counting, name string) error {
	var released sql.NullInt64
	return c.queryRow(ctx, render.ReleaseLock(name)).Scan(&released)
}

// sanitize removes every password from an error's text, as written and
// as escaped inside a string literal: a server may echo part of a failed
// statement back ("near '...'").
func sanitize(err error, passwords map[string]string) error {
	secrets := make([]string, 0, 2*len(passwords))
	for _, pw := range passwords {
		secrets = append(secrets, pw, strings.Trim(render.Literal(pw), "'"))
	}
	return redact.Error(err, secrets...)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
