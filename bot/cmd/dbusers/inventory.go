package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/dbusers/dbusers/bot/internal/dbconn"
	"github.com/dbusers/dbusers/bot/internal/desired"
	"github.com/dbusers/dbusers/bot/internal/engine"
	"github.com/dbusers/dbusers/bot/internal/fleet"
)

// inventoryFlags say where a cluster's accounts are read from: a DSN (a
// tunnel, a bastion) or the deployed function's inventory invoke.
type inventoryFlags struct {
	dsn, fromLambda string
}

func (f *inventoryFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.dsn, "dsn", "", "go-sql-driver/mysql DSN of a login that can read the grant tables; prefer DBUSERS_DSN, which keeps the password out of the process list")
	fs.StringVar(&f.fromLambda, "from-lambda", "", "read the cluster through this function's inventory invoke instead of a DSN (the reconciling function: the plan function refuses it)")
}

// readInventory reads one cluster's accounts.
func readInventory(ctx context.Context, e env, f inventoryFlags, cluster string) (*fleet.InventoryCluster, error) {
	if f.fromLambda != "" {
		return lambdaInventory(ctx, e, f.fromLambda, cluster)
	}
	dsn := cmp.Or(f.dsn, e.getenv("DBUSERS_DSN"))
	if dsn == "" {
		return nil, errors.New("no database: pass --dsn, set DBUSERS_DSN, or read through the function with --from-lambda")
	}
	return nil, errNeedsState // the caller reads the DSN with the declarations' prefix
}

var errNeedsState = errors.New("read with a DSN")

// lambdaInventory asks the function for one cluster's inventory.
func lambdaInventory(ctx context.Context, e env, function, cluster string) (*fleet.InventoryCluster, error) {
	newClient := e.newLambda
	if newClient == nil {
		newClient = newLambdaClient
	}
	client, err := newClient(ctx)
	if err != nil {
		return nil, err
	}
	payload, _ := json.Marshal(map[string]any{"inventory": map[string]any{"clusters": []string{cluster}}})
	ictx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	out, err := client.Invoke(ictx, &lambda.InvokeInput{FunctionName: aws.String(function), Payload: payload})
	if err != nil {
		return nil, fmt.Errorf("invoke %s: %w", function, err)
	}
	if out.FunctionError != nil {
		var fe struct {
			ErrorMessage string `json:"errorMessage"`
		}
		_ = json.Unmarshal(out.Payload, &fe)
		return nil, fmt.Errorf("%s refused the inventory: %s", function, cmp.Or(fe.ErrorMessage, aws.ToString(out.FunctionError)))
	}
	var rep fleet.InventoryReport
	if err := json.Unmarshal(out.Payload, &rep); err != nil || len(rep.Clusters) != 1 || rep.Clusters[0].Name != cluster {
		return nil, fmt.Errorf("%s did not answer with the inventory of %s", function, cluster)
	}
	c := rep.Clusters[0]
	if c.Error != "" {
		return nil, fmt.Errorf("cluster %s: %s: %s", cluster, c.Stage, c.Error)
	}
	if c.Truncated > 0 {
		return nil, fmt.Errorf("cluster %s: %d account(s) did not fit in the function's answer; read it with --dsn", cluster, c.Truncated)
	}
	return &c, nil
}

