package ssmbundle

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/testsupport/awstest"
)

// kumoClient returns an SSM client of the in-process emulator. Its
// servers in one process share their state, so every test names its own
// pointer (see pointerName).
func kumoClient(tb testing.TB) *ssm.Client {
	tb.Helper()
	return ssm.NewFromConfig(awstest.Config(awstest.EmulatorURL()))
}

var pointerSeq atomic.Int64

// pointerName returns a pointer parameter name that no other test uses.
func pointerName(tb testing.TB) string {
	tb.Helper()
	name := strings.NewReplacer("/", "-", " ", "_", "#", "_", "'", "", ",", "").Replace(tb.Name())
	return fmt.Sprintf("/dbusers-test/%s-%d/config", name, pointerSeq.Add(1))
}

// call is one API call a recorder saw.
type call struct {
	Op    string   // PutParameter, DeleteParameters, GetParameter, ...
	Names []string // parameters named by the call
	Value string   // PutParameter only
	Tier  string   // PutParameter only
}

// recorder is an API decorator that records every call in order, and can
// make a chosen call fail.
type recorder struct {
	API
	mu    sync.Mutex
	calls []call
	// failPut, if set, fails a PutParameter of the name it returns true
	// for, before it reaches the emulator.
	failPut func(name string) bool
}

func (r *recorder) record(c call) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, c)
}

// writes returns the PutParameter and DeleteParameters calls.
func (r *recorder) writes() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []call
	for _, c := range r.calls {
		if c.Op == "PutParameter" || c.Op == "DeleteParameters" {
			out = append(out, c)
		}
	}
	return out
}

// reset forgets the calls recorded so far.
func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = nil
}

func (r *recorder) GetParameter(ctx context.Context, in *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	r.record(call{Op: "GetParameter", Names: []string{aws.ToString(in.Name)}})
	return r.API.GetParameter(ctx, in, optFns...)
}

func (r *recorder) GetParameters(ctx context.Context, in *ssm.GetParametersInput, optFns ...func(*ssm.Options)) (*ssm.GetParametersOutput, error) {
	r.record(call{Op: "GetParameters", Names: in.Names})
	return r.API.GetParameters(ctx, in, optFns...)
}

func (r *recorder) GetParametersByPath(ctx context.Context, in *ssm.GetParametersByPathInput, optFns ...func(*ssm.Options)) (*ssm.GetParametersByPathOutput, error) {
	r.record(call{Op: "GetParametersByPath", Names: []string{aws.ToString(in.Path)}})
	return r.API.GetParametersByPath(ctx, in, optFns...)
}

func (r *recorder) PutParameter(ctx context.Context, in *ssm.PutParameterInput, optFns ...func(*ssm.Options)) (*ssm.PutParameterOutput, error) {
	name := aws.ToString(in.Name)
	r.record(call{Op: "PutParameter", Names: []string{name}, Value: aws.ToString(in.Value), Tier: string(in.Tier)})
	if r.failPut != nil && r.failPut(name) {
		return nil, fmt.Errorf("injected failure writing %s", name)
	}
	return r.API.PutParameter(ctx, in, optFns...)
}

func (r *recorder) DeleteParameters(ctx context.Context, in *ssm.DeleteParametersInput, optFns ...func(*ssm.Options)) (*ssm.DeleteParametersOutput, error) {
	r.record(call{Op: "DeleteParameters", Names: in.Names})
	return r.API.DeleteParameters(ctx, in, optFns...)
}

// put writes one String parameter straight to the emulator, as a person
// with console access might.
func put(tb testing.TB, api API, name, value string) {
	tb.Helper()
	if _, err := api.PutParameter(context.Background(), &ssm.PutParameterInput{
		Name: aws.String(name), Value: aws.String(value), Type: "String", Overwrite: aws.Bool(true),
	}); err != nil {
		tb.Fatalf("put %s: %v", name, err)
	}
}

// get reads one parameter's value from the emulator.
func get(tb testing.TB, api API, name string) string {
	tb.Helper()
	out, err := api.GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String(name)})
	if err != nil {
		tb.Fatalf("get %s: %v", name, err)
	}
	return aws.ToString(out.Parameter.Value)
}

