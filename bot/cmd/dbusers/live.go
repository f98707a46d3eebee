package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/dbusers/dbusers/bot/internal/liveplan"
	"github.com/dbusers/dbusers/bot/internal/review"
	"github.com/dbusers/dbusers/bot/internal/ssmbundle"
)

// The live plan: the review asks the deployed function's plan mode what
// merging would do to the real databases. Whatever goes wrong on the way
// (no credentials, no function, a refusal, a timeout) costs the review one
// line, never the PR check: the declarations-only review stands on its
// own.

// envPlanFunction names the plan function to invoke.
const envPlanFunction = "DBUSERS_PLAN_FUNCTION"

// envLiveSkipped, set by the PR workflow, says why this run has no live
// plan (a fork's pull request gets no credentials); the review shows it.
const envLiveSkipped = "DBUSERS_LIVE_SKIPPED"

// maxInvokePayload is Lambda's limit on a synchronous invoke's request.
const maxInvokePayload = 6 << 20

// InvokeAPI is the Lambda call the live plan makes; *lambda.Client
// satisfies it.
type InvokeAPI interface {
	Invoke(ctx context.Context, in *lambda.InvokeInput, optFns ...func(*lambda.Options)) (*lambda.InvokeOutput, error)
}

// liveFlags are plan's and comment's flags for the live plan.
type liveFlags struct {
	live     bool
	function string
	timeout  time.Duration
}

func (f *liveFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.live, "live", false, "add the live plan: invoke the function's plan mode with the caller's AWS credentials (never applies)")
	fs.StringVar(&f.function, "function", "", "the plan function to invoke for --live, e.g. dbusers-plan (default: $"+envPlanFunction+")")
	fs.DurationVar(&f.timeout, "live-timeout", 3*time.Minute, "how long --live waits for the plan")
}

// newLambdaClient is the production Lambda client: credentials, region
// and endpoint from the environment (AWS_ENDPOINT_URL_LAMBDA points it at
// an emulator). It fails when there are no credentials, so that the
// review can say so instead of timing out.
func newLambdaClient(ctx context.Context) (InvokeAPI, error) {
	cfg, err := awsConfig(ctx)
	if err != nil {
		return nil, err
	}
	if cfg.Credentials == nil {
		return nil, errNoCredentials
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := cfg.Credentials.Retrieve(cctx); err != nil {
		return nil, fmt.Errorf("%w (%v)", errNoCredentials, err)
	}
	return lambda.NewFromConfig(cfg, func(o *lambda.Options) {
		o.RetryMaxAttempts = 2 // a plan that failed once is reported, not hammered
	}), nil
}

var errNoCredentials = errors.New("no AWS credentials")

// livePlan asks the function for the live plan of head, telling drift
// against base when base is valid. It returns the report, or in one line
// why there is none.
func livePlan(ctx context.Context, e env, f liveFlags, head, base review.Side, headCommit string) (*liveplan.Report, string) {
	if why := strings.TrimSpace(e.getenv(envLiveSkipped)); why != "" {
		return nil, "live plan skipped: " + oneLine(why) + "; this review compares declarations only"
	}
	function := firstNonEmpty(f.function, e.getenv(envPlanFunction))
	if function == "" {
		return nil, "live plan skipped: no plan function named (--function or " + envPlanFunction + "); this review compares declarations only"
	}
	_, bundle, err := ssmbundle.NewCandidate(ssmbundle.ContentOf(head.Config), ssmbundle.Origin{Commit: headCommit, Time: e.now()})
	if err != nil {
		return nil, "live plan skipped: " + err.Error()
	}
	fields := map[string]any{"bundle": bundle}
	if base.State != nil && base.Config != nil {
		if _, text, err := ssmbundle.NewCandidate(ssmbundle.ContentOf(base.Config), ssmbundle.Origin{Time: e.now()}); err == nil &&
			len(bundle)+len(text)+1024 <= maxInvokePayload {
			fields["base_bundle"] = text
		}
		// Otherwise drift is told against the published configuration.
	}
	payload, err := json.Marshal(map[string]any{"plan": fields})
	if err != nil {
		return nil, "live plan skipped: " + err.Error()
	}
	if len(payload) > maxInvokePayload {
		return nil, fmt.Sprintf("live plan skipped: the candidate is %d bytes, more than the %d a synchronous invoke takes", len(payload), maxInvokePayload)
	}
	newClient := e.newLambda
	if newClient == nil {
		newClient = newLambdaClient
	}
	client, err := newClient(ctx)
	if err != nil {
		if errors.Is(err, errNoCredentials) {
			return nil, "live plan skipped: no AWS credentials (the PR workflow assumes the plan role for pull requests from this repository); this review compares declarations only"
		}
		return nil, "live plan skipped: " + oneLine(err.Error())
	}
	ictx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	out, err := client.Invoke(ictx, &lambda.InvokeInput{FunctionName: aws.String(function), Payload: payload})
	if err != nil {
		return nil, "live plan failed: invoke " + function + ": " + oneLine(err.Error()) + "; this review compares declarations only"
	}
	if out.FunctionError != nil {
		var fe struct {
			ErrorMessage string `json:"errorMessage"`
		}
		_ = json.Unmarshal(out.Payload, &fe)
		return nil, "live plan refused by " + function + ": " + oneLine(cmpOr(fe.ErrorMessage, aws.ToString(out.FunctionError))) + "; this review compares declarations only"
	}
	var rep liveplan.Report
	if err := json.Unmarshal(out.Payload, &rep); err != nil || rep.Clusters == nil {
		return nil, "live plan failed: " + function + " did not answer with a live plan (is it the dbusers function, at a version with plan mode?)"
	}
	return &rep, ""
}

func cmpOr(s ...string) string { return firstNonEmpty(s...) }

// oneLine keeps a message to one line of reasonable length.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 300 {
		s = string(r[:300]) + "…"
	}
	return s
}
