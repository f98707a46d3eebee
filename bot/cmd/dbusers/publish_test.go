package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/google/go-cmp/cmp"

	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/ssmbundle"
	"github.com/dbusers/dbusers/bot/internal/testsupport/awstest"
)

// publishNow is the clock of every publish test.
var publishNow = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// publishKumo returns an SSM client of the in-process emulator; its
// servers in one process share their state, so each test publishes under
// its own pointer (publishRepo).
func publishKumo(t *testing.T) *ssm.Client {
	t.Helper()
	return ssm.NewFromConfig(awstest.Config(awstest.EmulatorURL()))
}

// publishRecorder counts the writes that reach the emulator, and can fail
// every write.
type publishRecorder struct {
	ssmbundle.API
	puts, deletes atomic.Int64
	failWrites    bool
}

func (r *publishRecorder) PutParameter(ctx context.Context, in *ssm.PutParameterInput, optFns ...func(*ssm.Options)) (*ssm.PutParameterOutput, error) {
	r.puts.Add(1)
	if r.failWrites {
		return nil, errors.New("AccessDeniedException: not authorized to perform ssm:PutParameter")
	}
	return r.API.PutParameter(ctx, in, optFns...)
}

func (r *publishRecorder) DeleteParameters(ctx context.Context, in *ssm.DeleteParametersInput, optFns ...func(*ssm.Options)) (*ssm.DeleteParametersOutput, error) {
	r.deletes.Add(1)
	return r.API.DeleteParameters(ctx, in, optFns...)
}

func (r *publishRecorder) writes() int64 { return r.puts.Load() + r.deletes.Load() }

var publishSeq atomic.Int64

// publishRepo writes validRepo with a pointer parameter of its own and
// returns the directory and the pointer.
func publishRepo(t *testing.T, change func(files map[string]string)) (dir, pointer string) {
	t.Helper()
	pointer = fmt.Sprintf("/dbusers-cli-test/%d-%d/config", time.Now().UnixNano(), publishSeq.Add(1))
	files := validRepo()
	files["dbusers.json"] = strings.Replace(files["dbusers.json"], `"/dbusers/config"`, fmt.Sprintf("%q", pointer), 1)
	if change != nil {
		change(files)
	}
	return writeRepo(t, files), pointer
}

// publishCLI runs the CLI in-process with api as its SSM client and kumo's
// KMS, with key as DBUSERS_SIGNING_KEY_ARN unless environ says otherwise.
type publishCLI struct {
	api     ssmbundle.API
	kms     *kms.Client
	key     string
	environ map[string]string
	clients int // how many times the command asked for a client
	err     error
	// strict leaves out --allow-placeholder-accounts.
	strict bool
}

// newPublishCLI is a publishCLI with a signing key of its own.
func newPublishCLI(t *testing.T, api ssmbundle.API) *publishCLI {
	t.Helper()
	k := kms.NewFromConfig(awstest.Config(awstest.EmulatorURL()))
	return &publishCLI{api: api, kms: k, key: awstest.DBusersSigningKey(t, k)}
}

// trust is what the Lambda configured with the CLI's key accepts.
func (p *publishCLI) trust(t *testing.T) ssmbundle.Trust {
	t.Helper()
	key, err := ssmbundle.FetchPublicKey(context.Background(), p.kms, p.key)
	if err != nil {
		t.Fatal(err)
	}
	return ssmbundle.Trust{Key: key}
}

func (p *publishCLI) run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	e := env{stdout: &out, stderr: &errOut, now: func() time.Time { return publishNow },
		getenv: func(k string) string {
			if v, ok := p.environ[k]; ok || k != envSigningKey {
				return v
			}
			return p.key
		},
		newSSM: func(context.Context) (ssmbundle.API, error) {
			p.clients++
			if p.err != nil {
				return nil, p.err
			}
			return p.api, nil
		},
		newKMS: func(context.Context) (ssmbundle.KMSAPI, error) { return p.kms, nil }}
	// Tests of other things publish with the flag, so that a cluster in a
	// placeholder account (the examples') does not stop them
	// (TestPublishRefusesPlaceholders).
	if !p.strict {
		args = append([]string{"--allow-placeholder-accounts"}, args...)
	}
	code = run(context.Background(), e, append([]string{"publish"}, args...))
	return code, out.String(), errOut.String()
}

