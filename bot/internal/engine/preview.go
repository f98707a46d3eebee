package engine

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/dbusers/dbusers/bot/internal/desired"
	"github.com/dbusers/dbusers/bot/internal/mysqlstate"
	"github.com/dbusers/dbusers/bot/internal/plan"
	"github.com/dbusers/dbusers/bot/internal/render"
)

// This file is the live plan of a pull request: Preview reads a cluster
// and plans, and has no way to apply. It is apart from Reconcile on
// purpose, and shares with it only readAndPlan, which takes a
// mysqlstate.Querier (it can query, not execute). Preview's one door to
// the server is readOnly, which refuses, before sending, any statement
// that is not a SELECT or a SHOW. It takes no lock: a plan asked for by a
// pull request must never make a real run wait.

// PreviewOptions says what to plan a cluster toward.
type PreviewOptions struct {
	// State and Cluster are the candidate: the pull request's head.
	State   *desired.State
	Cluster desired.Cluster
	// Base is the configuration already merged; a change its plan has
	// too is drift (the server differs from what is merged). Nil: no
	// drift is told.
	Base *desired.State
	// Passwords maps password secret references to passwords, for both.
	Passwords map[string]string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// PreviewResult is one cluster's live plan.
type PreviewResult struct {
	Cluster string `json:"cluster"`
	// Status is Unchanged, Planned or Failed.
	Status Status `json:"status"`
	Server string `json:"server,omitempty"`
	Plan   *plan.Plan
	// Drift[i] is true when Plan.Changes[i] is in the base's plan too.
	Drift []bool
	// ReadAt is when the live state was read.
	ReadAt time.Time
	// RunActive is true when a dbusers run held the reconcile lock while
	// the server was read: the plan may show a moment in that run.
	RunActive bool
	Error     string `json:"error,omitempty"`
	Err       error  `json:"-"`
	// Queries counts what was sent: reads only.
	Queries    int     `json:"queries"`
	DurationMS float64 `json:"duration_ms"`
}

// Preview reads the cluster on db and plans the candidate, and the base
// when given, from that read. It never returns nil; failures are in Err.
func Preview(ctx context.Context, db *sql.DB, opt PreviewOptions) *PreviewResult {
	now := opt.Now
	if now == nil {
		now = time.Now
	}
	start := now()
	res := &PreviewResult{Cluster: opt.Cluster.Name}
	conn, err := db.Conn(ctx)
	if err == nil {
		defer conn.Close()
		r := &readOnly{conn: conn}
		err = preview(ctx, r, opt, res, now)
		res.Queries = r.queries
	}
	if err != nil {
		res.Err = sanitize(fmt.Errorf("cluster %s: %w", opt.Cluster.Name, err), opt.Passwords)
		res.Error, res.Status = res.Err.Error(), Failed
	}
	res.DurationMS = ms(now().Sub(start))
	return res
}

func preview(ctx context.Context, r *readOnly, opt PreviewOptions, res *PreviewResult, now func() time.Time) error {
	id, err := mysqlstate.Detect(ctx, r)
	if err != nil {
		return err
	}
	res.Server = id.String()
	if err := mysqlstate.CheckEngine(opt.Cluster.Engine, id); err != nil {
		return err
	}
	if res.RunActive, err = lockInUse(ctx, r, LockName(opt.State.Prefix)); err != nil {
		return err
	}
	res.ReadAt = now().UTC()
	head := goal{state: opt.State, cluster: opt.Cluster, passwords: opt.Passwords}
	var base *goal
	if opt.Base != nil {
		if c, ok := opt.Base.Find(opt.Cluster.Name); ok {
			base = &goal{state: opt.Base, cluster: *c, passwords: opt.Passwords}
		} else {
			// Not declared on the base: every account of the prefix is
			// one the base would remove.
			base = &goal{state: opt.Base, cluster: desired.Cluster{Name: opt.Cluster.Name, Engine: opt.Cluster.Engine}, passwords: opt.Passwords}
		}
	}
	var plans []*plan.Plan
	switch {
	case base != nil && base.state.Prefix == head.state.Prefix:
		if plans, _, err = readAndPlan(ctx, r, id, head, *base); err != nil {
			return err
		}
	default:
		// A pull request that changes the prefix reads the server once per
		// prefix: the two plans see different accounts.
		if plans, _, err = readAndPlan(ctx, r, id, head); err != nil {
			return err
		}
		if base != nil {
			bp, _, err := readAndPlan(ctx, r, id, *base)
			if err != nil {
				return fmt.Errorf("base: %w", err)
			}
			plans = append(plans, bp...)
		}
	}
	res.Plan = plans[0]
	res.Drift = make([]bool, len(res.Plan.Changes))
	if len(plans) > 1 {
		inBase := map[string]bool{}
		for _, c := range plans[1].Changes {
			inBase[driftKey(c)] = true
		}
		for i, c := range res.Plan.Changes {
			res.Drift[i] = inBase[driftKey(c)]
		}
	}
	res.Status = Planned
	if res.Plan.Empty() {
		res.Status = Unchanged
	}
	return nil
}

// driftKey names a change by its account and what it does, so the same
// change in two plans of one read compares equal.
func driftKey(c plan.Change) string { return c.Account.String() + "\x00" + c.Summary }

// lockInUse reports whether a run holds the reconcile lock, without
// taking it (IS_USED_LOCK only looks).
func lockInUse(ctx context.Context, q mysqlstate.Querier, name string) (bool, error) {
	rows, err := q.QueryContext(ctx, "SELECT IS_USED_LOCK("+render.Literal(name)+")")
	if err != nil {
		return false, fmt.Errorf("look at lock %s: %w", name, err)
	}
	defer rows.Close()
	var holder sql.NullInt64
	if rows.Next() {
		if err := rows.Scan(&holder); err != nil {
			return false, fmt.Errorf("look at lock %s: %w", name, err)
		}
	}
	return holder.Valid, rows.Err()
}

// ErrNotARead is the refusal of a statement a preview may not send.
var ErrNotARead = errors.New("a live plan sends only SELECT and SHOW")

// readOnly is a preview's session: it counts queries and refuses, before
// sending it, any statement that does not begin with SELECT or SHOW. The
// plan login (admin-sql --plan) cannot write either; this holds with the
// admin login too.
type readOnly struct {
	conn    *sql.Conn
	queries int
}

// QueryContext implements mysqlstate.Querier.
func (r *readOnly) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if !IsRead(query) {
		return nil, fmt.Errorf("%w: refused %q", ErrNotARead, firstWord(query))
	}
	r.queries++
	return r.conn.QueryContext(ctx, query, args...)
}

