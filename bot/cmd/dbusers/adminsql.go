package main

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"slices"

	"github.com/dbusers/dbusers/bot/internal/adminsql"
)

func runAdminSQL(_ context.Context, e env, args []string) int {
	fs := flag.NewFlagSet("admin-sql", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	root := fs.String("root", ".", "repository root")
	engine := fs.String("engine", "", "engine, e.g. aurora-mysql-3 (default: the cluster's)")
	cluster := fs.String("cluster", "", "cluster file to take the engine, databases and TLS mode from")
	user := fs.String("user", "", "name of the account (default: dbusers_admin, or dbusers_plan with --plan)")
	planLogin := fs.Bool("plan", false, "print the read-only login of the live plan (the cluster file's plan_secret) instead")
	var databases stringList
	fs.Var(&databases, "database", "a managed database (repeatable; default: the cluster's)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: dbusers admin-sql (--cluster NAME | --engine ENGINE --database DB...) [--user NAME] [--plan] [--root DIR]")
		fmt.Fprintln(fs.Output(), "\nPrints the SQL that creates the least-privileged account dbusers logs in as, or with --plan")
		fmt.Fprintln(fs.Output(), "the read-only login the live plan of a pull request uses (SELECT, PROCESS, SHOW VIEW; nothing that writes).")
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, e); !ok {
		return code
	}
	fail := func(format string, args ...any) int {
		fmt.Fprintf(e.stderr, "dbusers admin-sql: "+format+"\n", args...)
		return exitError
	}
	if fs.NArg() > 0 {
		return fail("unexpected argument %q", fs.Arg(0))
	}
	st, err := loadDesired(e, *root)
	if err != nil {
		return fail("%v", err)
	}
	if *user == "" {
		*user = "dbusers_admin"
		if *planLogin {
			*user = "dbusers_plan"
		}
	}
	in := adminsql.Input{Engine: *engine, User: *user, Databases: databases}
	if *cluster != "" {
		c, ok := st.Find(*cluster)
		if !ok {
			return fail("unknown cluster %q", *cluster)
		}
		if in.Engine == "" {
			in.Engine = c.Engine.Name
		}
		if len(in.Databases) == 0 {
			in.Databases = c.Databases
		}
		in.TLS = c.TLS
	}
	if in.Engine == "" {
		return fail("--engine or --cluster is required")
	}
	// Every privilege any role hands out, so every grant can be made.
	seen := map[string]bool{}
	for _, privs := range st.Roles {
		for _, p := range privs {
			seen[p] = true
		}
	}
	in.Privileges = slices.Sorted(maps.Keys(seen))
	script := adminsql.Script
	if *planLogin {
		script = adminsql.PlanScript
	}
	text, err := script(in)
	if err != nil {
		return fail("%v", err)
	}
	fmt.Fprint(e.stdout, text)
	return exitOK
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string { return fmt.Sprint([]string(*s)) }

func (s *stringList) Set(v string) error {
	*s = append(*s, v)
	return nil
}
