// Package engine reconciles one cluster: it takes the server's named lock,
// reads the live state, plans, applies the plan one statement at a time with
// an audit record each, ends the sessions of the accounts that lost access,
// and then reads again to prove the server converged. A statement the server
// refuses stops only its own account's changes; the run reports that
// account and goes on with the others. Every entry point (the CLI, the
// Lambda, the demo) runs clusters through it, so the safety rails hold
// everywhere.
package engine

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"
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

// ErrStalePlan means the run was to apply a saved plan (Options.Expect)
// and what it read or planned differs from it; nothing was changed.
var ErrStalePlan = errors.New("the saved plan is stale")

// Fingerprint tells one run's plan and the server state it was made from
// apart from another's: plan.Plan.Digest and mysqlstate.Server.Digest.
// A dry run's fingerprint, saved, lets a later run apply only that plan.
type Fingerprint struct {
	State string `json:"state_sha256"`
	Plan  string `json:"plan_sha256"`
}

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
	// Progress, when set, hears what a person waiting at a terminal wants
	// to know: that the run waits for another's lock, and for whom.
	Progress func(msg string)
	// Expect, when set on a run that applies, is the fingerprint of the
	// plan a person saw: the run applies only if it reads and plans the
	// same under its lock, and otherwise fails with ErrStalePlan before its
	// first write.
	Expect *Fingerprint
}

// Status is a cluster's outcome.
type Status string

// Outcomes of a run on one cluster.
const (
	Unchanged Status = "unchanged" // nothing to do
	Planned   Status = "planned"   // dry run with changes
	Applied   Status = "applied"   // changes applied and verified
	// Partial: some accounts failed (Failures says which and why), every
	// other one applied and verified.
	Partial Status = "partial"
	Failed  Status = "failed" // see Error; Applied lists what took effect
)

// ErrPartial means some accounts failed while the others converged.
var ErrPartial = errors.New("some accounts failed")

// ErrReadOnly means the server refuses writes; nothing was changed.
var ErrReadOnly = errors.New("the server is read-only")

