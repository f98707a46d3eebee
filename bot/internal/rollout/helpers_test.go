package rollout

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/dbusers/dbusers/bot/internal/testsupport/awstest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	awstest.Close()
	os.Exit(code)
}

var seq atomic.Int64

// pointerName is a pointer no other test uses (kumo's state is shared).
func pointerName(tb testing.TB) string {
	tb.Helper()
	name := strings.NewReplacer("/", "-", " ", "_", "#", "_", "'", "", ",", "").Replace(tb.Name())
	return fmt.Sprintf("/rollout-test/%s-%d/config", name, seq.Add(1))
}

// store is kumo's SSM behind the limits kumo does not enforce (a value of
// at most 4,096 bytes in the Standard tier), recording every call and
// failing those a test chooses.
type store struct {
	*ssm.Client
	mu    sync.Mutex
	calls []string // "Op name"
	fail  func(op, name string) error
}

func newStore(tb testing.TB) *store {
	tb.Helper()
	return &store{Client: ssm.NewFromConfig(awstest.Config(awstest.EmulatorURL()))}
}

func (s *store) note(op string, names ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range names {
		s.calls = append(s.calls, op+" "+n)
		if s.fail != nil {
			if err := s.fail(op, n); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *store) ops() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

func (s *store) PutParameter(ctx context.Context, in *ssm.PutParameterInput, opt ...func(*ssm.Options)) (*ssm.PutParameterOutput, error) {
	if err := s.note("PutParameter", aws.ToString(in.Name)); err != nil {
		return nil, err
	}
	if n := len(aws.ToString(in.Value)); n > 4096 || in.Tier != "Standard" {
		return nil, fmt.Errorf("ValidationException: %s: %d bytes in tier %s (Standard allows 4096)", aws.ToString(in.Name), n, in.Tier)
	}
	return s.Client.PutParameter(ctx, in, opt...)
}

func (s *store) DeleteParameters(ctx context.Context, in *ssm.DeleteParametersInput, opt ...func(*ssm.Options)) (*ssm.DeleteParametersOutput, error) {
	if len(in.Names) > 10 {
		return nil, fmt.Errorf("ValidationException: %d names, at most 10", len(in.Names))
	}
	if err := s.note("DeleteParameters", in.Names...); err != nil {
		return nil, err
	}
	return s.Client.DeleteParameters(ctx, in, opt...)
}

func (s *store) GetParameters(ctx context.Context, in *ssm.GetParametersInput, opt ...func(*ssm.Options)) (*ssm.GetParametersOutput, error) {
	if len(in.Names) > 10 {
		return nil, fmt.Errorf("ValidationException: %d names, at most 10", len(in.Names))
	}
	if err := s.note("GetParameters", in.Names...); err != nil {
		return nil, err
	}
	return s.Client.GetParameters(ctx, in, opt...)
}

// names lists every parameter under the pointer's status path.
func (s *store) names(tb testing.TB, pointer string) []string {
	tb.Helper()
	var out []string
	var token *string
	for {
		page, err := s.Client.GetParametersByPath(context.Background(), &ssm.GetParametersByPathInput{
			Path: aws.String(Path(pointer)), Recursive: aws.Bool(true), NextToken: token})
		if err != nil {
			tb.Fatal(err)
		}
		for _, p := range page.Parameters {
			out = append(out, aws.ToString(p.Name))
		}
		if aws.ToString(page.NextToken) == "" {
			return out
		}
		token = page.NextToken
	}
}

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// versionAt is a version name published at t0 plus n minutes.
func versionAt(n int) string {
	return t0.Add(time.Duration(n)*time.Minute).Format("20060102T150405Z") + fmt.Sprintf("-%012x", n+0xad6aa65e5287)
}

// update is a run of version over clusters named c00, c01, ...: all
// applied, hana created on every one.
func update(version string, clusters int, at time.Time) Update {
	u := Update{Version: version, Commit: "3f2c1b0a9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b", PullRequest: "42", PublishedAt: t0,
		Run: Run{Trigger: "publish", RequestID: "req-" + at.Format("150405"), LogGroup: "/aws/lambda/dbusers", StartedAt: at.Add(-2 * time.Second),
			FinishedAt: at, Clusters: clusters, SignedBy: "arn:aws:kms:eu-west-1:123456789012:key/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"}}
	u.Users = []User{{Name: "hana", Account: "acme_hana", Kind: "human", Auth: "iam"}}
	for i := range clusters {
		name := fmt.Sprintf("c%02d", i)
		u.Clusters = append(u.Clusters, Cluster{Name: name, Environment: "prod", AccountID: "111111111111", Region: "eu-west-1",
			Status: Applied, Server: "MySQL 8.0.39", Changes: 2, Statements: 2, Created: 1, RequestID: u.Run.RequestID, At: at})
		u.Accounts = append(u.Accounts, Account{User: "hana", Account: "acme_hana", Cluster: name, Event: Created})
		u.Users[0].Clusters = append(u.Users[0].Clusters, name)
	}
	return u
}