func runInventory(ctx context.Context, e env, args []string) int {
	fs := flag.NewFlagSet("inventory", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	root := fs.String("root", ".", "repository root holding dbusers.json, clusters/ and users/")
	clusterName := fs.String("cluster", "", "cluster to read (required)")
	format := fs.String("format", "text", "output format: text or json")
	var inv inventoryFlags
	inv.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: dbusers inventory --cluster NAME [--dsn DSN | --from-lambda FUNCTION] [--format text|json] [--root DIR]")
		fmt.Fprintln(fs.Output(), "\nLists a live cluster's accounts: the managed ones with every grant, and the accounts outside the")
		fmt.Fprintln(fs.Output(), "prefix (never touched) with the managed databases they can reach. It only reads. Exit status: 0, or 2.")
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, e); !ok {
		return code
	}
	fail := func(format string, args ...any) int {
		fmt.Fprintf(e.stderr, "dbusers inventory: "+format+"\n", args...)
		return exitError
	}
	switch {
	case fs.NArg() > 0:
		return fail("unexpected argument %q", fs.Arg(0))
	case *clusterName == "":
		return fail("--cluster is required")
	case *format != "text" && *format != "json":
		return fail("unknown format %q (want text or json)", *format)
	}
	st, err := loadDesired(e, *root)
	if err != nil {
		return fail("%v", err)
	}
	c, ok := st.Find(*clusterName)
	if !ok {
		return fail("no cluster file declares %q", *clusterName)
	}
	ic, err := readInventory(ctx, e, inv, *clusterName)
	if errors.Is(err, errNeedsState) {
		ic, err = dsnInventory(ctx, cmp.Or(inv.dsn, e.getenv("DBUSERS_DSN")), *clusterName, st.Prefix, st.Protected, c.Databases, connectProgress(e, "inventory"))
	}
	if err != nil {
		return fail("%v", err)
	}
	if *format == "json" {
		if err := writeJSON(e, struct {
			versioned
			*fleet.InventoryCluster
		}{newVersioned(), ic}); err != nil {
			return fail("%v", err)
		}
		return exitOK
	}
	inventoryText(e.stdout, ic)
	return exitOK
}

// dsnInventory reads a cluster's inventory through a DSN, read-only.
func dsnInventory(ctx context.Context, dsn, cluster string, prefix desired.Prefix, protected, databases []string, progress func(string)) (*fleet.InventoryCluster, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	db, err := dbconn.OpenDSN(ctx, cluster, dsn, progress)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	srv, unmanaged, err := engine.Inventory(ctx, db, prefix, protected, databases)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", cluster, err)
	}
	return fleet.InventoryOf(cluster, srv, unmanaged), nil
}

func inventoryText(w io.Writer, c *fleet.InventoryCluster) {
	fmt.Fprintf(w, "cluster %s (%s): %d managed account(s), %d outside the prefix\n", c.Name, c.Server, len(c.Accounts), len(c.Unmanaged))
	for _, a := range c.Accounts {
		fmt.Fprintf(w, "  %s (%s", a.ID, a.Plugin)
		if a.Locked {
			fmt.Fprint(w, ", locked")
		}
		fmt.Fprintln(w, ")")
		if len(a.Global) > 0 {
			fmt.Fprintf(w, "    *.*: %s\n", strings.Join(a.Global, ", "))
		}
		for _, db := range slices.Sorted(maps.Keys(a.Databases)) {
			fmt.Fprintf(w, "    %s: %s\n", db, strings.Join(a.Databases[db], ", "))
		}
		for _, t := range a.Tables {
			on := t.Database + "." + t.Table
			if t.Column != "" {
				on += " (" + t.Column + ")"
			}
			fmt.Fprintf(w, "    %s: %s\n", on, strings.Join(t.Privileges, ", "))
		}
		for _, r := range a.Routines {
			fmt.Fprintf(w, "    %s %s.%s: %s\n", strings.ToLower(r.Type), r.Database, r.Name, strings.Join(r.Privileges, ", "))
		}
		for _, r := range a.Roles {
			fmt.Fprintf(w, "    role %s\n", r)
		}
		for _, p := range a.Proxies {
			fmt.Fprintf(w, "    proxy %s\n", p)
		}
	}
	if len(c.Unmanaged) > 0 {
		fmt.Fprintln(w, "  outside the prefix, never touched (the shared accounts to retire):")
		for _, u := range c.Unmanaged {
			on := "no grant on a managed database"
			if len(u.Databases) > 0 {
				on = "grants on " + strings.Join(u.Databases, ", ")
			}
			fmt.Fprintf(w, "    ? %s (%s): %s\n", u.Account, cmp.Or(u.Plugin, "no plugin"), on)
		}
	}
}
