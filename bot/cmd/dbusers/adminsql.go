package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/dbusers/dbusers/bot/internal/adminsql"
	"github.com/dbusers/dbusers/bot/internal/render"
)

func runAdminSQL(_ context.Context, e env, args []string) int {
	fs := flag.NewFlagSet("admin-sql", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	root := fs.String("root", ".", "repository root")
	engine := fs.String("engine", "", "engine, e.g. aurora-mysql-3 (default: the cluster's)")
	cluster := fs.String("cluster", "", "cluster file to take the engine, databases and TLS mode from")
	user := fs.String("user", "", "name of the account (default: dbusers_admin, or dbusers_plan with --plan)")
	planLogin := fs.Bool("plan", false, "print the read-only login of the live plan (the cluster file's plan_secret) instead")
	secretFile := fs.String("secret-file", "", "the login's secret JSON ({\"username\": ..., \"password\": ...}, as Secrets Manager holds it), or - for standard input: its password replaces the placeholder, so the SQL can be piped to the mysql client without anyone typing the password")
	var databases stringList
	fs.Var(&databases, "database", "a managed database (repeatable; default: the cluster's)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: dbusers admin-sql (--cluster NAME | --engine ENGINE --database DB...) [--user NAME] [--plan] [--secret-file FILE|-] [--root DIR]")
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
	var secret *adminLogin
	if *secretFile != "" {
		if secret, err = readLoginSecret(e, *secretFile); err != nil {
			return fail("%v", err)
		}
		if *user != "" && *user != secret.Username {
			return fail("--user %s, but the secret's username is %s", *user, secret.Username)
		}
		*user = secret.Username
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
	if secret != nil {
		placeholder := adminsql.PasswordPlaceholder
		if *planLogin {
			placeholder = adminsql.PlanPasswordPlaceholder
		}
		text = strings.ReplaceAll(text, render.Literal(placeholder), render.Literal(secret.Password))
	}
	fmt.Fprint(e.stdout, text)
	return exitOK
}

// adminLogin is a login's secret as Secrets Manager holds it.
type adminLogin struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// readLoginSecret reads {"username": ..., "password": ...} from a file or
// standard input ("-"). Its errors never quote the secret.
func readLoginSecret(e env, path string) (*adminLogin, error) {
	var data []byte
	var err error
	if path == "-" {
		if e.stdin == nil {
			return nil, errors.New("--secret-file -: no standard input")
		}
		data, err = io.ReadAll(io.LimitReader(e.stdin, 1<<16))
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("secret file: %w", err)
	}
	var l adminLogin
	if json.Unmarshal(data, &l) != nil || l.Username == "" || l.Password == "" {
		return nil, errors.New("secret file: want a JSON object with username and password (the secret's value, as Secrets Manager returns it)")
	}
	return &l, nil
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string { return fmt.Sprint([]string(*s)) }

func (s *stringList) Set(v string) error {
	*s = append(*s, v)
	return nil
}