// Failure is one account whose change the server refused. The account's
// later changes were not sent; the other accounts' were.
type Failure struct {
	Account mysqlstate.AccountID `json:"account"`
	User    string               `json:"user,omitempty"`
	// Summary is the change that failed, Statement its redacted SQL.
	Summary   string `json:"summary"`
	Statement string `json:"statement,omitempty"`
	Error     string `json:"error"`
	// Skipped counts the account's changes that were not sent after it.
	Skipped int `json:"skipped,omitempty"`
}

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
	Server string     `json:"server,omitempty"`
	Plan   *plan.Plan `json:"plan,omitempty"`
	// Fingerprint is the plan's and the state's it was made from, set
	// whenever a plan was made. It stays out of the JSON: the Lambda's
	// responses and rollout records have no use for it, and `reconcile`
	// prints it itself.
	Fingerprint *Fingerprint  `json:"-"`
	Applied     []Step        `json:"applied,omitempty"`
	NotApplied  []plan.Change `json:"not_applied,omitempty"`
	// InDoubt is the change whose statement was sent when the connection
	// was lost, before the server answered: it may or may not have taken
	// effect. The next run reads the server and settles it.
	InDoubt []plan.Change `json:"in_doubt,omitempty"`
	// Failures are the accounts whose changes the server refused.
	Failures []Failure `json:"failures,omitempty"`
	// Unmanaged are the accounts outside the prefix (system and protected
	// ones, and the bot's own login, aside): never touched, reported so
	// that shared accounts nobody owns come to light.
	Unmanaged []mysqlstate.Unmanaged `json:"unmanaged,omitempty"`
	Error     string                 `json:"error,omitempty"`
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
		if errors.Is(err, ErrPartial) {
			res.Status = Partial
		}
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
	if err := lock(ctx, c, LockName(opt.State.Prefix), timeout, opt.Progress); err != nil {
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
	plans, srv, err := readAndPlan(ctx, c, id, opt.goal())
	if err != nil {
		return fmt.Errorf("cluster %s: %w", name, err)
	}
	p := plans[0]
	res.Plan = p
	res.Fingerprint = &Fingerprint{State: srv.Digest(), Plan: p.Digest()}
	// A report, not a step of the run: a login that may not read it
	// (an admin account made before dbusers read it) costs a note.
	if res.Unmanaged, err = readUnmanaged(ctx, c, opt, id); err != nil {
		p.Notes = append(p.Notes, fmt.Sprintf("the accounts outside the prefix could not be listed: %v", err))
	}
	if opt.Apply && opt.Expect != nil {
		if err := stale(*opt.Expect, *res.Fingerprint); err != nil {
			return fmt.Errorf("cluster %s: %w", name, err)
		}
	}
	switch {
	case p.Empty():
		res.Status = Unchanged
		return nil
	case !opt.Apply:
		res.Status = Planned
		return nil
	case id.ReadOnly:
		// Before the first write: an Aurora reader or a replica answers
		// every statement with an error, or (with SUPER) takes writes
		// that replication then overwrites.
		return fmt.Errorf("cluster %s: %w (read_only, super_read_only or innodb_read_only is on: a replica, or an Aurora reader after a failover? the cluster file's endpoint must be the writer); nothing was changed",
			name, ErrReadOnly)
	}

	a := &applier{ctx: ctx, c: c, opt: opt, res: res, now: now, failed: map[mysqlstate.AccountID]int{}}
	if err := a.apply(p.Changes, false); err != nil {
		return fmt.Errorf("cluster %s: %w", name, err)
	}
	if err := a.endSessions(id); err != nil {
		return fmt.Errorf("cluster %s: %w", name, err)
	}
	// Verify: what was applied must leave nothing to do but what the
	// failed accounts still need.
	again, _, err := readAndPlan(ctx, c, id, opt.goal())
	if err != nil {
		return fmt.Errorf("cluster %s: verify: %w", name, err)
	}
	var left []string
	for _, ch := range again[0].Changes {
		if _, failed := a.failed[ch.Account]; !failed {
			left = append(left, ch.Summary)
		}
	}
	if len(left) > 0 {
		return fmt.Errorf("cluster %s: %w: %d change(s) remain after applying: %s",
			name, ErrNotConverged, len(left), strings.Join(left, "; "))
	}
	if len(res.Failures) > 0 {
		var who []string
		for _, f := range res.Failures {
			who = append(who, f.Account.String()+": "+f.Error)
		}
		err := fmt.Errorf("cluster %s: %w: %d account(s) failed, %d statement(s) applied for the others: %s",
			name, ErrPartial, len(res.Failures), len(res.Applied), strings.Join(who, "; "))
		if len(res.Applied) == 0 {
			// Nothing converged: that is a failure, not a partial run.
			return errors.New(err.Error())
		}
		return err
	}
	res.Status = Applied
	return nil
}

// goal is one desired state to plan a cluster toward.
type goal struct {
	state     *desired.State
	cluster   desired.Cluster
	passwords map[string]string
}

func (o Options) goal() goal { return goal{state: o.State, cluster: o.Cluster, passwords: o.Passwords} }

func (g goal) diff(srv *mysqlstate.Server) *plan.Plan {
	return plan.Diff(plan.InputFor(g.state, g.cluster, srv, g.passwords))
}

