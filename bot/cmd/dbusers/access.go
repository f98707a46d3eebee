package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/dbusers/dbusers/bot/internal/access"
	"github.com/dbusers/dbusers/bot/internal/config"
)

func runAccess(_ context.Context, e env, args []string) int {
	fs := flag.NewFlagSet("access", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	root := fs.String("root", ".", "repository root holding dbusers.json, clusters/ and users/")
	user := fs.String("user", "", "show what this user can reach")
	cluster := fs.String("cluster", "", "show who can reach this cluster")
	database := fs.String("database", "", "with --cluster: only this database")
	format := fs.String("format", "text", "output format: text or json")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: dbusers access (--user NAME | --cluster NAME [--database DB]) [--format text|json] [--root DIR]")
		fmt.Fprintln(fs.Output(), "\nFrom the declarations alone: each cluster and database a user can reach, with which role and")
		fmt.Fprintln(fs.Output(), "until when; or every user with access to a cluster (or one of its databases), by role.")
		fmt.Fprintln(fs.Output(), "Environments and \"*\" are expanded; expired entries are shown as expired. Exit status: 0, or 2 on error.")
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, e); !ok {
		return code
	}
	fail := func(format string, args ...any) int {
		fmt.Fprintf(e.stderr, "dbusers access: "+format+"\n", args...)
		return exitError
	}
	switch {
	case fs.NArg() > 0:
		return fail("unexpected argument %q", fs.Arg(0))
	case (*user == "") == (*cluster == ""):
		return fail("give one of --user or --cluster")
	case *database != "" && *cluster == "":
		return fail("--database needs --cluster")
	case *format != "text" && *format != "json":
		return fail("unknown format %q (want text or json)", *format)
	}
	loaded, diags, err := config.LoadDir(*root, e.now())
	if err != nil {
		return fail("%v", err)
	}
	if errs := diags.Errors(); len(errs) > 0 {
		_ = errs.Write(e.stderr, "text")
		return fail("the declarations have %d error(s); run dbusers validate", len(errs))
	}
	idx, err := access.New(loaded.Config.Declarations(), e.now())
	if err != nil {
		return fail("%v", err)
	}
	var rep *access.Report
	if *user != "" {
		rep, err = idx.ForUser(*user)
	} else {
		rep, err = idx.ForCluster(*cluster, *database)
	}
	if err != nil {
		return fail("%v", err)
	}
	if *format == "json" {
		if err := writeJSON(e, struct {
			versioned
			*access.Report
		}{newVersioned(), rep}); err != nil {
			return fail("%v", err)
		}
		return exitOK
	}
	if *user != "" {
		userText(e.stdout, rep)
	} else {
		clusterText(e.stdout, rep)
	}
	return exitOK
}

// until says how long an entry holds.
func until(en access.Entry) string {
	switch {
	case en.Status == access.Expired:
		return "expired " + en.Expires
	case en.Expires != "":
		return "until " + en.Expires
	}
	return "no expiry"
}

func userText(w io.Writer, r *access.Report) {
	if len(r.Entries) == 0 {
		fmt.Fprintf(w, "%s has no access on any cluster (on %s)\n", r.User, r.Date)
		return
	}
	first := r.Entries[0]
	fmt.Fprintf(w, "%s (%s, %s, %s, %s authentication), on %s:\n", r.User, first.Account, first.Kind, first.Owner, first.Auth, r.Date)
	rows := [][]string{{"cluster", "environment", "database", "role", "holds"}}
	for _, en := range r.Entries {
		env := en.Environment
		if en.Production {
			env += " (production)"
		}
		rows = append(rows, []string{en.Cluster, env, en.Database, en.Role, until(en)})
	}
	table(w, rows)
}

func clusterText(w io.Writer, r *access.Report) {
	where := r.Cluster
	if r.DB != "" {
		where += "/" + r.DB
	}
	users := map[string]bool{}
	for _, en := range r.Entries {
		users[en.User] = true
	}
	fmt.Fprintf(w, "%s, on %s: %d user(s)\n", where, r.Date, len(users))
	var db, role string
	var names []string
	flush := func() {
		if len(names) > 0 {
			fmt.Fprintf(w, "    %s: %s\n", role, strings.Join(names, ", "))
		}
		names = nil
	}
	for _, en := range r.Entries {
		if en.Database != db {
			flush()
			db, role = en.Database, ""
			fmt.Fprintf(w, "  %s\n", db)
		}
		if en.Role != role {
			flush()
			role = en.Role
		}
		name := en.User
		if en.Expires != "" {
			name += " (" + until(en) + ")"
		}
		names = append(names, name)
	}
	flush()
}

// table writes rows in aligned columns.
func table(w io.Writer, rows [][]string) {
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	for _, r := range rows {
		var b strings.Builder
		b.WriteString(" ")
		for i, c := range r {
			b.WriteString(" ")
			b.WriteString(c)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-len([]rune(c))+1))
			}
		}
		fmt.Fprintln(w, b.String())
	}
}
