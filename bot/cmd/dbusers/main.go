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
	"syscall"
	"time"

	"github.com/dbusers/dbusers/bot/internal/ssmbundle"
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
	now            func() time.Time
	getenv         func(string) string
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
		{"rollout", "wait for a published version's rollout and report it (on the pull request and the commit)", runRollout},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := env{stdout: os.Stdout, stderr: os.Stderr, now: time.Now, getenv: os.Getenv, newSSM: newSSMClient, newKMS: newKMSClient, newLambda: newLambdaClient}
	os.Exit(run(ctx, e, os.Args[1:]))
}

func run(ctx context.Context, e env, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(e.stderr)
		if len(args) == 0 {
			return exitError
		}
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, e, args[1:])
		}
	}
	fmt.Fprintf(e.stderr, "dbusers: unknown command %q\n\n", args[0])
	usage(e.stderr)
	return exitError
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: dbusers <command> [flags]")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'dbusers <command> -h' for a command's flags.")
}

// parseFlags parses a command's flags. It returns ok false with the exit
// code when the command must stop: 0 after -h (help was asked for), 2 for a
// bad flag (the flag package has printed why).
func parseFlags(fs *flag.FlagSet, args []string) (code int, ok bool) {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return exitOK, true
	case errors.Is(err, flag.ErrHelp):
		return exitOK, false
	}
	return exitError, false
}
