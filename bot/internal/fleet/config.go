package fleet

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/rdstls"
	"github.com/dbusers/dbusers/bot/internal/ssmbundle"
)

// The environment variables the Lambda reads, besides the standard AWS ones
// (AWS_REGION, credentials, AWS_ENDPOINT_URL, AWS_LAMBDA_*).
const (
	// EnvPointer is the SSM pointer parameter's name (required).
	EnvPointer = "DBUSERS_POINTER_PARAMETER"
	// EnvSNSTopic is the ARN of the topic alerted when a cluster fails, a
	// safety limit trips or the bundle cannot be read. Empty: no message.
	EnvSNSTopic = "DBUSERS_SNS_TOPIC_ARN"
	// EnvConcurrency bounds how many clusters reconcile at once (default:
	// dbusers.json's concurrency, else DefaultConcurrency).
	EnvConcurrency = "DBUSERS_CONCURRENCY"
	// EnvCABundle names a PEM file that replaces the embedded RDS CA bundle.
	EnvCABundle = rdstls.EnvBundle
	// EnvDryRun set to "true" forces every run to be a dry run, whatever
	// the event says: a global safety switch.
	EnvDryRun = "DBUSERS_DRY_RUN"
	// EnvLockTimeout bounds the wait for another run's lock on a server, as
	// a Go duration ("45s") or whole seconds ("45"); default 30 s.
	EnvLockTimeout = "DBUSERS_LOCK_TIMEOUT"
	// EnvManagedAccounts lists, comma-separated, the AWS account ids this
	// deployment manages. A cluster in any other account is refused before
	// any credential is asked for. Empty: every account the bundle names
	// (the target roles' trust policies are then the only gate).
	EnvManagedAccounts = "DBUSERS_MANAGED_ACCOUNTS"
	// EnvSigningKey is the ARN of the KMS key whose signature a bundle's
	// pointer must carry (the control-plane stack's SigningKey). Required
	// unless EnvAllowUnsigned is true.
	EnvSigningKey = "DBUSERS_SIGNING_KEY_ARN"
	// EnvAllowUnsigned set to "true" accepts a bundle without a signature,
	// for the move to signed bundles only: every run that uses an unsigned
	// bundle logs a warning and counts MetricUnsignedBundles, which alarms.
	// A signature that is present must verify regardless.
	EnvAllowUnsigned = "DBUSERS_ALLOW_UNSIGNED"
	// EnvPlanOnly set to "true" makes the function the plan function: it
	// answers plan invokes and refuses every other event, so that the PR
	// workflow's plan role, which may invoke only it, cannot start a run.
	EnvPlanOnly = "DBUSERS_PLAN_ONLY"
)

// EnvVars lists every DBUSERS_* variable the Lambda reads, so a deployment
// template test can check it sets only these (and all the required ones).
var EnvVars = []string{EnvPointer, EnvSNSTopic, EnvConcurrency, EnvCABundle, EnvDryRun, EnvLockTimeout, EnvManagedAccounts,
	EnvSigningKey, EnvAllowUnsigned, EnvPlanOnly}

// RequiredEnvVars are the variables without which the Lambda refuses to start.
var RequiredEnvVars = []string{EnvPointer}

// DefaultConcurrency is the bound on concurrent clusters when neither the
// environment nor dbusers.json sets one.
const DefaultConcurrency = 8

// Config is the Lambda's configuration, from its environment.
type Config struct {
	// Pointer is the SSM pointer parameter.
	Pointer string
	// SNSTopicARN receives alerts; empty disables them.
	SNSTopicARN string
	// Concurrency overrides the settings' bound when positive.
	Concurrency int
	// ForceDryRun makes every run a dry run (and, on the plan function,
	// says that merging only plans).
	ForceDryRun bool
	// PlanOnly refuses every event but a plan invoke.
	PlanOnly bool
	// LockTimeout is passed to the engine; zero means its default.
	LockTimeout time.Duration
	// Roots verifies servers in the verify-identity and verify-ca modes.
	Roots *x509.CertPool
	// RootsSource says where Roots came from ("embedded" or a path).
	RootsSource string
	// ManagedAccounts are the account ids clusters may be in; nil allows
	// every account.
	ManagedAccounts map[string]bool
	// SigningKeyARN is the KMS key a bundle must be signed with; empty
	// only with AllowUnsigned.
	SigningKeyARN string
	// AllowUnsigned accepts unsigned bundles (with a warning and a metric).
	AllowUnsigned bool
}

