package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/dbconn"
	"github.com/dbusers/dbusers/bot/internal/desired"
	"github.com/dbusers/dbusers/bot/internal/importer"
	"github.com/dbusers/dbusers/bot/internal/mysqlstate"
)

func runImport(ctx context.Context, e env, args []string) int {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	root := fs.String("root", ".", "repository root holding dbusers.json, clusters/ and users/")
	clusterName := fs.String("cluster", "", "cluster to import (required)")
	var inv inventoryFlags
	inv.register(fs)
	secretsFile := fs.String("secrets", "", "JSON file of password secrets ({\"dbusers/app\": {\"password\": \"...\"}}): with it, the check compares passwords too")
	write := fs.Bool("write", false, "write the files; without it, print what would be written")
	format := fs.String("format", "text", "output format: text or json")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: dbusers import --cluster NAME [--dsn DSN | --from-lambda FUNCTION] [--secrets FILE] [--write] [--format text|json] [--root DIR]")
		fmt.Fprintln(fs.Output(), "\nReads a live cluster and proposes the user files (and role templates) that reproduce its managed")
		fmt.Fprintln(fs.Output(), "accounts' access as it is: new files, and entries added to existing ones (never removed). What no")
		fmt.Fprintln(fs.Output(), "declaration can say is listed per account. It only reads the server.")
		fmt.Fprintln(fs.Output(), "Exit status: 0 nothing to import, or written with --write; 1 files would change; 2 error.")
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, e); !ok {
		return code
	}
	fail := func(format string, args ...any) int {
		fmt.Fprintf(e.stderr, "dbusers import: "+format+"\n", args...)
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
	if inv.fromLambda != "" && *secretsFile != "" {
		return fail("--secrets with --from-lambda: the function never returns password hashes, so passwords cannot be compared")
	}
	loaded, diags, err := config.LoadDir(*root, e.now())
	if err != nil {
		return fail("%v", err)
	}
	if errs := diags.Errors(); len(errs) > 0 {
		_ = errs.Write(e.stderr, "text")
		return fail("the declarations have %d error(s); run dbusers validate", len(errs))
	}
	cfg := &loaded.Config
	var prefix string
	if prefix = cfg.Settings.Prefix; prefix == "" {
		return fail("dbusers.json has no prefix")
	}
	files := map[string][]byte{}
	for _, u := range cfg.Users {
		data, err := os.ReadFile(filepath.Join(*root, config.UsersDir, u.Name+".json"))
		if err != nil {
			return fail("user %s: %v (import extends users/<name>.json)", u.Name, err)
		}
		files[u.Name] = data
	}
	settings, err := os.ReadFile(filepath.Join(*root, config.SettingsFile))
	if err != nil {
		return fail("%v", err)
	}
	var passwords map[string]string
	if *secretsFile != "" {
		if passwords, err = readSecretsFile(*secretsFile); err != nil {
			return fail("%v", err)
		}
	}

	st, err := loadDesired(e, *root)
	if err != nil {
		return fail("%v", err)
	}
	var srv *mysqlstate.Server
	if ic, err := readInventory(ctx, e, inv, *clusterName); err == nil {
		srv = ic.Live()
	} else if !errors.Is(err, errNeedsState) {
		return fail("%v", err)
	} else if srv, err = readLive(ctx, cmp.Or(inv.dsn, e.getenv("DBUSERS_DSN")), *clusterName, st.Prefix, connectProgress(e, "import")); err != nil {
		return fail("%v", err)
	}
	res, err := importer.Import(importer.Input{Config: cfg, Files: files, Settings: settings, Cluster: *clusterName,
		Server: srv, Passwords: passwords, Today: e.now()})
	if err != nil {
		return fail("%v", err)
	}
	if *write {
		for _, f := range res.Files {
			if err := writeFile(filepath.Join(*root, filepath.FromSlash(f.Path)), f.New); err != nil {
				return fail("%v", err)
			}
		}
		if res.Settings != nil {
			if err := writeFile(filepath.Join(*root, config.SettingsFile), res.Settings); err != nil {
				return fail("%v", err)
			}
		}
	}
	if *format == "json" {
		if err := writeJSON(e, struct {
			versioned
			*importer.Result
		}{newVersioned(), res}); err != nil {
			return fail("%v", err)
		}
	} else {
		importText(e.stdout, res, *write)
	}
	if *write {
		// What was written must validate: say so now, not in the PR.
		if _, diags, err := config.LoadDir(*root, e.now()); err != nil || len(diags.Errors()) > 0 {
			if err == nil {
				_ = diags.Errors().Write(e.stderr, "text")
			}
			return fail("the files written do not validate (%v); this is a bug, please report it", err)
		}
		return exitOK
	}
	if len(res.Files) > 0 || res.Settings != nil {
		return exitChanges
	}
	return exitOK
}

