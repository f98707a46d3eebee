package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/diag"
)

func runValidate(_ context.Context, e env, args []string) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	root := fs.String("root", ".", "repository root holding dbusers.json, clusters/ and users/")
	format := fs.String("format", "text", "output format: text, json or github (workflow annotations)")
	strict := fs.Bool("strict", false, "fail on warnings too")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: dbusers validate [--root DIR] [--format text|json|github] [--strict]")
		fmt.Fprintln(fs.Output(), "\nChecks every declaration; prints each problem as path:line:col: message.")
		fmt.Fprintln(fs.Output(), "Exit status: 0 valid, 1 invalid, 2 usage or I/O error.")
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, e); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "dbusers validate: unexpected argument %q\n", fs.Arg(0))
		return exitError
	}
	f, err := diag.ParseFormat(*format)
	if err != nil {
		fmt.Fprintf(e.stderr, "dbusers validate: %v\n", err)
		return exitError
	}
	// Checked here so that a mistyped --root is a usage error (exit 2)
	// with a plain message, not a problem in the declarations.
	if fi, err := os.Stat(*root); err != nil {
		fmt.Fprintf(e.stderr, "dbusers validate: %v\n", err)
		return exitError
	} else if !fi.IsDir() {
		fmt.Fprintf(e.stderr, "dbusers validate: --root %s is not a directory\n", *root)
		return exitError
	}
	loaded, diags, err := config.LoadDir(*root, e.now())
	if err != nil {
		fmt.Fprintf(e.stderr, "dbusers validate: %v\n", err)
		return exitError
	}
	errs, warns := diags.Count()
	if f == diag.JSON {
		if diags == nil {
			diags = diag.List{}
		}
		out := struct {
			versioned
			Valid       bool      `json:"valid"`
			Errors      int       `json:"errors"`
			Warnings    int       `json:"warnings"`
			Clusters    int       `json:"clusters"`
			Users       int       `json:"users"`
			Diagnostics diag.List `json:"diagnostics"`
		}{newVersioned(), !diags.Failed(*strict), errs, warns, len(loaded.Config.Clusters), len(loaded.Config.Users), diags}
		if err := writeJSON(e, out); err != nil {
			fmt.Fprintf(e.stderr, "dbusers validate: %v\n", err)
			return exitError
		}
	} else if err := diags.Write(e.stdout, f); err != nil {
		fmt.Fprintf(e.stderr, "dbusers validate: %v\n", err)
		return exitError
	}
	if f != diag.JSON {
		fmt.Fprintf(e.stderr, "%d error(s), %d warning(s) in %d cluster(s) and %d user(s)\n",
			errs, warns, len(loaded.Config.Clusters), len(loaded.Config.Users))
	}
	if diags.Failed(*strict) {
		return exitChanges
	}
	return exitOK
}