// IsRead reports whether a statement is one a live plan may send: a
// single SELECT or SHOW. A statement with a semicolon outside a string
// is refused whole (the driver sends no multi-statements, and a plan has
// no need to).
func IsRead(query string) bool {
	w := strings.ToUpper(firstWord(query))
	if w != "SELECT" && w != "SHOW" {
		return false
	}
	var quote rune
	for i, ch := range query {
		switch {
		case quote != 0:
			if ch == quote && !escaped(query, i) {
				quote = 0
			}
		case ch == '\'' || ch == '"' || ch == '`':
			quote = ch
		case ch == ';':
			return strings.TrimSpace(query[i+1:]) == ""
		}
	}
	return true
}

func escaped(s string, i int) bool {
	n := 0
	for j := i - 1; j >= 0 && s[j] == '\\'; j-- {
		n++
	}
	return n%2 == 1
}

func firstWord(query string) string {
	q := strings.TrimLeftFunc(query, unicode.IsSpace)
	end := strings.IndexFunc(q, func(r rune) bool { return !unicode.IsLetter(r) })
	if end < 0 {
		end = len(q)
	}
	return q[:end]
}

// Inventory reads a cluster's accounts, through the same read-only
// session as Preview: the managed accounts with every grant, and the
// accounts outside the prefix. It takes no lock and sends only SELECT and
// SHOW. protected are account names to leave out of the unmanaged list
// (besides the system accounts and the session's own).
func Inventory(ctx context.Context, db *sql.DB, prefix desired.Prefix, protected, databases []string) (*mysqlstate.Server, []mysqlstate.Unmanaged, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	r := &readOnly{conn: conn}
	srv, err := mysqlstate.Read(ctx, r, prefix)
	if err != nil {
		return nil, nil, err
	}
	skip := func(a mysqlstate.AccountID) bool {
		return desired.SystemAccount(a.User) || slices.Contains(protected, a.User) || a == srv.CurrentUser
	}
	unmanaged, err := mysqlstate.ReadUnmanaged(ctx, r, srv.Flavor, prefix, srv.WildcardDatabaseNames(), databases, skip)
	return srv, unmanaged, err
}
