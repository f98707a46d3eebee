package fleet

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/mysqlstate"
	"github.com/dbusers/dbusers/bot/internal/rdstls"
	"github.com/dbusers/dbusers/bot/internal/ssmbundle"
	"github.com/dbusers/dbusers/bot/internal/testsupport/mysqltest"
)

func TestDecodeInventory(t *testing.T) {
	for event, want := range map[string]string{
		`{"inventory": {}, "dry_run": false}`:             `field "dry_run" next to "inventory"`,
		`{"inventory": {"clusters": ["a"], "x": 1}}`:      `unknown field inventory."x"`,
		`{"inventory": {"clusters": [""]}}`:               "inventory.clusters[0] is empty",
		`{"inventory": {"clusters": "a"}}`:                "want a list",
		`{"inventory": {"clusters": [], "clusters": []}}`: `"clusters"`,
	} {
		if _, err := DecodeInventory([]byte(event)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want it to say %q", event, err, want)
		}
	}
	got, err := DecodeInventory([]byte(`{"inventory": {"clusters": ["b", "a", "b"]}}`))
	if err != nil || strings.Join(got, ",") != "a,b" {
		t.Errorf("%v, %v", got, err)
	}
}

// TestInventory: the accounts of a published cluster, managed and not, with
// their grants and without any password hash; refused by the plan function.
func TestInventory(t *testing.T) {
	maria := mysqltest.MariaDB(t, "the inventory was NOT read from a real server")
	ctx := context.Background()
	w := newWorld(t)
	prefix := w.name
	dbs := []string{prefix + "_orders"}
	srv := openMariaDB(t, maria, prefix, dbs...)
	admin := w.secret(t, prefix+"/main/admin", map[string]any{"username": srv.adminUser, "password": srv.adminPassword})
	app := w.secret(t, prefix+"/app", map[string]any{"password": mysqltest.Password("app")})
	main := config.Cluster{Name: "main", Environment: "prod", AccountID: acctA, Region: "eu-west-1", Endpoint: endpoint("main"), Port: 3306,
		Engine: srv.Engine, AdminSecret: admin, Databases: dbs, TLS: rdstls.Disabled}
	content := ssmbundle.Content{Settings: settingsFor(w), Clusters: []config.Cluster{main}, Users: []config.User{pwUser("app", app, "write", "main")}}
	w.publish(t, content, "c1")
	conn := &connector{tb: t, targets: map[string]netAddr{"main": {srv.net, srv.addr}}}
	var out syncBuffer
	cfg := testConfig(t, w)
	if _, err := Handle(ctx, w.deps(&out, conn), cfg, []byte(`{"dry_run": false}`)); err != nil {
		t.Fatal(err)
	}
	shared := prefix + "shared"
	srv.Exec(t, "CREATE USER '"+shared+"'@'%' IDENTIFIED BY 'x'")
	srv.Exec(t, "GRANT SELECT ON `"+dbs[0]+"`.* TO '"+shared+"'@'%'")
	t.Cleanup(func() { _, _ = maria.DB.Exec("DROP USER IF EXISTS '" + shared + "'@'%'") })

	// Every run reports it, counts it, and leaves it alone.
	out = syncBuffer{}
	run, err := Handle(ctx, w.deps(&out, conn), cfg, []byte(`{"dry_run": false}`))
	if err != nil {
		t.Fatal(err)
	}
	if cr := run.Clusters[0]; cr.Status != "unchanged" || !slices.ContainsFunc(cr.Unmanaged, func(u mysqlstate.Unmanaged) bool { return u.Account.User == shared }) {
		t.Errorf("run: %s, unmanaged %+v; want unchanged, listing %s", cr.Status, cr.Unmanaged, shared)
	}
	if n, _ := emfOf(t, out.lines(t))[MetricUnmanagedAccounts].(float64); n < 1 || int(n) != run.Clusters[0].UnmanagedCount {
		t.Errorf("metric %s = %v, want the cluster's %d", MetricUnmanagedAccounts, n, run.Clusters[0].UnmanagedCount)
	}

	res, err := Invoke(ctx, w.deps(&out, conn), cfg, []byte(`{"inventory": {"clusters": ["main"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	rep := res.(*InventoryReport)
	if len(rep.Clusters) != 1 || rep.Clusters[0].Error != "" {
		t.Fatalf("%+v", rep)
	}
	c := rep.Clusters[0]
	if len(c.Accounts) != 1 || c.Accounts[0].ID.User != prefix+"_app" || len(c.Accounts[0].Databases) != 1 {
		t.Errorf("accounts %+v", c.Accounts)
	}
	found := false
	for _, u := range c.Unmanaged {
		if u.Account.User == shared && len(u.Databases) == 1 && u.Databases[0] == dbs[0] {
			found = true
		}
		if u.Account.User == srv.adminUser {
			t.Errorf("the bot's own login is listed as unmanaged")
		}
	}
	if !found {
		t.Errorf("unmanaged %+v lacks %s with its grant", c.Unmanaged, shared)
	}
	body := string(mustJSON(t, rep))
	var hash string
	if err := maria.DB.QueryRow("SELECT authentication_string FROM mysql.user WHERE User = ?", prefix+"_app").Scan(&hash); err != nil || hash == "" {
		t.Fatalf("hash: %q, %v", hash, err)
	}
	if strings.Contains(body, hash) || strings.Contains(body, srv.adminPassword) {
		t.Error("the inventory carries a hash or a password")
	}
	if live := c.Live(); live.Accounts[c.Accounts[0].ID].AuthString != "" {
		t.Error("a password account's live state got a credential")
	}
	planCfg := cfg
	planCfg.PlanOnly = true
	if _, err := Invoke(ctx, w.deps(&out, conn), planCfg, []byte(`{"inventory": {}}`)); err == nil || !strings.Contains(err.Error(), "plan function") {
		t.Errorf("the plan function answered an inventory: %v", err)
	}
}