// readAndPlan reads the accounts of the server run has already detected
// (mysqlstate.Read would detect it again, two more queries on every run and
// every verify) and plans toward each goal, all of one prefix, from that
// one read. Only when a plan would drop an account does it read the stored
// objects (an account that still defines some is locked, not dropped), and
// only when a plan takes access away does it read the sessions to end: a
// run with nothing to remove costs no more queries. It is given a
// mysqlstate.Querier, which can only query: planning cannot write.
func readAndPlan(ctx context.Context, q mysqlstate.Querier, id mysqlstate.Identity, goals ...goal) ([]*plan.Plan, *mysqlstate.Server, error) {
	prefix := goals[0].state.Prefix
	srv, err := mysqlstate.ReadAccounts(ctx, q, id, prefix)
	if err != nil {
		return nil, nil, fmt.Errorf("read live state: %w", err)
	}
	plans := make([]*plan.Plan, len(goals))
	diff := func() {
		for i, g := range goals {
			plans[i] = g.diff(srv)
		}
	}
	diff()
	if slices.ContainsFunc(plans, drops) {
		if err := mysqlstate.ReadObjects(ctx, q, srv, prefix); err != nil {
			return nil, nil, err
		}
		diff()
	}
	if slices.ContainsFunc(plans, takesAccess) {
		if err := mysqlstate.ReadSessions(ctx, q, srv, prefix); err != nil {
			return nil, nil, err
		}
		diff()
	}
	return plans, srv, nil
}

// stale says how the fingerprint a run made differs from the one it was
// told to expect, or nil when they agree.
func stale(want, got Fingerprint) error {
	var what []string
	if got.State != want.State {
		what = append(what, "the server's managed accounts changed since it was saved (or this is another server)")
	}
	if got.Plan != want.Plan {
		what = append(what, "the plan made now differs from it")
	}
	if len(what) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s; nothing was changed, make a new plan", ErrStalePlan, strings.Join(what, ", and "))
}

// readUnmanaged lists the accounts outside the prefix that are neither
// system nor protected accounts nor the session's own.
func readUnmanaged(ctx context.Context, q mysqlstate.Querier, opt Options, id mysqlstate.Identity) ([]mysqlstate.Unmanaged, error) {
	skip := func(a mysqlstate.AccountID) bool {
		return desired.SystemAccount(a.User) || slices.Contains(opt.State.Protected, a.User) || a == id.CurrentUser
	}
	return mysqlstate.ReadUnmanaged(ctx, q, id.Flavor, opt.State.Prefix, id.Flavor.WildcardDatabaseNames(id.PartialRevokes), opt.Cluster.Databases, skip)
}

func takesAccess(p *plan.Plan) bool { return slices.ContainsFunc(p.Changes, plan.Change.TakesAccess) }

// drops reports whether a plan drops an account, or would but for the
// removal limit.
func drops(p *plan.Plan) bool {
	isDrop := func(c plan.Change) bool { return c.Action() == plan.DropUser }
	return slices.ContainsFunc(p.Changes, isDrop) || slices.ContainsFunc(p.Held, isDrop)
}

// applier sends a plan one statement at a time, with one audit record
// each. A statement the server refuses stops its account's later changes
// (a GRANT on an account whose CREATE failed makes no sense) and nothing
// else: every other account goes on converging, and Failures says which
// account failed and why. A lost connection stops everything: the
// statement in flight may or may not have taken effect, and the next run
// reads the server before it touches that account again.
type applier struct {
	ctx context.Context
	c   *counting
	opt Options
	res *Result
	now func() time.Time
	// failed maps a failed account to its entry in res.Failures.
	failed map[mysqlstate.AccountID]int
	// took are the applied changes that took access away.
	took []plan.Change
}

// apply sends changes: every kind but EndSession, or (sessions) only
// EndSession, which ends sessions from a read made after the others applied.
func (a *applier) apply(changes []plan.Change, sessions bool) error {
	flv := a.opt.Cluster.Flavor()
	for i, ch := range changes {
		if (ch.Action() == plan.EndSession) != sessions {
			continue
		}
		if f, failed := a.failed[ch.Account]; failed {
			a.res.Failures[f].Skipped++
			a.res.NotApplied = append(a.res.NotApplied, ch)
			continue
		}
		st, err := render.Change(ch, flv)
		if err != nil {
			a.fail(ch, "", fmt.Errorf("render: %w", err))
			a.res.NotApplied = append(a.res.NotApplied, ch)
			continue
		}
		ok, inDoubt, err := a.send(ch, st)
		switch {
		case inDoubt:
			a.res.InDoubt = append(a.res.InDoubt, ch)
			for _, rest := range changes[i+1:] {
				if (rest.Action() == plan.EndSession) == sessions {
					a.res.NotApplied = append(a.res.NotApplied, rest)
				}
			}
			return fmt.Errorf("%s: %s: %w", ch.Summary, st.Redacted, err)
		case err != nil:
			// The audit log failed after the statement applied: stop.
			for _, rest := range changes[i+1:] {
				if (rest.Action() == plan.EndSession) == sessions {
					a.res.NotApplied = append(a.res.NotApplied, rest)
				}
			}
			return err
		case !ok:
			a.res.NotApplied = append(a.res.NotApplied, ch)
		case ch.TakesAccess():
			a.took = append(a.took, ch)
		}
	}
	return nil
}

