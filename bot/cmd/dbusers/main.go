// Command dbusers is the command-line tool that pull-request workflows and
// people run: it validates declarations, plans changes and reconciles a
// cluster. It stays free of heavy dependencies so that a cold build on every
// pull request is quick; the embedded demo server lives in bot/cmd/demo.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/dbusers/dbusers/bot/internal/ssmbundle"
	"github.com/dbusers/dbusers/bot/internal/suggest"
)

// Exit codes carry meaning, as with diff: 0 nothing to report, 1 problems or
// changes found, 2 the command itself failed.
const (
	exitOK      = 0
	exitChanges = 1
	exitError   = 2
)

// env is what a command needs from its process, passed in so tests run
// commands in-process.
type env struct {
	stdout, stderr io.Writer
	// stdin is what "-" reads (admin-sql --secret-file -).
	stdin  io.Reader
	now    func() time.Time
	getenv func(string) string
	// newSSM returns the SSM client that publish writes with, and newKMS
	// the KMS client it signs with; tests point them at an emulator.
	newSSM func(ctx context.Context) (ssmbundle.API, error)
	newKMS func(ctx context.Context) (ssmbundle.KMSAPI, error)
	// newLambda returns the client the live plan invokes with.
	newLambda func(ctx context.Context) (InvokeAPI, error)
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e env, args []string) int
}

func commands() []command {
	return []command{
		{"validate", "check every declaration against the schemas and rules", runValidate},
		{"plan", "show what a pull request changes, user by user, risks first", runPlan},
		{"comment", "post the plan as one sticky pull-request comment", runComment},
		{"admin-sql", "print the SQL that creates the bot's least-privileged management account", runAdminSQL},
		{"reconcile", "plan, and with --confirm apply, the changes for one cluster", runReconcile},
		{"publish", "write the declarations to SSM Parameter Store for the Lambda", runPublish},
		{"access", "show what a user can reach, or who can reach a cluster, from the declarations", runAccess},
		{"import", "propose the user files that reproduce a live cluster's accounts (adopting a fleet)", runImport},
		{"inventory", "list a live cluster's accounts: the managed ones and those no declaration covers", runInventory},
		{"rollout", "wait for a published version's rollout and report it (on the pull request and the commit)", runRollout},
		{"version", "print the version and the commit dbusers was built from", runVersion},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := env{stdout: os.Stdout, stderr: os.Stderr, stdin: os.Stdin, now: time.Now, getenv: os.Getenv, newSSM: newSSMClient, newKMS: newKMSClient, newLambda: newLambdaClient}
	os.Exit(run(ctx, e, os.Args[1:]))
}

func run(ctx context.Context, e env, args []string) int {
	if len(args) == 0 {
		usage(e.stderr)
		return exitError
	}
	switch args[0] {
	case "-h", "-help", "--help":
		usage(e.stdout)
		return exitOK
	case "help":
		if len(args) > 1 {
			// "dbusers help plan" is "dbusers plan -h".
			return run(ctx, e, []string{args[1], "-h"})
		}
		usage(e.stdout)
		return exitOK
	case "-version", "--version":
		return runVersion(ctx, e, nil)
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, e, args[1:])
		}
	}
	fmt.Fprintf(e.stderr, "dbusers: unknown command %q%s\n\n", args[0], didYouMean(args[0], commandNames()))
	usage(e.stderr)
	return exitError
}

func commandNames() []string {
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	return names
}

// didYouMean suggests the nearest of names, or says nothing.
func didYouMean(s string, names []string) string {
	if n, ok := suggest.Nearest(s, names); ok {
		return fmt.Sprintf(" (did you mean %q?)", n)
	}
	return ""
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: dbusers <command> [flags]")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'dbusers help <command>' (or 'dbusers <command> -h') for a command's flags.")
}

// runVersion prints the module version and the commit dbusers was built
// from, as the Go toolchain recorded them.
func runVersion(_ context.Context, e env, args []string) int {
	if len(args) > 0 {
		fmt.Fprintf(e.stderr, "dbusers version: unexpected argument %q\n", args[0])
		return exitError
	}
	fmt.Fprintln(e.stdout, versionString(debug.ReadBuildInfo()))
	return exitOK
}

// versionString renders build information: "dbusers v1.2.3 (commit
// 0123456789ab, 2026-12-04T03:00:00Z, modified) go1.26.8".
func versionString(info *debug.BuildInfo, ok bool) string {
	if !ok {
		return "dbusers (no build information)"
	}
	version := info.Main.Version
	if version == "" {
		version = "(devel)"
	}
	var commit, at string
	modified := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			commit = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	out := "dbusers " + version
	if commit != "" {
		if len(commit) > 12 {
			commit = commit[:12]
		}
		details := []string{"commit " + commit}
		if at != "" {
			details = append(details, at)
		}
		if modified {
			details = append(details, "modified")
		}
		out += " (" + strings.Join(details, ", ") + ")"
	}
	return out + " " + info.GoVersion
}

// buildVersion is the module version and commit dbusers was built from,
// for the "version" and "commit" fields of every JSON output.
func buildVersion() (version, commit string) {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)", ""
	}
	version = info.Main.Version
	if version == "" {
		version = "(devel)"
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" {
			commit = s.Value
		}
	}
	return version, commit
}

// versioned is the head every JSON output starts with: which dbusers made
// it. A reader checks it before it trusts the rest's shape. (The names
// keep clear of "version", which in dbusers means a published
// configuration's version.)
type versioned struct {
	Version string `json:"dbusers_version"`
	Commit  string `json:"dbusers_commit,omitempty"`
}

func newVersioned() versioned {
	v, c := buildVersion()
	return versioned{Version: v, Commit: c}
}

// parseFlags parses a command's flags. It returns ok false with the exit
// code when the command must stop: 0 after -h (help was asked for: it goes
// to stdout, so that "dbusers plan -h | less" works), 2 for a bad flag
// (the flag package has printed why, and this adds the flag meant).
func parseFlags(fs *flag.FlagSet, args []string, e env) (code int, ok bool) {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "-help" || a == "--help" {
			fs.SetOutput(e.stdout)
			fs.Usage()
			return exitOK, false
		}
	}
	err := fs.Parse(args)
	switch {
	case err == nil:
		return exitOK, true
	case errors.Is(err, flag.ErrHelp):
		return exitOK, false
	}
	const undefined = "flag provided but not defined: -"
	if msg := err.Error(); strings.HasPrefix(msg, undefined) {
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		if hint := didYouMean(strings.TrimPrefix(msg, undefined), names); hint != "" {
			fmt.Fprintf(e.stderr, "dbusers %s: --%s is not a flag%s\n", fs.Name(), strings.TrimPrefix(msg, undefined), hint)
		}
	}
	return exitError, false
}