// writeFile replaces a file's content through a temporary file.
func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".dbusers-import"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func importText(w io.Writer, r *importer.Result, written bool) {
	verb := "to write"
	if written {
		verb = "written"
	}
	fmt.Fprintf(w, "dbusers import from %s: %d file(s) %s, %d account(s) already declared as they are\n",
		r.Cluster, len(r.Files), verb, r.Covered)
	for _, f := range r.Files {
		if f.Created {
			fmt.Fprintf(w, "\n+++ %s (new, %s)\n", f.Path, f.Account)
			for _, l := range strings.SplitAfter(string(f.New), "\n") {
				if l != "" {
					fmt.Fprint(w, "+ "+l)
				}
			}
			continue
		}
		fmt.Fprintf(w, "\n~~~ %s (%s): entries added\n", f.Path, f.Account)
		for _, a := range f.Added {
			fmt.Fprintf(w, "+     %s\n", a)
		}
	}
	if len(r.Roles) > 0 {
		fmt.Fprintf(w, "\n~~~ dbusers.json: role templates %s (no role matches these privileges exactly; rename and describe them)\n", verb)
		for _, role := range r.Roles {
			ext := ""
			if len(role.Extends) > 0 {
				ext = strings.Join(role.Extends, ", ") + " + "
			}
			fmt.Fprintf(w, "+   %s: %s%s (for %s)\n", role.Name, ext, strings.Join(role.Privileges, ", "), strings.Join(role.Accounts, ", "))
		}
	}
	if len(r.Secrets) > 0 {
		fmt.Fprintln(w, "\nPassword secrets to create, each with the account's CURRENT password: the server holds only its hash,")
		fmt.Fprintln(w, "and a secret with another password makes the first run change the password (and break its clients).")
		for _, s := range r.Secrets {
			fmt.Fprintf(w, "  %s  {\"password\": \"...\"}  for %s\n", s.Ref, s.Account)
		}
	}
	if len(r.Leftovers) > 0 {
		fmt.Fprintln(w, "\nWhat no declaration can say (for a person to decide):")
		for _, l := range r.Leftovers {
			fmt.Fprintf(w, "  %s\n", l.Account)
			for _, what := range l.What {
				fmt.Fprintf(w, "    - %s\n", what)
			}
		}
	}
	var b bytes.Buffer
	if len(r.Remaining) > 0 {
		fmt.Fprintln(&b, "\nOnce this is merged, a run still changes these imported accounts:")
		for _, s := range r.Remaining {
			fmt.Fprintf(&b, "  - %s\n", s)
		}
	} else {
		fmt.Fprintln(&b, "\nOnce this is merged, a run changes nothing on the imported accounts.")
	}
	_, _ = w.Write(b.Bytes())
}

// readLive reads a cluster's managed accounts through a DSN, credentials
// included (an import then compares passwords too).
func readLive(ctx context.Context, dsn, cluster string, prefix desired.Prefix, progress func(string)) (*mysqlstate.Server, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	db, err := dbconn.OpenDSN(ctx, cluster, dsn, progress)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", cluster, err)
	}
	defer conn.Close()
	srv, err := mysqlstate.Read(ctx, conn, prefix)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: read live state: %w", cluster, err)
	}
	return srv, nil
}
