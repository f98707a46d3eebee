// Package adminsql writes the SQL that creates the management account
// dbusers logs in as on each cluster: the least privilege that still lets
// it create and drop managed accounts and hand out every privilege the
// role templates contain. A DBA runs it once per cluster; the account's
// password then goes into the cluster's admin secret.
package adminsql

import (
	"fmt"
	"slices"
	"strings"

	"github.com/dbusers/dbusers/bot/internal/flavor"
	"github.com/dbusers/dbusers/bot/internal/mysqlstate"
	"github.com/dbusers/dbusers/bot/internal/render"
)

// PasswordPlaceholder stands where the DBA puts the password generated for
// the admin secret; the SQL never carries a real one.
const PasswordPlaceholder = "<password from the admin secret>"

// Input says which account to create and what it must be able to grant.
type Input struct {
	Engine    string
	User      string   // management account name, e.g. dbusers_admin
	Databases []string // the databases the cluster file manages
	// Privileges are the database privileges the role templates hand out
	// (ALL PRIVILEGES allowed); the account needs each WITH GRANT OPTION.
	Privileges []string
	// TLS is the cluster's tls mode; only "disabled" drops REQUIRE SSL.
	TLS string
}

// check looks up the engine and checks the account name and databases.
func check(in Input) (flavor.Engine, error) {
	eng, ok := flavor.LookupEngine(in.Engine)
	if !ok || in.Engine == flavor.EmbeddedEngine {
		return eng, fmt.Errorf("unknown engine %q (want one of %s)", in.Engine, strings.Join(flavor.Engines(), ", "))
	}
	if in.User == "" {
		return eng, fmt.Errorf("no account name")
	}
	if err := render.CheckIdent(in.User); err != nil {
		return eng, fmt.Errorf("account name: %w", err)
	}
	if len(in.Databases) == 0 {
		return eng, fmt.Errorf("no databases: name the databases the cluster file manages")
	}
	return eng, nil
}

// Script returns the statements, each preceded by a comment saying why.
func Script(in Input) (string, error) {
	eng, err := check(in)
	if err != nil {
		return "", err
	}
	privs, err := eng.Flavor.Expand(in.Privileges)
	if err != nil {
		return "", err
	}
	acct := render.Account(mysqlstate.AccountID{User: in.User, Host: "%"})
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }

	line("-- dbusers management account for %s (%s).", in.Engine, describe(eng))
	line("-- Run as the cluster's master user. Generate a password, store it in the")
	line("-- cluster's admin secret as {\"username\": %q, \"password\": \"...\"},", in.User)
	line("-- and put it in place of the placeholder below.")
	line("")
	require := " REQUIRE SSL"
	if in.TLS == "disabled" {
		line("-- The cluster file disables TLS (a self-managed test server), so the account cannot require it.")
		require = ""
	} else {
		line("-- The bot connects over TLS only.")
	}
	line("-- IF NOT EXISTS: the script runs again unchanged after a new role template; an existing")
	line("-- account keeps its password and TLS requirement, and gets the grants below.")
	line("CREATE USER IF NOT EXISTS %s IDENTIFIED BY %s%s;", acct, render.Literal(PasswordPlaceholder), require)
	line("")
	line("-- CREATE USER lets it create, alter (authentication) and drop accounts; nothing else global.")
	line("GRANT CREATE USER ON *.* TO %s;", acct)
	line("")
	line("-- Reading the live state in bulk: account and grant tables of the mysql schema.")
	for _, table := range eng.Flavor.GrantTables() {
		line("GRANT SELECT ON %s.%s TO %s;", render.Ident("mysql"), render.Ident(table), acct)
	}
	line("")
	line("-- To grant and revoke a privilege on a database, the grantor must hold it there WITH GRANT OPTION.")
	line("-- These are the privileges the role templates of dbusers.json hand out (%d).", len(privs))
	wildcard := eng.Flavor.WildcardDatabaseNames(eng.PartialRevokes)
	for _, db := range slices.Sorted(slices.Values(in.Databases)) {
		list := strings.Join(privs, ", ")
		if eng.Flavor.IsAll(privs) {
			list = "ALL PRIVILEGES"
		}
		line("GRANT %s ON %s.* TO %s WITH GRANT OPTION;", list, render.Ident(flavor.DatabasePattern(db, wildcard)), acct)
	}
	sessionsAndDefiners(line, eng, acct, in.Databases, wildcard)
	if eng.Flavor.Roles() == flavor.RolesAsAccounts {
		line("")
		line("-- Not granted: ROLE_ADMIN, which dbusers needs only to revoke roles someone granted to a")
		line("-- managed account by hand. It lets its holder grant any role, so it is left to a DBA to add.")
	}
	if eng.IAM {
		line("")
		line("-- On RDS and Aurora, keep this account out of rds_superuser_role: it needs none of it.")
		line("-- IAM users are created WITH AWSAuthenticationPlugin, which CREATE USER allows.")
	}
	line("")
	line("-- Add the account to protected_accounts in dbusers.json if its name starts with the prefix.")
	return b.String(), nil
}