// Manages reports whether the deployment may act in account id.
func (c Config) Manages(id string) bool {
	return c.ManagedAccounts == nil || c.ManagedAccounts[id]
}

// ConfigFromEnv reads the configuration; getenv is os.Getenv in the Lambda.
// Every problem is reported at once.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	var cfg Config
	var problems []string
	cfg.Pointer = strings.TrimSpace(getenv(EnvPointer))
	if cfg.Pointer == "" {
		problems = append(problems, EnvPointer+" is not set (the SSM pointer parameter, e.g. /dbusers/config)")
	}
	cfg.SNSTopicARN = strings.TrimSpace(getenv(EnvSNSTopic))
	if v := strings.TrimSpace(getenv(EnvConcurrency)); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 256 {
			problems = append(problems, fmt.Sprintf("%s=%q: want a whole number from 1 to 256", EnvConcurrency, v))
		}
		cfg.Concurrency = n
	}
	for _, b := range []struct {
		name string
		dst  *bool
	}{{EnvDryRun, &cfg.ForceDryRun}, {EnvAllowUnsigned, &cfg.AllowUnsigned}, {EnvPlanOnly, &cfg.PlanOnly}} {
		switch v := strings.ToLower(strings.TrimSpace(getenv(b.name))); v {
		case "", "false", "0", "no":
		case "true", "1", "yes":
			*b.dst = true
		default:
			problems = append(problems, fmt.Sprintf("%s=%q: want true or false", b.name, v))
		}
	}
	cfg.SigningKeyARN = strings.TrimSpace(getenv(EnvSigningKey))
	switch {
	case cfg.SigningKeyARN != "" && !ssmbundle.ValidKeyARN(cfg.SigningKeyARN):
		problems = append(problems, fmt.Sprintf("%s=%q: want the ARN of a KMS key (arn:aws:kms:<region>:<account>:key/<id>), not an alias", EnvSigningKey, cfg.SigningKeyARN))
	case cfg.SigningKeyARN == "" && !cfg.AllowUnsigned:
		problems = append(problems, EnvSigningKey+" is not set (the control-plane stack's signing key, which dbusers publish signs bundles with); "+
			"only "+EnvAllowUnsigned+"=true, while moving to signed bundles, runs without one")
	}
	if v := strings.TrimSpace(getenv(EnvLockTimeout)); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			if n, aerr := strconv.Atoi(v); aerr == nil {
				d, err = time.Duration(n)*time.Second, nil
			}
		}
		if err != nil || d < time.Second || d > 15*time.Minute {
			problems = append(problems, fmt.Sprintf("%s=%q: want a duration from 1s to 15m (\"45s\" or \"45\")", EnvLockTimeout, v))
		}
		cfg.LockTimeout = d
	}
	if v := strings.TrimSpace(getenv(EnvManagedAccounts)); v != "" {
		cfg.ManagedAccounts = map[string]bool{}
		for _, id := range strings.Split(v, ",") {
			id = strings.TrimSpace(id)
			if !config.IsAccountID(id) {
				problems = append(problems, fmt.Sprintf("%s: %q is not a 12-digit AWS account id", EnvManagedAccounts, id))
				continue
			}
			cfg.ManagedAccounts[id] = true
		}
	}
	roots, err := rdstls.LoadFromEnv(getenv)
	if err != nil {
		problems = append(problems, err.Error())
	} else {
		cfg.Roots, cfg.RootsSource = roots.Pool, roots.Source
	}
	if len(problems) > 0 {
		return cfg, errors.New("configuration: " + strings.Join(problems, "; "))
	}
	return cfg, nil
}