// TestPublishRefusesPlaceholders: a fork that still holds the example
// clusters (accounts 111111111111 and 222222222222) publishes nothing.
func TestPublishRefusesPlaceholders(t *testing.T) {
	dir, _ := publishRepo(t, func(files map[string]string) {
		files["clusters/prod-orders.json"] = strings.Replace(files["clusters/prod-orders.json"], "210987654321", "111111111111", 1)
	})
	rec := &publishRecorder{API: publishKumo(t)}
	cli := newPublishCLI(t, rec)
	cli.strict = true
	code, stdout, stderr := cli.run(t, "--root", dir)
	if code != exitChanges || !strings.Contains(stderr, "are in a placeholder account") || !strings.Contains(stderr, "nothing was published") {
		t.Errorf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if cli.clients != 0 {
		t.Error("publish asked for an AWS client before refusing")
	}
	for id, want := range map[string]bool{"111111111111": true, "000000000000": true, "123456789012": true, "123456789013": false, "210987654321": false, "12345": false} {
		if got := config.PlaceholderAccount(id); got != want {
			t.Errorf("PlaceholderAccount(%s) = %v", id, got)
		}
	}
}

// loadContent is what a publish of dir must carry.
func loadContent(t *testing.T, dir string) ssmbundle.Content {
	t.Helper()
	loaded, _, err := config.LoadDir(dir, publishNow)
	if err != nil {
		t.Fatal(err)
	}
	return ssmbundle.ContentOf(&loaded.Config)
}

func TestPublishInvalidWritesNothing(t *testing.T) {
	rec := &publishRecorder{API: publishKumo(t)}
	dir, pointer := publishRepo(t, func(files map[string]string) {
		files["users/alice.json"] = strings.Replace(files["users/alice.json"], `"role": "read"`, `"role": "reader"`, 1)
	})
	cli := newPublishCLI(t, rec)
	code, stdout, stderr := cli.run(t, "--root", dir)
	if code != exitChanges {
		t.Errorf("exit code = %d, want %d\nstderr:\n%s", code, exitChanges, stderr)
	}
	for _, want := range []string{
		`users/alice.json:6:68: error: unknown role "reader"`,
		"dbusers publish: the declarations have 1 error(s); nothing was published",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr)
		}
	}
	if stdout != "" {
		t.Errorf("stdout = %q, want nothing", stdout)
	}
	if cli.clients != 0 || rec.writes() != 0 {
		t.Errorf("an invalid configuration reached AWS: %d client(s), %d write(s)", cli.clients, rec.writes())
	}
	if _, _, err := ssmbundle.Read(context.Background(), rec, pointer, cli.trust(t)); !errors.Is(err, ssmbundle.ErrNoPointer) {
		t.Errorf("Read after a refused publish = %v, want ErrNoPointer", err)
	}
}