// versionsUnder lists the versions that have chunks under pointer.
func versionsUnder(tb testing.TB, api API, pointer string) []string {
	tb.Helper()
	seen := map[string]bool{}
	var out []string
	var token *string
	for {
		page, err := api.GetParametersByPath(context.Background(), &ssm.GetParametersByPathInput{
			Path: aws.String(VersionsPath(pointer)), Recursive: aws.Bool(true), NextToken: token,
		})
		if err != nil {
			tb.Fatalf("list %s: %v", VersionsPath(pointer), err)
		}
		for _, p := range page.Parameters {
			v, _, _ := strings.Cut(strings.TrimPrefix(aws.ToString(p.Name), VersionsPath(pointer)+"/"), "/")
			if !seen[v] {
				seen[v] = true
				out = append(out, v)
			}
		}
		if aws.ToString(page.NextToken) == "" {
			return out
		}
		token = page.NextToken
	}
}

// publishTime is the clock of the first publish in every test; later
// publishes add minutes so that versions sort in publication order.
var publishTime = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func origin(minutes int) Origin {
	return Origin{Commit: fmt.Sprintf("%040x", minutes+1), PullRequest: fmt.Sprint(100 + minutes), MergedBy: "octocat",
		Time: publishTime.Add(time.Duration(minutes) * time.Minute)}
}

// fleet returns the content of a company with users users and clusters
// clusters, shaped like the declarations in config's benchmark: three
// access entries per user, a quarter of them services with passwords.
func fleet(users, clusters int) Content {
	c := Content{Settings: config.Settings{
		Schema: "./schema/settings.schema.json",
		Prefix: "acme",
		Roles: map[string]config.Role{
			"etl": {Description: "Batch loaders.", Extends: []string{"write"}, Privileges: []string{"DELETE", "CREATE TEMPORARY TABLES"}},
		},
		ProtectedAccounts: []string{"acme_breakglass"},
		RemovalLimit:      config.RemovalLimit{Count: 5, Fraction: 0.2},
		SSM:               config.SSM{Parameter: "/dbusers/config", Tier: "Standard", KeepVersions: 5},
		AWS:               config.AWS{ManagementRole: "dbusers-management", ExternalID: "dbusers-acme"},
		Concurrency:       8,
	}}
	envs := []string{"dev", "staging", "prod"}
	engines := []string{"aurora-mysql-3", "aurora-mysql-2", "rds-mysql-8.0"}
	for i := range clusters {
		c.Clusters = append(c.Clusters, config.Cluster{
			Schema:      "../schema/cluster.schema.json",
			Name:        fmt.Sprintf("c%03d", i),
			Description: fmt.Sprintf("Cluster number %d.", i),
			Environment: envs[i%len(envs)],
			AccountID:   fmt.Sprintf("%012d", 100000000000+i),
			Region:      "eu-west-1",
			Endpoint:    fmt.Sprintf("c%03d.cluster-abc.eu-west-1.rds.amazonaws.com", i),
			Engine:      engines[i%len(engines)],
			AdminSecret: fmt.Sprintf("dbusers/c%03d/admin", i),
			Databases:   []string{"orders", "payments", "analytics", "events"},
			Tags:        map[string]string{"team": fmt.Sprintf("t%d", i%17)},
		})
	}
	for i := range users {
		kind, auth := "human", config.UserAuth{Type: "iam"}
		if i%4 == 0 {
			kind, auth = "service", config.UserAuth{Type: "password", Secret: fmt.Sprintf("dbusers/u%05d", i)}
		}
		c.Users = append(c.Users, config.User{
			Schema:      "../schema/user.schema.json",
			Name:        fmt.Sprintf("u%05d", i),
			Description: fmt.Sprintf("User number %d.", i),
			Owner:       fmt.Sprintf("u%05d@acme.example", i),
			Kind:        kind,
			Auth:        auth,
			Access: []config.Access{
				{Environments: []string{"staging"}, Databases: []string{"*"}, Role: "read"},
				{Clusters: []string{fmt.Sprintf("c%03d", i%clusters), fmt.Sprintf("c%03d", (i+1)%clusters)},
					Databases: []string{"orders", "payments"}, Role: "write"},
				{Clusters: []string{fmt.Sprintf("c%03d", (i*13)%clusters)}, Databases: []string{"analytics"},
					Role: "etl", Expires: "2099-12-31", Reason: fmt.Sprintf("TICKET-%d", i)},
			},
		})
	}
	return c
}

// deleteParam deletes one parameter from the emulator.
func deleteParam(tb testing.TB, api API, name string) {
	tb.Helper()
	out, err := api.DeleteParameters(context.Background(), &ssm.DeleteParametersInput{Names: []string{name}})
	if err != nil || len(out.DeletedParameters) != 1 {
		tb.Fatalf("delete %s: %v (deleted %v)", name, err, out.DeletedParameters)
	}
}

// unverified reads what was published unsigned, and signed pointers
// without checking their signature: for the tests of everything but
// signing.
var unverified = Trust{AllowUnsigned: true}
