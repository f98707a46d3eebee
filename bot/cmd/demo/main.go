// Command demo runs dbusers end to end on one machine with nothing but Go:
// it starts a MySQL-compatible server in process, reconciles the
// repository's "local" cluster into it, proves a created account works by
// logging in as it, and runs again to show that a converged server gets an
// empty plan. It is a command of its own so the dbusers CLI, which every
// pull request builds, does not carry the embedded server.
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/dbusers/dbusers/bot/internal/audit"
	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/desired"
	"github.com/dbusers/dbusers/bot/internal/embedded"
	"github.com/dbusers/dbusers/bot/internal/engine"
	"github.com/dbusers/dbusers/bot/internal/flavor"
	"github.com/dbusers/dbusers/bot/internal/report"
)

// demoCluster is the cluster file the demo reconciles; it declares
// mariadb-10.11, and the demo declares the embedded server's own flavor
// instead so the engine check still holds.
const demoCluster = "local"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	root := flag.String("root", "", "repository root (default: the nearest directory above the current one that holds dbusers.json)")
	flag.Parse()
	if err := run(ctx, os.Stdout, *root, time.Now); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer, root string, now func() time.Time) error {
	if root == "" {
		var err error
		if root, err = findRoot(); err != nil {
			return err
		}
	}
	loaded, diags, err := config.Load(os.DirFS(root), now())
	if err != nil {
		return err
	}
	if errs := diags.Errors(); len(errs) > 0 {
		_ = errs.Write(out, "text")
		return fmt.Errorf("the declarations in %s have %d error(s)", root, len(errs))
	}
	st, err := desired.Build(&loaded.Config, now())
	if err != nil {
		return err
	}
	c, ok := st.Find(demoCluster)
	if !ok {
		return fmt.Errorf("the repository has no %q cluster to reconcile", demoCluster)
	}
	cluster := *c
	cluster.Engine, cluster.Flavor = flavor.EmbeddedEngine, flavor.Embedded

	section(out, "1. Start an embedded MySQL-compatible server (go-mysql-server) with the cluster's databases")
	srv, err := embedded.Start(cluster.Databases...)
	if err != nil {
		return err
	}
	defer srv.Close()
	readyCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := srv.Ready(readyCtx); err != nil {
		return err
	}
	admin, err := sql.Open("mysql", srv.RootDSN())
	if err != nil {
		return err
	}
	defer admin.Close()
	fmt.Fprintf(out, "listening on %s, databases: %s\n", srv.Addr(), strings.Join(cluster.Databases, ", "))

	// Some history, so the plan has more to show than creations: a
	// departed colleague, a service with more than it should have, and
	// accounts the bot must never touch.
	seed := []string{
		"CREATE TABLE orders.items (id INT PRIMARY KEY, sku VARCHAR(40))",
		"INSERT INTO orders.items VALUES (1, 'demo-sku')",
		"CREATE USER 'acme_mallory'@'%' IDENTIFIED BY 'left-the-company'",
		"GRANT SELECT, INSERT ON orders.* TO 'acme_mallory'@'%'",
		"CREATE USER 'acme_reporting'@'%' IDENTIFIED BY 'old-password'",
		"GRANT SELECT, INSERT, UPDATE ON orders.* TO 'acme_reporting'@'%'",
		"CREATE USER 'acmex_bob'@'%' IDENTIFIED BY 'not-ours'",
		"CREATE USER 'acme_breakglass'@'%' IDENTIFIED BY 'protected'",
	}
	for _, q := range seed {
		if _, err := admin.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
	}
	fmt.Fprintln(out, "seeded: acme_mallory (no longer declared), acme_reporting (write, declared read),")
	fmt.Fprintln(out, "        acmex_bob (look-alike, not managed), acme_breakglass (protected in dbusers.json)")

	// Secrets Manager stand-in: every password secret the cluster's users
	// name gets a fresh random password.
	passwords := map[string]string{}
	for _, a := range cluster.Accounts {
		if a.Auth.Method == "password" {
			passwords[a.Auth.Secret] = randomPassword()
		}
	}
	opts := engine.Options{State: st, Cluster: cluster, Passwords: passwords, ConfigVersion: "demo", Now: now}

	section(out, "2. Dry run: the plan (passwords redacted)")
	res := engine.Reconcile(ctx, admin, opts)
	report.Text(out, res, cluster.Flavor, true)
	if res.Err != nil {
		return res.Err
	}

	section(out, "3. Apply, one statement at a time, with an audit line each")
	var trail audit.Memory
	opts.Apply, opts.Audit = true, audit.Tee{&trail, audit.NewJSONLines(out)}
	res = engine.Reconcile(ctx, admin, opts)
	fmt.Fprintln(out)
	report.Text(out, res, cluster.Flavor, false)
	if res.Err != nil {
		return res.Err
	}

	section(out, "4. Log in as a created account and check its privileges")
	if err := proveAccount(ctx, out, srv, st.Prefix+"_reporting", passwords["dbusers/reporting"]); err != nil {
		return err
	}

	section(out, "5. Run again: a converged server needs nothing")
	opts.Audit = &trail
	res = engine.Reconcile(ctx, admin, opts)
	report.Text(out, res, cluster.Flavor, false)
	if res.Err != nil {
		return res.Err
	}
	if res.Status != engine.Unchanged || res.Writes != 0 {
		return fmt.Errorf("second run was not a no-op: status %s, %d writes", res.Status, res.Writes)
	}
	fmt.Fprintf(out, "\ndemo complete: %d statements applied, second run sent %d queries and 0 writes\n",
		len(trail.Records()), res.Queries)
	return nil
}

// proveAccount logs in as the account: reading must work, writing must be
// refused.
func proveAccount(ctx context.Context, out io.Writer, srv *embedded.Server, user, password string) error {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = user, password, "tcp", srv.Addr()
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return err
	}
	defer db.Close()
	var sku string
	if err := db.QueryRowContext(ctx, "SELECT sku FROM orders.items WHERE id = 1").Scan(&sku); err != nil {
		return fmt.Errorf("%s could not read orders.items: %w", user, err)
	}
	fmt.Fprintf(out, "%s: SELECT sku FROM orders.items → %q (allowed)\n", user, sku)
	_, err = db.ExecContext(ctx, "INSERT INTO orders.items VALUES (2, 'should-fail')")
	if err == nil {
		return fmt.Errorf("%s could write to orders.items after its downgrade to read", user)
	}
	fmt.Fprintf(out, "%s: INSERT INTO orders.items → refused: %v\n", user, err)
	return nil
}

func section(out io.Writer, title string) {
	fmt.Fprintf(out, "\n== %s\n", title)
}

func randomPassword() string {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b)
}

// findRoot walks up from the working directory to the repository root.
func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, config.SettingsFile)); err == nil {
			return dir, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no dbusers.json here or above; run the demo inside the repository or pass --root")
		}
		dir = parent
	}
}