// TestPublishCLI publishes, publishes again unchanged, then dry-runs a
// change: only the first run writes.
func TestPublishCLI(t *testing.T) {
	ctx := context.Background()
	rec := &publishRecorder{API: publishKumo(t)}
	dir, pointer := publishRepo(t, nil)
	cli := newPublishCLI(t, rec)
	sha := strings.Repeat("ab", 20)

	code, stdout, stderr := cli.run(t, "--root", dir, "--commit", sha, "--pull-request", "42", "--merged-by", "alice")
	if code != exitOK {
		t.Fatalf("exit code = %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	b, v, err := ssmbundle.Read(ctx, rec, pointer, cli.trust(t))
	if err != nil {
		t.Fatal(err)
	}
	if v.KeyARN != cli.key || !strings.Contains(stdout, "  signed with KMS key "+cli.key+"\n") {
		t.Errorf("verdict %+v; stdout:\n%s", v, stdout)
	}
	if diff := cmp.Diff(loadContent(t, dir), b.Content); diff != "" {
		t.Errorf("published content (-want +got):\n%s", diff)
	}
	wantMeta := ssmbundle.Meta{Format: ssmbundle.FormatVersion, Version: b.Meta.Version, Commit: sha, PullRequest: "42",
		MergedBy: "alice", PublishedAt: publishNow, SHA256: b.Meta.SHA256}
	if diff := cmp.Diff(wantMeta, b.Meta); diff != "" {
		t.Errorf("published meta (-want +got):\n%s", diff)
	}
	want := fmt.Sprintf("published version %s at %s (1 chunk(s), ", b.Meta.Version, pointer)
	if !strings.HasPrefix(stdout, want) || !strings.Contains(stdout, "sha256 "+b.Meta.SHA256+"); pruned: none\n") ||
		!strings.Contains(stdout, "1 user(s), 1 cluster(s); commit "+sha+", pull request #42, merged by alice\n") {
		t.Errorf("stdout:\n%s\nwant it to start %q", stdout, want)
	}
	if stderr != "" {
		t.Errorf("stderr = %q, want nothing", stderr)
	}
	if rec.puts.Load() != 2 { // one chunk, the pointer
		t.Errorf("%d PutParameter calls, want 2", rec.puts.Load())
	}

	t.Run("unchanged", func(t *testing.T) {
		before := rec.writes()
		code, stdout, _ := cli.run(t, "--root", dir, "--commit", strings.Repeat("cd", 20))
		if code != exitOK {
			t.Errorf("exit code = %d", code)
		}
		if want := fmt.Sprintf("unchanged: version %s already published at %s (sha256 %s)\n", b.Meta.Version, pointer, b.Meta.SHA256); stdout != want {
			t.Errorf("stdout = %q, want %q", stdout, want)
		}
		if n := rec.writes() - before; n != 0 {
			t.Errorf("an unchanged publish made %d write(s)", n)
		}
	})

	t.Run("dry run of a change", func(t *testing.T) {
		files := validRepo()
		files["dbusers.json"] = strings.Replace(files["dbusers.json"], `"/dbusers/config"`, fmt.Sprintf("%q", pointer), 1)
		files["users/bob.json"] = strings.ReplaceAll(files["users/alice.json"], "alice", "bob")
		changed := writeRepo(t, files)
		before := rec.writes()
		code, stdout, stderr := cli.run(t, "--root", changed, "--dry-run")
		if code != exitOK {
			t.Errorf("exit code = %d\nstderr:\n%s", code, stderr)
		}
		if !strings.HasPrefix(stdout, "dry run: would publish version 20260301T090000Z-") ||
			!strings.Contains(stdout, "chunk(s) of at most 4096 bytes") || !strings.Contains(stdout, "nothing was written\n") {
			t.Errorf("stdout:\n%s", stdout)
		}
		if n := rec.writes() - before; n != 0 {
			t.Errorf("a dry run made %d write(s)", n)
		}
		after, _, err := ssmbundle.Read(ctx, rec, pointer, cli.trust(t))
		if err != nil || after.Meta.Version != b.Meta.Version {
			t.Errorf("after a dry run the pointer names %v (%v), want %s", after, err, b.Meta.Version)
		}
	})

	t.Run("dry run unchanged", func(t *testing.T) {
		code, stdout, _ := cli.run(t, "--root", dir, "--dry-run")
		if want := fmt.Sprintf("dry run: unchanged: version %s already published at %s; nothing would be written\n", b.Meta.Version, pointer); code != exitOK || stdout != want {
			t.Errorf("exit %d, stdout %q; want 0, %q", code, stdout, want)
		}
	})
}

// TestPublishProvenanceFromEnvironment: in the workflow the provenance
// comes from the environment, not flags.
func TestPublishProvenanceFromEnvironment(t *testing.T) {
	sha := strings.Repeat("0f", 20)
	for _, tc := range []struct {
		name     string
		environ  map[string]string
		mergedBy string
	}{
		{"merged-by set", map[string]string{"GITHUB_SHA": sha, "DBUSERS_PULL_REQUEST": "7", "DBUSERS_MERGED_BY": "carol", "GITHUB_ACTOR": "pusher"}, "carol"},
		{"actor fallback", map[string]string{"GITHUB_SHA": sha, "DBUSERS_PULL_REQUEST": "", "GITHUB_ACTOR": "pusher"}, "pusher"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &publishRecorder{API: publishKumo(t)}
			dir, pointer := publishRepo(t, nil)
			cli := newPublishCLI(t, rec)
			cli.environ = tc.environ
			if code, _, stderr := cli.run(t, "--root", dir); code != exitOK {
				t.Fatalf("exit code = %d\n%s", code, stderr)
			}
			b, _, err := ssmbundle.Read(context.Background(), rec, pointer, cli.trust(t))
			if err != nil {
				t.Fatal(err)
			}
			if b.Meta.Commit != sha || b.Meta.PullRequest != tc.environ["DBUSERS_PULL_REQUEST"] || b.Meta.MergedBy != tc.mergedBy {
				t.Errorf("meta = %+v; want commit %s, pull request %q, merged by %s", b.Meta, sha, tc.environ["DBUSERS_PULL_REQUEST"], tc.mergedBy)
			}
		})
	}
}

func TestPublishJSON(t *testing.T) {
	rec := &publishRecorder{API: publishKumo(t)}
	dir, pointer := publishRepo(t, func(files map[string]string) {
		files["dbusers.json"] = strings.Replace(files["dbusers.json"], `"ssm": {`, `"ssm": {"tier": "Advanced", "keep_versions": 2, `, 1)
	})
	cli := newPublishCLI(t, rec)
	for i, wantChanged := range []bool{true, false} {
		code, stdout, stderr := cli.run(t, "--root", dir, "--format", "json", "--pull-request", "9")
		if code != exitOK {
			t.Fatalf("run %d: exit code = %d\n%s", i, code, stderr)
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatalf("run %d: stdout is not JSON: %v\n%s", i, err, stdout)
		}
		sha, _ := ssmbundle.Hash(loadContent(t, dir))
		want := map[string]any{
			"dry_run": false, "pointer": pointer, "tier": "Advanced", "keep_versions": 2.0,
			"changed": wantChanged, "version": ssmbundle.VersionFor(publishNow, sha), "sha256": sha, "chunks": 1.0,
			"bytes": got["bytes"], "pull_request": "9", "users": 1.0, "clusters": 1.0, "key_arn": cli.key,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("run %d: JSON (-want +got):\n%s", i, diff)
		}
		if n, ok := got["bytes"].(float64); !ok || n < 100 {
			t.Errorf("run %d: bytes = %v", i, got["bytes"])
		}
	}
}

func TestPublishErrors(t *testing.T) {
	valid, _ := publishRepo(t, nil)
	tests := []struct {
		name      string
		args      []string
		clientErr error
		failPuts  bool
		want      int
		stderr    string
	}{
		{"bad flag", []string{"--dryrun"}, nil, false, exitError, "flag provided but not defined: -dryrun"},
		{"extra argument", []string{"--root", valid, "now"}, nil, false, exitError, `unexpected argument "now"`},
		{"unknown format", []string{"--root", valid, "--format", "github"}, nil, false, exitError, `unknown format "github" (want text or json)`},
		{"bad commit", []string{"--root", valid, "--commit", "HEAD"}, nil, false, exitError, `--commit "HEAD" is not a commit SHA`},
		{"bad pull request", []string{"--root", valid, "--pull-request", "#12"}, nil, false, exitError, `--pull-request "#12" is not a pull request number`},
		{"control character in merged-by", []string{"--root", valid, "--merged-by", "eve\n::error::"}, nil, false, exitError, "--merged-by must be at most 100 printable characters"},
		{"missing root", []string{"--root", filepath.Join(valid, "nope")}, nil, false, exitError, "no such file or directory"},
		{"no AWS", []string{"--root", valid}, errors.New("no AWS region: set AWS_REGION"), false, exitError, "dbusers publish: no AWS region: set AWS_REGION\n"},
		{"AWS refuses", []string{"--root", valid}, nil, true, exitError, "AccessDeniedException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &publishRecorder{API: publishKumo(t), failWrites: tt.failPuts}
			cli := newPublishCLI(t, rec)
			cli.err = tt.clientErr
			code, stdout, stderr := cli.run(t, tt.args...)
			if code != tt.want {
				t.Errorf("exit code = %d, want %d\nstderr:\n%s", code, tt.want, stderr)
			}
			if !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stderr does not contain %q:\n%s", tt.stderr, stderr)
			}
			if tt.want == exitError && stdout != "" {
				t.Errorf("a failed command wrote to stdout:\n%s", stdout)
			}
			if tt.clientErr == nil && !tt.failPuts && cli.clients != 0 {
				t.Errorf("a usage error still asked for an AWS client")
			}
		})
	}
}

