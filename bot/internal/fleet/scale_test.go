package fleet

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/dbusers/dbusers/bot/internal/dbconn"
)

// What keeps the handler flat at 100 clusters of 1,000 users (see
// BenchmarkHandle100Clusters1000Users for the figures).

// TestSecretCacheKeepsNoResponse: the invocation's secret cache holds every
// password secret of every account until the run ends (4,000 for 1,000
// users over 4 accounts), so it must hold the secret, not the SDK's result
// metadata with the HTTP response behind it.
func TestSecretCacheKeepsNoResponse(t *testing.T) {
	var response secretsmanager.GetSecretValueOutput
	response.ResultMetadata.Set("raw response", make([]byte, 4096))
	calls := 0
	api := secretsFunc(func(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
		calls++
		return &secretsmanager.GetSecretValueOutput{
			Name: in.SecretId, SecretString: aws.String(`{"password": "pw"}`), VersionStages: []string{"AWSCURRENT"},
			ResultMetadata: response.ResultMetadata,
		}, nil
	})
	c := &cachedSecrets{api: api, cache: &secretCache{}, scope: "role\x00ext\x00eu-west-1"}
	for range 2 {
		out, err := c.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("svc/a")})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(out.SecretString) != `{"password": "pw"}` || aws.ToString(out.Name) != "svc/a" || len(out.VersionStages) != 1 {
			t.Errorf("cached secret = %+v, want the secret as read", out)
		}
		if out.ResultMetadata.Has("raw response") {
			t.Error("the cache keeps the SDK's result metadata")
		}
	}
	if calls != 1 {
		t.Errorf("%d reads of one secret, want 1", calls)
	}
}

// TestConnectionInterpolates: the reads' LIKE pattern goes inline, not as
// a prepared statement, which costs two more round trips per query (4 of
// a converged cluster's 15, 80 ms at 20 ms a round trip).
func TestConnectionInterpolates(t *testing.T) {
	cfg := dbconn.Config(dbconn.Login{Cluster: "c", Host: "db.example", Port: 3306, User: "admin", Password: "pw"})
	if !cfg.InterpolateParams {
		t.Error("InterpolateParams is off")
	}
	if cfg.Addr != "db.example:3306" || cfg.Timeout != dbconn.DialTimeout || cfg.ReadTimeout != dbconn.IOTimeout {
		t.Errorf("config = %s %v %v", cfg.Addr, cfg.Timeout, cfg.ReadTimeout)
	}
}