// send runs one statement and audits it. ok is false when the server
// refused it (the failure is recorded against the account); err is set
// when the run must stop: the connection was lost (inDoubt), or the audit
// record of an applied statement could not be written.
func (a *applier) send(ch plan.Change, st render.Statement) (ok, inDoubt bool, err error) {
	t0 := a.now()
	_, err = a.c.exec(a.ctx, st.SQL)
	d := a.now().Sub(t0)
	rec := audit.Record{
		Time: t0.UTC(), Cluster: a.opt.Cluster.Name, Account: ch.Account.String(), User: ch.User,
		Action: string(ch.Action()), Summary: ch.Summary, Statement: st.Redacted,
		ConfigVersion: a.opt.ConfigVersion, Commit: a.opt.Commit, Outcome: audit.Applied, DurationMS: ms(d),
	}
	gone := false
	if err != nil {
		inDoubt = !answered(err)
		// The statement knows its own password, including the fragments a
		// server echoes back ("near '...'").
		err = sanitize(st.SanitizeError(err), a.opt.Passwords)
		switch {
		case inDoubt:
			err = fmt.Errorf("connection lost before the server answered (%w); the statement may have taken effect, the next run reads the server again and settles it", err)
			rec.Outcome = audit.InDoubt
		case ch.Action() == plan.EndSession && isErrNo(err, errNoSuchThread):
			// The session ended by itself meanwhile: what was wanted.
			gone, err = true, nil
			rec.Summary += " (it had already ended)"
		default:
			err = explain(ch, err)
			rec.Outcome = audit.Failed
		}
		if err != nil {
			rec.Error = err.Error()
		}
	}
	if a.opt.Audit != nil {
		if aerr := a.opt.Audit.Record(rec); aerr != nil && err == nil {
			// An unaudited change is a change nobody can account for: stop.
			a.res.Applied = append(a.res.Applied, Step{Change: ch, Statement: st.Redacted, DurationMS: ms(d)})
			return true, false, fmt.Errorf("audit log: %w (statement was applied: %s)", aerr, st.Redacted)
		}
	}
	switch {
	case inDoubt:
		return false, true, err
	case err != nil:
		a.fail(ch, st.Redacted, err)
		return false, false, nil
	}
	if !gone {
		a.res.Applied = append(a.res.Applied, Step{Change: ch, Statement: st.Redacted, DurationMS: ms(d)})
	}
	return true, false, nil
}

// fail records that the server refused a change of an account.
func (a *applier) fail(ch plan.Change, statement string, err error) {
	a.failed[ch.Account] = len(a.res.Failures)
	a.res.Failures = append(a.res.Failures, Failure{Account: ch.Account, User: ch.User, Summary: ch.Summary,
		Statement: statement, Error: err.Error()})
}

// sessionWait bounds how long the run waits for ended sessions to leave
// the processlist: KILL marks a session, which ends at its next check.
const sessionWait = 3 * time.Second

