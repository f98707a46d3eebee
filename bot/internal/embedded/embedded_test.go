package embedded

import (
	"context"
	"database/sql"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
)

func TestStartServesUsersAndGrants(t *testing.T) {
	s, err := Start("orders")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("mysql", s.RootDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		"CREATE USER 'acme_probe'@'%' IDENTIFIED BY 'pw'",
		"GRANT SELECT ON `orders`.* TO 'acme_probe'@'%'",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM mysql.db WHERE User = 'acme_probe'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("grant rows = %d, %v; want 1", n, err)
	}
	user, err := sql.Open("mysql", s.DSN("acme_probe", "pw"))
	if err != nil {
		t.Fatal(err)
	}
	defer user.Close()
	if err := user.PingContext(ctx); err != nil {
		t.Fatalf("log in as the created user: %v", err)
	}
}