// TestPublishSDKEnvironment checks the production client: the SDK takes
// the region, credentials and endpoint (AWS_ENDPOINT_URL) from the
// environment, which is how a developer points it at an emulator.
func TestPublishSDKEnvironment(t *testing.T) {
	for _, kv := range awstest.Environ(awstest.EmulatorURL()) {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	ctx := context.Background()
	dir, pointer := publishRepo(t, nil)
	cli := newPublishCLI(t, publishKumo(t))
	var out, errOut bytes.Buffer
	e := env{stdout: &out, stderr: &errOut, now: func() time.Time { return publishNow },
		getenv: func(k string) string { return map[string]string{envSigningKey: cli.key}[k] }, newSSM: newSSMClient, newKMS: newKMSClient}
	if code := run(ctx, e, []string{"publish", "--allow-placeholder-accounts", "--root", dir}); code != exitOK {
		t.Fatalf("exit code = %d\n%s", code, errOut.String())
	}
	if _, _, err := ssmbundle.Read(ctx, cli.api, pointer, cli.trust(t)); err != nil {
		t.Errorf("the signed bundle did not reach the emulator: %v", err)
	}

	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	if _, err := newSSMClient(ctx); err == nil || !strings.Contains(err.Error(), "no AWS region") {
		t.Errorf("newSSMClient without a region = %v", err)
	}
	if _, err := newKMSClient(ctx); err == nil || !strings.Contains(err.Error(), "no AWS region") {
		t.Errorf("newKMSClient without a region = %v", err)
	}
}

// TestPublishSigning: publish signs with the key it is given, refuses to
// guess when it is given none, and publishes unsigned only when told to,
// saying so; the same content published unsigned is signed and written
// again by the next signed publish.
func TestPublishSigning(t *testing.T) {
	ctx := context.Background()
	rec := &publishRecorder{API: publishKumo(t)}
	dir, pointer := publishRepo(t, nil)
	cli := newPublishCLI(t, rec)

	for _, tc := range []struct {
		name    string
		environ map[string]string
		args    []string
		stderr  string
	}{
		{"no key", map[string]string{envSigningKey: ""}, nil, "no signing key: pass --signing-key or set $DBUSERS_SIGNING_KEY_ARN"},
		{"unsigned and a key", nil, []string{"--unsigned"}, "--unsigned and a signing key (--signing-key or $DBUSERS_SIGNING_KEY_ARN) contradict each other"},
		{"an alias", map[string]string{envSigningKey: "alias/dbusers-signing"}, nil, `"alias/dbusers-signing" is not the ARN of a KMS key`},
		{"a key id", nil, []string{"--signing-key", "1234abcd-12ab-34cd-56ef-1234567890ab"}, "is not the ARN of a KMS key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cli.environ = tc.environ
			code, stdout, stderr := cli.run(t, append([]string{"--root", dir}, tc.args...)...)
			if code != exitError || !strings.Contains(stderr, tc.stderr) || stdout != "" || rec.writes() != 0 {
				t.Errorf("exit %d, %d write(s), stdout %q, stderr %q; want %d saying %q", code, rec.writes(), stdout, stderr, exitError, tc.stderr)
			}
		})
	}

	cli.environ = map[string]string{envSigningKey: ""}
	code, stdout, stderr := cli.run(t, "--root", dir, "--unsigned")
	if code != exitOK || !strings.Contains(stdout, "  UNSIGNED: only a Lambda with DBUSERS_ALLOW_UNSIGNED=true applies it\n") {
		t.Fatalf("--unsigned: exit %d\n%s%s", code, stdout, stderr)
	}
	if _, _, err := ssmbundle.Read(ctx, rec, pointer, cli.trust(t)); !errors.Is(err, ssmbundle.ErrUntrusted) {
		t.Errorf("the Lambda's read of an unsigned publish: %v, want ErrUntrusted", err)
	}

	cli.environ = nil
	code, stdout, stderr = cli.run(t, "--root", dir)
	if code != exitOK || !strings.Contains(stdout, "the published configuration has not changed, but it is not signed by "+cli.key) ||
		!strings.Contains(stdout, "signed with KMS key "+cli.key) {
		t.Fatalf("signed publish over the unsigned one: exit %d\n%s%s", code, stdout, stderr)
	}
	if _, _, err := ssmbundle.Read(ctx, rec, pointer, cli.trust(t)); err != nil {
		t.Errorf("after signing: %v", err)
	}

	// Another key: the published pointer is not signed by it.
	other := newPublishCLI(t, rec)
	before := rec.writes()
	cli.key = other.key
	code, stdout, _ = cli.run(t, "--root", dir, "--dry-run")
	if code != exitOK || !strings.Contains(stdout, "is signed by key") || !strings.Contains(stdout, "dry run: would publish") || rec.writes() != before {
		t.Errorf("dry run with another key: exit %d, %d write(s)\n%s", code, rec.writes()-before, stdout)
	}
}