// sessionsAndDefiners writes the grants that ending sessions and reading
// definers need, each with why.
func sessionsAndDefiners(line func(string, ...any), eng flavor.Engine, acct string, databases []string, wildcard bool) {
	line("")
	line("-- Ending the open sessions of an account that loses access: PROCESS shows every session in")
	line("-- information_schema.PROCESSLIST (without it a login sees only its own).")
	line("GRANT PROCESS ON *.* TO %s;", acct)
	switch priv := eng.Flavor.SessionAdminPrivilege(); {
	case eng.RDS:
		line("-- On RDS and Aurora the master user has no SUPER (nor, on most versions, CONNECTION_ADMIN), so")
		line("-- dbusers ends sessions with mysql.rds_kill, the procedure RDS provides for it.")
		line("GRANT EXECUTE ON PROCEDURE %s.%s TO %s;", render.Ident("mysql"), render.Ident("rds_kill"), acct)
	case priv != "":
		line("-- %s lets KILL end another account's session (without it, only its own).", priv)
		line("GRANT %s ON *.* TO %s;", priv, acct)
	default:
		line("-- Not granted: SUPER, the only privilege with which %s lets KILL end another account's", eng.Flavor.Product()+" "+eng.Series)
		line("-- session. It gives far more; grant it yourself, or set end_sessions to false in dbusers.json.")
	}
	line("")
	line("-- Reading the definers of stored objects before an account is dropped (one that still owns")
	line("-- some is locked instead): views, triggers and events show in information_schema to a login with")
	line("-- SHOW VIEW, TRIGGER and EVENT on their database, routines with:")
	switch priv, table := eng.Flavor.RoutineReader(); {
	case priv != "":
		line("GRANT %s ON *.* TO %s;", priv, acct)
	case table != "":
		line("GRANT SELECT ON %s.%s TO %s;", render.Ident("mysql"), render.Ident(table), acct)
	}
	for _, db := range slices.Sorted(slices.Values(databases)) {
		line("GRANT SHOW VIEW, TRIGGER, EVENT ON %s.* TO %s;", render.Ident(flavor.DatabasePattern(db, wildcard)), acct)
	}
}

func describe(e flavor.Engine) string {
	switch {
	case e.Aurora:
		return "Aurora, " + string(e.Flavor)
	case e.IAM:
		return "RDS, " + string(e.Flavor)
	}
	return "self-managed, " + string(e.Flavor)
}

// PlanPasswordPlaceholder stands where the DBA puts the plan login's
// password.
const PlanPasswordPlaceholder = "<password from the plan secret>"

// PlanScript returns the statements that create the read-only login of the
// live plan (a cluster file's plan_secret): SELECT on the grant tables,
// PROCESS to see the sessions a merge would end, and the read-only half of
// what reading definers needs. Nothing it is granted writes: no CREATE
// USER, no GRANT OPTION, and neither TRIGGER nor EVENT (the only privileges
// that show triggers' and events' definers also create and drop them), so
// a plan made with it shows an account that defines only a trigger or an
// event as dropped where the run locks it. in.Privileges is not used.
func PlanScript(in Input) (string, error) {
	eng, err := check(in)
	if err != nil {
		return "", err
	}
	acct := render.Account(mysqlstate.AccountID{User: in.User, Host: "%"})
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("-- dbusers plan login for %s (%s): the read-only login of the live plan", in.Engine, describe(eng))
	line("-- on pull requests. Run as the cluster's master user. Generate a password, store it in a")
	line("-- secret as {\"username\": %q, \"password\": \"...\"}, name that secret as plan_secret", in.User)
	line("-- in the cluster file, and put the password in place of the placeholder below.")
	line("-- Nothing granted here can change anything: no CREATE USER, no GRANT OPTION, no writes.")
	line("")
	require := " REQUIRE SSL"
	if in.TLS == "disabled" {
		line("-- The cluster file disables TLS (a self-managed test server), so the account cannot require it.")
		require = ""
	}
	line("-- IF NOT EXISTS: the script runs again unchanged; an existing login keeps its password.")
	line("CREATE USER IF NOT EXISTS %s IDENTIFIED BY %s%s;", acct, render.Literal(PlanPasswordPlaceholder), require)
	line("")
	line("-- Reading the live state, as a run does: the account and grant tables of the mysql schema.")
	for _, table := range eng.Flavor.GrantTables() {
		line("GRANT SELECT ON %s.%s TO %s;", render.Ident("mysql"), render.Ident(table), acct)
	}
	line("")
	line("-- The sessions a merge would end: PROCESS shows every session in information_schema.PROCESSLIST.")
	line("-- It reads; it cannot end one.")
	line("GRANT PROCESS ON *.* TO %s;", acct)
	line("")
	line("-- Definers of views and routines, which a run reads before it drops an account:")
	switch priv, table := eng.Flavor.RoutineReader(); {
	case priv != "":
		line("GRANT %s ON *.* TO %s;", priv, acct)
	case table != "":
		line("GRANT SELECT ON %s.%s TO %s;", render.Ident("mysql"), render.Ident(table), acct)
	}
	wildcard := eng.Flavor.WildcardDatabaseNames(eng.PartialRevokes)
	for _, db := range slices.Sorted(slices.Values(in.Databases)) {
		line("GRANT SHOW VIEW ON %s.* TO %s;", render.Ident(flavor.DatabasePattern(db, wildcard)), acct)
	}
	line("")
	line("-- Not granted: TRIGGER and EVENT, which show the definers of triggers and events but also")
	line("-- create and drop them. The live plan shows an account that defines only a trigger or an")
	line("-- event as dropped; the run, with the management account, sees it and locks it instead.")
	line("")
	line("-- Add the account to protected_accounts in dbusers.json if its name starts with the prefix.")
	return b.String(), nil
}
