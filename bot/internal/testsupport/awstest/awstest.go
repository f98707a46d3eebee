// Package awstest points AWS SDK clients at kumo, an AWS emulator (SSM,
// STS, Secrets Manager, SNS, ...) that runs inside the test process, so
// that the tests of publishing, reading and reconciling talk to real SDK
// clients over HTTP without an AWS account.
//
// It keeps one emulator per test binary: kumo.NewServer rewires
// process-wide service state without a lock (the race detector reports two
// servers started at once), and the servers of one process share their
// state anyway, so tests keep apart by unique names (of parameters,
// secrets and topics), not by servers.
//
// Like net/http/httptest it is an ordinary package that only tests import.
package awstest

import (
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/sivchari/kumo"
)

// Region is the region of every test client.
const Region = "eu-west-1"

// The static credentials of every test client; kumo accepts any.
const (
	AccessKeyID     = "AKIDTEST"
	SecretAccessKey = "test-secret"
)

var (
	emulator = sync.OnceValue(kumo.NewServer)
	started  atomic.Bool
)

// EmulatorURL returns the base endpoint of the test binary's emulator,
// starting it on first use.
func EmulatorURL() string {
	started.Store(true)
	return emulator().URL
}

// Close stops the emulator if this process started it; a TestMain calls
// it after m.Run for a clean exit. Nothing may use the emulator after.
func Close() {
	if started.Load() {
		emulator().Close()
	}
}

// Config returns an SDK configuration whose clients call the emulator at
// url (EmulatorURL, or another process's kumo) in Region with the static
// test credentials.
func Config(url string) aws.Config {
	return aws.Config{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
		BaseEndpoint: aws.String(url),
	}
}

// SecretsManagerAs returns a Secrets Manager client of base that signs
// with creds in region: what the Lambda builds for a cluster after
// assuming the cluster's role.
func SecretsManagerAs(base aws.Config, creds aws.Credentials, region string) *secretsmanager.Client {
	return secretsmanager.NewFromConfig(base, func(o *secretsmanager.Options) {
		o.Region = region
		o.Credentials = credentials.StaticCredentialsProvider{Value: creds}
	})
}

// Environ is the environment ("KEY=value" pairs, as os/exec takes them)
// that points an SDK which configures itself from the environment, as the
// Lambda and the CLI do, at the emulator at url: Region, the test
// credentials with no session token, and no profile, shared configuration
// file or instance metadata that could win over them.
func Environ(url string) []string {
	return []string{
		"AWS_ENDPOINT_URL=" + url,
		"AWS_REGION=" + Region,
		"AWS_DEFAULT_REGION=" + Region,
		"AWS_ACCESS_KEY_ID=" + AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + SecretAccessKey,
		"AWS_SESSION_TOKEN=",
		"AWS_PROFILE=",
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true",
	}
}