// endSessions ends the open sessions of every account a change took access
// from, read fresh now that the changes are applied, and checks that they
// are gone. A session that stays is a failure of its account: until it
// ends, the access it held is not gone.
func (a *applier) endSessions(id mysqlstate.Identity) error {
	if len(a.took) == 0 {
		return nil
	}
	srv := &mysqlstate.Server{}
	if err := mysqlstate.ReadSessions(a.ctx, a.c, srv, a.opt.State.Prefix); err != nil {
		return err
	}
	ends := plan.SessionsToEnd(a.took, srv, a.opt.Cluster, a.opt.State.Sessions)
	if len(ends) == 0 {
		return nil
	}
	// The plan showed what it read before; these are what is open now.
	if a.res.Plan != nil {
		a.res.Plan.Changes = append(slices.DeleteFunc(slices.Clone(a.res.Plan.Changes), func(c plan.Change) bool {
			return c.Action() == plan.EndSession
		}), ends...)
	}
	if err := a.apply(ends, true); err != nil {
		return err
	}
	for deadline := a.now().Add(sessionWait); ; {
		if err := mysqlstate.ReadSessions(a.ctx, a.c, srv, a.opt.State.Prefix); err != nil {
			return err
		}
		open := map[int64]bool{}
		for _, s := range srv.Sessions {
			open[s.ID] = true
		}
		var left []plan.Change
		for _, e := range ends {
			if _, failed := a.failed[e.Account]; !failed && open[e.Op.(plan.Disconnect).Session.ID] {
				left = append(left, e)
			}
		}
		if len(left) == 0 {
			return nil
		}
		if a.now().After(deadline) {
			for _, e := range left {
				a.fail(e, "", fmt.Errorf("session %d is still open %s after it was ended", e.Op.(plan.Disconnect).Session.ID, sessionWait))
			}
			return nil
		}
		select {
		case <-a.ctx.Done():
			return a.ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Server error numbers the engine reads.
const (
	// errNoSuchThread: KILL of a session that has ended (ER_NO_SUCH_THREAD).
	errNoSuchThread = 1094
	// errKillDenied: KILL of another account's session without
	// CONNECTION_ADMIN or SUPER (ER_KILL_DENIED_ERROR).
	errKillDenied = 1095
	// errDefinerInUse: MySQL 8.0.22+ refuses to drop an account that is
	// the definer of stored objects (ER_CANNOT_USER_REFERENCED_AS_DEFINER).
	errDefinerInUse = 4006
)

// isErrNo reports whether err is the server's error number n.
func isErrNo(err error, n uint16) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == n
}

// explain adds to a server's refusal what a person should do about it.
func explain(ch plan.Change, err error) error {
	switch {
	case isErrNo(err, errDefinerInUse):
		return fmt.Errorf("%w: the account is the definer of stored objects that dbusers could not see (give the management account what dbusers admin-sql grants to read them); it stays as it is", err)
	case isErrNo(err, errKillDenied):
		return fmt.Errorf("%w: the management account may not end other accounts' sessions (dbusers admin-sql grants what it needs)", err)
	case ch.Action() == plan.EndSession && isErrNo(err, 1370): // ER_PROCACCESS_DENIED_ERROR: no EXECUTE on mysql.rds_kill
		return fmt.Errorf("%w: the management account may not call mysql.rds_kill (dbusers admin-sql grants it)", err)
	}
	return err
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
// instead of ErrLocked. While it waits, progress (when set) hears which
// connection holds the lock, at the start and every 10 seconds.
func lock(ctx context.Context, c *counting, name string, timeout time.Duration, progress func(string)) error {
	secs := max(1, int(timeout.Round(time.Second)/time.Second))
	start := time.Now()
	for i := range secs {
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
		if progress != nil && i%10 == 0 {
			holder := "another session"
			var id sql.NullInt64
			if err := c.queryRow(ctx, "SELECT IS_USED_LOCK("+render.Literal(name)+")").Scan(&id); err == nil && id.Valid {
				holder = fmt.Sprintf("connection %d", id.Int64)
			}
			progress(fmt.Sprintf("waiting for the lock %s, held by %s, since %s (%s of at most %ds)",
				name, holder, start.Format("15:04:05"), time.Since(start).Round(time.Second), secs))
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
