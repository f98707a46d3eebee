package fleet

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestConfigFromEnv(t *testing.T) {
	cfg, err := ConfigFromEnv(envOf(map[string]string{EnvPointer: " /dbusers/config ", EnvSigningKey: testKeyARN}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Pointer != "/dbusers/config" || cfg.Concurrency != 0 || cfg.ForceDryRun || cfg.LockTimeout != 0 ||
		cfg.Roots == nil || cfg.RootsSource != "embedded" || cfg.SNSTopicARN != "" {
		t.Errorf("defaults: %+v", cfg)
	}

	cfg, err = ConfigFromEnv(envOf(map[string]string{
		EnvPointer: "/p", EnvSigningKey: testKeyARN, EnvSNSTopic: "arn:aws:sns:eu-west-1:123456789012:dbusers", EnvConcurrency: "3",
		EnvDryRun: "TRUE", EnvLockTimeout: "45",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SNSTopicARN != "arn:aws:sns:eu-west-1:123456789012:dbusers" || cfg.Concurrency != 3 || !cfg.ForceDryRun || cfg.LockTimeout != 45*time.Second {
		t.Errorf("set: %+v", cfg)
	}
	cfg, err = ConfigFromEnv(envOf(map[string]string{EnvPointer: "/p", EnvSigningKey: testKeyARN, EnvLockTimeout: "2m", EnvDryRun: "false"}))
	if err != nil || cfg.LockTimeout != 2*time.Minute || cfg.ForceDryRun {
		t.Errorf("duration: %+v, %v", cfg, err)
	}

	_, err = ConfigFromEnv(envOf(map[string]string{
		EnvConcurrency: "0", EnvDryRun: "maybe", EnvLockTimeout: "soon", EnvCABundle: filepath.Join(t.TempDir(), "none.pem"),
	}))
	if err == nil {
		t.Fatal("bad environment accepted")
	}
	for _, want := range []string{EnvPointer + " is not set", EnvConcurrency + `="0"`, EnvDryRun + `="maybe"`, EnvLockTimeout + `="soon"`, EnvCABundle} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

// testKeyARN is a well-formed signing key ARN for configuration tests.
const testKeyARN = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"

// TestConfigSigning: a signing key is required unless unsigned bundles are
// allowed; it must be a key ARN.
func TestConfigSigning(t *testing.T) {
	cfg, err := ConfigFromEnv(envOf(map[string]string{EnvPointer: "/p", EnvSigningKey: " " + testKeyARN + " "}))
	if err != nil || cfg.SigningKeyARN != testKeyARN || cfg.AllowUnsigned {
		t.Errorf("key: %+v, %v", cfg, err)
	}
	cfg, err = ConfigFromEnv(envOf(map[string]string{EnvPointer: "/p", EnvAllowUnsigned: "true"}))
	if err != nil || cfg.SigningKeyARN != "" || !cfg.AllowUnsigned {
		t.Errorf("no key, unsigned allowed: %+v, %v", cfg, err)
	}
	cfg, err = ConfigFromEnv(envOf(map[string]string{EnvPointer: "/p", EnvSigningKey: testKeyARN, EnvAllowUnsigned: "yes"}))
	if err != nil || cfg.SigningKeyARN != testKeyARN || !cfg.AllowUnsigned {
		t.Errorf("key, unsigned allowed: %+v, %v", cfg, err)
	}
	for want, env := range map[string]map[string]string{
		EnvSigningKey + " is not set":           {EnvPointer: "/p"},
		EnvSigningKey + " is not set (the":      {EnvPointer: "/p", EnvAllowUnsigned: "false"},
		EnvAllowUnsigned + `="sometimes"`:       {EnvPointer: "/p", EnvSigningKey: testKeyARN, EnvAllowUnsigned: "sometimes"},
		"want the ARN of a KMS key":             {EnvPointer: "/p", EnvSigningKey: "alias/dbusers-signing"},
		"not an alias":                          {EnvPointer: "/p", EnvSigningKey: "arn:aws:kms:eu-west-1:123456789012:alias/dbusers"},
		EnvSigningKey + `="1234abcd-12ab-34cd-`: {EnvPointer: "/p", EnvSigningKey: "1234abcd-12ab-34cd-56ef-1234567890ab"},
	} {
		if _, err := ConfigFromEnv(envOf(env)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: error %v, want %q", env, err, want)
		}
	}
}

func TestConfigManagedAccounts(t *testing.T) {
	cfg, err := ConfigFromEnv(envOf(map[string]string{EnvPointer: "/p", EnvSigningKey: testKeyARN}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ManagedAccounts != nil || !cfg.Manages("111111111111") {
		t.Errorf("unset: %v; want every account managed", cfg.ManagedAccounts)
	}

	cfg, err = ConfigFromEnv(envOf(map[string]string{EnvPointer: "/p", EnvSigningKey: testKeyARN, EnvManagedAccounts: " 111111111111, 222222222222 "}))
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{"111111111111": true, "222222222222": true, "333333333333": false, "": false, "11111111111": false} {
		if got := cfg.Manages(id); got != want {
			t.Errorf("Manages(%q) = %v, want %v", id, got, want)
		}
	}

	for _, bad := range []string{"12345", "111111111111,", "11111111111a", "111111111111;222222222222", "arn:aws:iam::111111111111:root"} {
		_, err := ConfigFromEnv(envOf(map[string]string{EnvPointer: "/p", EnvSigningKey: testKeyARN, EnvManagedAccounts: bad}))
		if err == nil || !strings.Contains(err.Error(), EnvManagedAccounts) || !strings.Contains(err.Error(), "12-digit") {
			t.Errorf("%s=%q: error %v, want one naming the variable and 12-digit ids", EnvManagedAccounts, bad, err)
		}
	}
}

func TestSTSAccount(t *testing.T) {
	if got := stsAccount("arn:aws:sts::333333333333:assumed-role/dbusers-management/dbusers-reconcile"); got != "333333333333" {
		t.Errorf("stsAccount = %q", got)
	}
	if got := stsAccount("garbage"); got != "" {
		t.Errorf("stsAccount(garbage) = %q", got)
	}
}

func TestConfigCABundleFromEnv(t *testing.T) {
	src, err := os.ReadFile("../rdstls/global-bundle.pem")
	if err != nil {
		t.Fatal(err)
	}
	// The first certificate only: a bundle that replaces, not extends.
	end := strings.Index(string(src), "-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----\n")
	path := filepath.Join(t.TempDir(), "bundle.pem")
	if err := os.WriteFile(path, src[:end], 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := ConfigFromEnv(envOf(map[string]string{EnvPointer: "/p", EnvSigningKey: testKeyARN, EnvCABundle: path}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RootsSource != path {
		t.Errorf("RootsSource %q, want %q", cfg.RootsSource, path)
	}
}

func TestEnvVars(t *testing.T) {
	want := []string{"DBUSERS_POINTER_PARAMETER", "DBUSERS_SNS_TOPIC_ARN", "DBUSERS_CONCURRENCY", "DBUSERS_CA_BUNDLE",
		"DBUSERS_DRY_RUN", "DBUSERS_LOCK_TIMEOUT", "DBUSERS_MANAGED_ACCOUNTS", "DBUSERS_SIGNING_KEY_ARN", "DBUSERS_ALLOW_UNSIGNED", "DBUSERS_PLAN_ONLY"}
	if !slices.Equal(EnvVars, want) {
		t.Errorf("EnvVars = %v, want %v", EnvVars, want)
	}
	for _, r := range RequiredEnvVars {
		if !slices.Contains(EnvVars, r) {
			t.Errorf("required %s is not in EnvVars", r)
		}
	}
}
