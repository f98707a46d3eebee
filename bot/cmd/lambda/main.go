// Command lambda is the dbusers reconciling Lambda, built as the custom
// runtime's `bootstrap` executable. It reconciles every cluster of the
// bundle that `dbusers publish` wrote to SSM (see bot/internal/fleet for
// the events it handles, the environment it reads, its metrics and alerts),
// and answers plan invokes with the live plan of a candidate bundle
// (`dbusers plan --live`), which never apply.
//
// Build (arm64 shown; use GOARCH=amd64 for an x86_64 function):
//
//	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' \
//	    -tags lambda.norpc -o bootstrap ./bot/cmd/lambda
//	zip -j function.zip bootstrap
//
// Deploy the zip as a function with runtime provided.al2023, handler
// bootstrap and the matching architecture (arm64 or x86_64). The
// lambda.norpc tag leaves out the RPC mode of the retired go1.x runtime.
// Configuration comes from the environment: DBUSERS_POINTER_PARAMETER
// (required), DBUSERS_SIGNING_KEY_ARN (required unless
// DBUSERS_ALLOW_UNSIGNED=true), DBUSERS_SNS_TOPIC_ARN, DBUSERS_CONCURRENCY,
// DBUSERS_CA_BUNDLE, DBUSERS_DRY_RUN, DBUSERS_LOCK_TIMEOUT,
// DBUSERS_MANAGED_ACCOUNTS, DBUSERS_PLAN_ONLY (true on the plan function
// of the PR workflow, which answers plan invokes only), and the standard
// AWS variables
// (AWS_ENDPOINT_URL points every client at an emulator in tests).
//
// At the end of every run of a published version it writes the rollout
// record under <pointer>/status/<version> (package rollout), which `dbusers
// rollout` reads in the publish workflow.
//
// One container keeps, across its invocations, the signing key's public
// half (fetched from KMS on the first run) and the newest signed bundle it
// has accepted (see fleet.NewDeps).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/dbusers/dbusers/bot/internal/fleet"
)

func main() {
	setMemoryLimit(os.Getenv)
	cfg, err := fleet.ConfigFromEnv(os.Getenv)
	if err != nil {
		// An init error: the Lambda reports it on every invocation.
		fmt.Fprintln(os.Stderr, "dbusers lambda:", err)
		os.Exit(1)
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "dbusers lambda: AWS configuration:", err)
		os.Exit(1)
	}
	deps := fleet.NewDeps(awsCfg, os.Stdout)
	lambda.Start(func(ctx context.Context, event json.RawMessage) (any, error) {
		return fleet.Invoke(withInvocation(ctx), deps, cfg, event)
	})
}

// withInvocation hands fleet what the runtime says about the invocation:
// its request id (on every log line of the run, and in the rollout record,
// so a person finds the logs), the function, and the log group and stream.
func withInvocation(ctx context.Context) context.Context {
	inv := fleet.Invocation{LogGroup: lambdacontext.LogGroupName, LogStream: lambdacontext.LogStreamName}
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		inv.RequestID, inv.Function = lc.AwsRequestID, lc.InvokedFunctionArn
	}
	return fleet.WithInvocation(ctx, inv)
}

// setMemoryLimit tells the Go runtime the function's memory size (80% of
// it, leaving room for stacks and the runtime itself), so the garbage
// collector works harder instead of the function running out of memory:
// a 256 MB function reconciling 100 clusters of 1,000 users stays inside
// it. GOMEMLIMIT, when set, wins.
func setMemoryLimit(getenv func(string) string) int64 {
	if getenv("GOMEMLIMIT") != "" {
		return -1
	}
	mb, err := strconv.Atoi(getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"))
	if err != nil || mb < 128 {
		return -1
	}
	limit := int64(mb) << 20 * 8 / 10
	debug.SetMemoryLimit(limit)
	return limit
}
