package engine

import (
	"context"
	"database/sql"
)

// counting wraps the session a run uses and counts what it sends, so every
// result can say how many queries and writes a run cost. The idempotence
// tests rely on these counts: a second run must send zero writes.
type counting struct {
	conn    *sql.Conn
	queries int
	writes  int
}

// QueryContext implements mysqlstate.Querier.
func (c *counting) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	c.queries++
	return c.conn.QueryContext(ctx, query, args...)
}

func (c *counting) queryRow(ctx context.Context, query string) *sql.Row {
	c.queries++
	return c.conn.QueryRowContext(ctx, query)
}

func (c *counting) exec(ctx context.Context, query string) (sql.Result, error) {
	c.queries++
	c.writes++
	return c.conn.ExecContext(ctx, query)
}

// session sends a statement that changes only this session's settings; it
// counts as a query, not as a write.
func (c *counting) session(ctx context.Context, query string) error {
	c.queries++
	_, err := c.conn.ExecContext(ctx, query)
	return err
}
