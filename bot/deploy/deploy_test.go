package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"math"
	"os"
	"path"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/fleet"
	"github.com/dbusers/dbusers/bot/internal/rollout"
	"github.com/dbusers/dbusers/bot/internal/ssmbundle"
)

// The names the code uses, taken from the code, so that a renamed variable
// or metric fails these tests until the templates follow.
var (
	// lambdaEnv is every environment variable the Lambda reads.
	lambdaEnv = fleet.EnvVars
	// lambdaEnvRequired are the ones the Lambda refuses to start without.
	lambdaEnvRequired = fleet.RequiredEnvVars
	// emfNamespace and emfMetrics are the CloudWatch metrics the Lambda
	// emits in Embedded Metric Format.
	emfNamespace = fleet.MetricNamespace
	emfMetrics   = fleet.MetricNames
)

// emfDimensions returns the dimension names the Lambda puts on its EMF
// metrics, read from a document it writes; an alarm must name exactly
// these or it watches a time series that never has data.
func emfDimensions(t *testing.T) []string {
	t.Helper()
	var buf bytes.Buffer
	if err := fleet.WriteEMF(&buf, &fleet.Report{}, time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		AWS struct {
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name string }
			}
		} `json:"_aws"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("EMF document: %v", err)
	}
	if len(doc.AWS.CloudWatchMetrics) != 1 || len(doc.AWS.CloudWatchMetrics[0].Dimensions) != 1 {
		t.Fatalf("EMF directives %+v: want one, with one dimension set", doc.AWS.CloudWatchMetrics)
	}
	d := doc.AWS.CloudWatchMetrics[0]
	var names []string
	for _, m := range d.Metrics {
		names = append(names, m.Name)
	}
	if d.Namespace != emfNamespace || !slices.Equal(names, emfMetrics) {
		t.Fatalf("the EMF document has %s %v, the package says %s %v", d.Namespace, names, emfNamespace, emfMetrics)
	}
	return slices.Sorted(slices.Values(d.Dimensions[0]))
}

// actionsOf names the IAM actions of the calls in a client interface the
// code declares: one per method.
func actionsOf[API any](service string) []string {
	typ := reflect.TypeFor[API]()
	var actions []string
	for i := range typ.NumMethod() {
		actions = append(actions, service+":"+typ.Method(i).Name)
	}
	slices.Sort(actions)
	return actions
}

// lambdaMetrics are the AWS/Lambda metrics alarms may watch.
var lambdaMetrics = []string{"Errors", "Throttles", "Duration"}

// lambdaReadActions are what ssmbundle.Read calls: GetParameter on the
// pointer, GetParameters on the chunks. (The Lambda's SSM client has the
// whole ssmbundle.API type, writes included, so it cannot tell.)
var lambdaReadActions = []string{"ssm:GetParameter", "ssm:GetParameters"}

// publishActions are the SSM calls dbusers publish makes: every method of
// ssmbundle.API, so a new call there fails this package's tests until the
// publish role allows it.
func publishActions() []string { return actionsOf[ssmbundle.API]("ssm") }

// recordWriteActions are the SSM calls the Lambda makes on the rollout
// records, and recordReadActions those `dbusers rollout` makes with the
// publish role: every method of the interfaces the code declares, so a new
// call fails these tests until the policies allow it.
func recordWriteActions() []string { return actionsOf[rollout.WriteAPI]("ssm") }
func recordReadActions() []string  { return actionsOf[rollout.ReadAPI]("ssm") }

// signActions are the KMS calls dbusers publish makes with the signing
// key, and verifyActions the one the Lambda makes.
func signActions() []string   { return actionsOf[ssmbundle.KMSAPI]("kms") }
func verifyActions() []string { return actionsOf[ssmbundle.PublicKeyAPI]("kms") }

const (
	controlPlane  = "control-plane.yaml"
	targetAccount = "target-account.yaml"
	githubOIDC    = "github-oidc.yaml"
)

// scenario is a set of parameter values a test evaluates a template with.
type scenario struct {
	name   string
	values map[string]string
}

// Values shared by the scenarios and the expectations.
const (
	controlRoleArn = "arn:aws:iam::123456789012:role/dbusers-control-plane"
	topicKeyArn    = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	secretKeyArn   = "arn:aws:kms:eu-west-1:111111111111:key/abcd1234-ab12-cd34-ef56-abcdef123456"
	rdsSecretArn   = "arn:aws:secretsmanager:eu-west-1:111111111111:secret:rds!cluster-0a1b2c3d-AbCdEf"
	legacyRoleArn  = "arn:aws:iam::222222222222:role/legacy-dbusers"
	publishRoleArn = "arn:aws:iam::123456789012:role/dbusers-publish"
	signingKeyArn  = "arn:aws:kms:eu-west-1:123456789012:key/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"
	// The functions control-plane.yaml creates with its defaults.
	planFunctionArn = "arn:aws:lambda:eu-west-1:123456789012:function:dbusers-plan"
	runFunctionArn  = "arn:aws:lambda:eu-west-1:123456789012:function:dbusers"
)

// scenarios are, per template, the defaults and every option switched on.
var scenarios = map[string][]scenario{
	controlPlane: {
		{"defaults", map[string]string{"CodeBucket": "acme-artifacts", "CodeKey": "dbusers/0123abc/function.zip"}},
		{"every option", map[string]string{
			"CodeBucket": "acme-artifacts", "CodeKey": "dbusers/0123abc/function.zip", "CodeObjectVersion": "3HL4kqtJlcpXroDTDmJ",
			"MemorySize": "1024", "PointerParameter": "/acme/dbusers/bundle", "ManagementRoleName": "acme-dbusers",
			"AdditionalManagementRoleArns": legacyRoleArn, "TargetAccountIds": "111111111111,222222222222",
			"Concurrency": "16", "DryRun": "true", "CABundle": "/var/task/global-bundle.pem", "LockTimeout": "45s",
			"ScheduleExpression": "cron(0/30 * * * ? *)", "RulesState": "DISABLED",
			"SubnetIds": "subnet-0a,subnet-0b", "SecurityGroupIds": "sg-0c", "LogRetentionDays": "365",
			"TopicKmsKeyArn": topicKeyArn, "AlertEmail": "dba@acme.example",
			"PublishRoleArn": publishRoleArn, "AllowUnsigned": "true",
			"EnablePlanFunction": "true", "PlanConcurrency": "3", "UnmanagedAccountsThreshold": "25",
		}},
		{"no plan function", map[string]string{"CodeBucket": "acme-artifacts", "CodeKey": "dbusers/0123abc/function.zip",
			"EnablePlanFunction": "false"}},
	},
	targetAccount: {
		{"defaults", map[string]string{"ControlPlaneRoleArn": controlRoleArn, "ExternalId": "dbusers-acme"}},
		{"every option", map[string]string{
			"ControlPlaneRoleArn": controlRoleArn, "ExternalId": "another-id", "ManagementRoleName": "acme-dbusers",
			"SecretNamePrefix": "platform/db/", "RdsManagedSecretArns": rdsSecretArn, "SecretKmsKeyArns": secretKeyArn,
		}},
	},
	githubOIDC: {
		{"defaults", map[string]string{"GitHubOwner": "acme", "GitHubRepository": "dbusers-config", "SigningKeyArn": signingKeyArn}},
		{"existing provider", map[string]string{"GitHubOwner": "acme", "GitHubRepository": "dbusers-config", "SigningKeyArn": signingKeyArn,
			"CreateOIDCProvider": "false", "PointerParameter": "/acme/dbusers/bundle", "RoleName": "acme-publish"}},
		{"plan role", map[string]string{"GitHubOwner": "acme", "GitHubRepository": "dbusers-config", "SigningKeyArn": signingKeyArn,
			"PlanFunctionArn": planFunctionArn}},
		{"plan role, existing provider", map[string]string{"GitHubOwner": "acme", "GitHubRepository": "dbusers-config", "SigningKeyArn": signingKeyArn,
			"CreateOIDCProvider": "false", "PlanFunctionArn": planFunctionArn, "PlanRoleName": "acme-plan"}},
	},
}

// evaluated is one template evaluated for one scenario.
type evaluated struct {
	scenario
	*stack
}

func evaluateAll(t *testing.T, file string) []evaluated {
	t.Helper()
	tpl := loadTemplate(t, file)
	var out []evaluated
	for _, sc := range scenarios[file] {
		s, err := tpl.evaluate(sc.values)
		if err != nil {
			t.Fatalf("%s (%s): %v", file, sc.name, err)
		}
		out = append(out, evaluated{sc, s})
	}
	return out
}

func param(e evaluated, name string) string {
	return fmt.Sprint(e.params[name])
}

// strs reads a policy element that is a string or a list of strings.
func strs(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			out = append(out, fmt.Sprint(e))
		}
		return out
	}
	return nil
}

// statement is one IAM policy statement after evaluation.
type statement struct {
	owner     string // logical id of the role or resource policy
	where     string
	effect    string
	actions   []string
	resources []string
	principal any
	condition map[string]any
}

func statementsOf(owner, where string, doc any) []statement {
	m, _ := doc.(map[string]any)
	var out []statement
	for i, st := range asList(m["Statement"]) {
		st, _ := st.(map[string]any)
		cond, _ := st["Condition"].(map[string]any)
		w := fmt.Sprintf("%s statement %d", where, i)
		if sid, ok := st["Sid"].(string); ok {
			w = where + " statement " + sid
		}
		out = append(out, statement{owner: owner, where: w, effect: fmt.Sprint(st["Effect"]),
			actions: strs(st["Action"]), resources: strs(st["Resource"]), principal: st["Principal"], condition: cond})
	}
	return out
}

func asList(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	if v == nil {
		return nil
	}
	return []any{v}
}

// policies returns the permission statements (identity and resource
// policies) and the trust statements of every role in a stack.
func policies(t *testing.T, e evaluated) (perms, trust []statement) {
	t.Helper()
	for _, id := range sortedKeys(e.t.section("Resources")) {
		typ := e.t.section("Resources")[id].(map[string]any)["Type"]
		switch typ {
		case "AWS::IAM::Role":
			r := e.resource(t, id)
			if r == nil {
				continue
			}
			if r["ManagedPolicyArns"] != nil || r["PermissionsBoundary"] != nil {
				t.Errorf("%s: role %s attaches managed policies: their actions escape the allow-list", e.t.file, id)
			}
			trust = append(trust, statementsOf(id, id+" trust", r["AssumeRolePolicyDocument"])...)
			for _, p := range asList(r["Policies"]) {
				p := p.(map[string]any)
				perms = append(perms, statementsOf(id, fmt.Sprintf("%s policy %v", id, p["PolicyName"]), p["PolicyDocument"])...)
			}
		case "AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy":
			if r := e.resource(t, id); r != nil {
				perms = append(perms, statementsOf(id, id, r["PolicyDocument"])...)
			}
		case "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::User", "AWS::IAM::Group", "AWS::IAM::AccessKey":
			t.Errorf("%s: %s is a %s: keep permissions inline in the roles (or extend these tests)", e.t.file, id, typ)
		}
	}
	return perms, trust
}

// allowedActions is, per template and role (or resource policy), every
// action it may allow.
var allowedActions = map[string]map[string][]string{
	controlPlane: {
		"FunctionRole": append([]string{
			// the bundle
			"ssm:GetParameter", "ssm:GetParameters",
			// the management role in each account
			"sts:AssumeRole",
			// failure reports
			"sns:Publish",
			// its own log group
			"logs:CreateLogStream", "logs:PutLogEvents",
			// the on-failure destination
			"sqs:SendMessage",
			// only with TopicKmsKeyArn
			"kms:GenerateDataKey", "kms:Decrypt",
			// only with SubnetIds: Lambda's network interfaces
			"ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets",
			"ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface",
			"ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses",
		}, recordWriteActions()...), // the rollout records
		"DeadLetterQueuePolicy": {"sqs:SendMessage"},
	},
	targetAccount: {
		"ManagementRole": {"secretsmanager:GetSecretValue", "kms:Decrypt"},
	},
	githubOIDC: {
		"PublishRole": append(publishActions(), signActions()...),
		// The one call dbusers plan --live makes (bot/cmd/dbusers InvokeAPI).
		"PlanRole": {"lambda:InvokeFunction"},
	},
}

// anyResource lists the only actions allowed on Resource "*", and why.
var anyResource = map[string]string{
	"ec2:DescribeNetworkInterfaces": "Describe actions have no resource-level permissions (Lambda VPC networking)",
	"ec2:DescribeSubnets":           "Describe actions have no resource-level permissions (Lambda VPC networking)",
}

func TestIAMLeastPrivilege(t *testing.T) {
	for _, file := range []string{controlPlane, targetAccount, githubOIDC} {
		for _, e := range evaluateAll(t, file) {
			perms, _ := policies(t, e)
			if len(perms) == 0 {
				t.Errorf("%s (%s): no policy statements found", file, e.name)
			}
			for _, st := range perms {
				allowed, ok := allowedActions[file][st.owner]
				if !ok {
					t.Errorf("%s (%s): %s: %s has no allow-list", file, e.name, st.where, st.owner)
					continue
				}
				if st.effect != "Allow" {
					t.Errorf("%s (%s): %s: Effect %q", file, e.name, st.where, st.effect)
				}
				if len(st.actions) == 0 || len(st.resources) == 0 {
					t.Errorf("%s (%s): %s: needs Action and Resource (NotAction/NotResource are not used)", file, e.name, st.where)
				}
				for _, a := range st.actions {
					if strings.Contains(a, "*") {
						t.Errorf("%s (%s): %s: wildcard action %q", file, e.name, st.where, a)
					}
					if !slices.Contains(allowed, a) {
						t.Errorf("%s (%s): %s: action %s is not on %s's allow-list", file, e.name, st.where, a, st.owner)
					}
				}
				for _, r := range st.resources {
					if r != "*" {
						continue
					}
					for _, a := range st.actions {
						if _, ok := anyResource[a]; !ok {
							t.Errorf("%s (%s): %s: %s on Resource \"*\"", file, e.name, st.where, a)
						}
					}
				}
			}
		}
	}
}

// grants sums up a role's statements: action → sorted resources, with the
// conditions that apply.
type grant struct {
	Resources []string
	Condition map[string]any
}

func grantsOf(perms []statement, owner string) map[string]grant {
	out := map[string]grant{}
	for _, st := range perms {
		if st.owner != owner {
			continue
		}
		for _, a := range st.actions {
			g := out[a]
			g.Resources = append(g.Resources, st.resources...)
			slices.Sort(g.Resources)
			if st.condition != nil {
				g.Condition = st.condition
			}
			out[a] = g
		}
	}
	return out
}

// TestControlPlaneRoleGrants pins every resource the Lambda's role reaches.
func TestControlPlaneRoleGrants(t *testing.T) {
	ssmArn := "arn:aws:ssm:eu-west-1:123456789012:parameter"
	for _, e := range evaluateAll(t, controlPlane) {
		perms, _ := policies(t, e)
		got := grantsOf(perms, "FunctionRole")
		pointer := param(e, "PointerParameter")
		bundle := []string{ssmArn + pointer, ssmArn + pointer + "/v/*"}
		// Accounts vary with the fleet: the account is a wildcard, the
		// role name is not (see AssumeManagementRole in the template).
		roles := []string{"arn:aws:iam::*:role/" + param(e, "ManagementRoleName")}
		var assumeCond map[string]any
		if e.name == "every option" {
			roles = append(roles, legacyRoleArn)
			slices.Sort(roles)
			assumeCond = map[string]any{"StringEquals": map[string]any{"aws:ResourceAccount": []any{"111111111111", "222222222222"}}}
		}
		// The plan function shares the role and has a log group of its own.
		logs := []string{attOf("LogGroup", "Arn")}
		if param(e, "EnablePlanFunction") == "true" {
			logs = append(logs, attOf("PlanLogGroup", "Arn"))
		}
		want := map[string]grant{
			"logs:CreateLogStream": {Resources: logs},
			"logs:PutLogEvents":    {Resources: logs},
			"sqs:SendMessage":      {Resources: []string{attOf("DeadLetterQueue", "Arn")}},
		}
		for _, a := range lambdaReadActions {
			want[a] = grant{Resources: bundle}
		}
		// The rollout records, on the status path alone.
		for _, a := range recordWriteActions() {
			g := want[a]
			g.Resources = append(g.Resources, ssmArn+pointer+"/status", ssmArn+pointer+"/status/*")
			slices.Sort(g.Resources)
			want[a] = g
		}
		// The calls the Lambda's code declares, on their resources only.
		for _, a := range actionsOf[fleet.AssumeRoleAPI]("sts") {
			want[a] = grant{Resources: roles, Condition: assumeCond}
		}
		for _, a := range actionsOf[fleet.PublishAPI]("sns") {
			want[a] = grant{Resources: []string{refOf("Topic")}}
		}
		if e.name == "every option" {
			viaSNS := map[string]any{"StringEquals": map[string]any{"kms:ViaService": "sns.eu-west-1.amazonaws.com"}}
			want["kms:GenerateDataKey"] = grant{Resources: []string{topicKeyArn}, Condition: viaSNS}
			want["kms:Decrypt"] = grant{Resources: []string{topicKeyArn}, Condition: viaSNS}
			want["ec2:DescribeNetworkInterfaces"] = grant{Resources: []string{"*"}}
			want["ec2:DescribeSubnets"] = grant{Resources: []string{"*"}}
			for _, a := range []string{"ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"} {
				want[a] = grant{Resources: []string{"arn:aws:ec2:eu-west-1:123456789012:*/*"}}
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: FunctionRole grants (-want +got):\n%s", e.name, diff)
		}
	}
}

// TestTargetRoleGrants pins what the management role may read.
func TestTargetRoleGrants(t *testing.T) {
	for _, e := range evaluateAll(t, targetAccount) {
		perms, _ := policies(t, e)
		got := grantsOf(perms, "ManagementRole")
		secrets := []string{"arn:aws:secretsmanager:*:123456789012:secret:" + param(e, "SecretNamePrefix") + "*"}
		if e.name == "every option" {
			secrets = append(secrets, rdsSecretArn)
		}
		// Exactly the Secrets Manager calls the Lambda's code declares.
		want := map[string]grant{}
		for _, a := range actionsOf[fleet.SecretsAPI]("secretsmanager") {
			want[a] = grant{Resources: secrets}
		}
		if e.name == "every option" {
			want["kms:Decrypt"] = grant{Resources: []string{secretKeyArn},
				Condition: map[string]any{"StringLike": map[string]any{"kms:ViaService": "secretsmanager.*.amazonaws.com"}}}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: ManagementRole grants (-want +got):\n%s", e.name, diff)
		}
	}
}

// TestPublishRoleGrants: exactly what ssmbundle.Publish calls, on the
// pointer and its versions, and the signing key, only.
func TestPublishRoleGrants(t *testing.T) {
	for _, e := range evaluateAll(t, githubOIDC) {
		perms, _ := policies(t, e)
		got := grantsOf(perms, "PublishRole")
		base := "arn:aws:ssm:eu-west-1:123456789012:parameter" + param(e, "PointerParameter")
		want := map[string]grant{}
		for _, a := range publishActions() {
			want[a] = grant{Resources: []string{base, base + "/v", base + "/v/*"}}
		}
		// The rollout records: read, on the status path.
		for _, a := range recordReadActions() {
			g := want[a]
			g.Resources = append(g.Resources, base+"/status/*")
			slices.Sort(g.Resources)
			want[a] = g
		}
		// The signing key alone; the key policy narrows it further.
		for _, a := range signActions() {
			want[a] = grant{Resources: []string{param(e, "SigningKeyArn")}}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: PublishRole grants (-want +got):\n%s", e.name, diff)
		}
	}
}

// TestPlanRoleGrants: the plan role may invoke the plan function, and
// nothing else: not the run function, not a version or alias, not "*".
// Without PlanFunctionArn there is no plan role.
func TestPlanRoleGrants(t *testing.T) {
	for _, e := range evaluateAll(t, githubOIDC) {
		perms, _ := policies(t, e)
		got := grantsOf(perms, "PlanRole")
		fn := param(e, "PlanFunctionArn")
		if fn == "" {
			if len(got) != 0 || e.resource(t, "PlanRole") != nil {
				t.Errorf("%s: no PlanFunctionArn, yet a plan role with %v", e.name, got)
			}
			continue
		}
		want := map[string]grant{"lambda:InvokeFunction": {Resources: []string{planFunctionArn}}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: PlanRole grants (-want +got):\n%s", e.name, diff)
		}
		for _, st := range perms {
			if st.owner != "PlanRole" {
				continue
			}
			for _, r := range st.resources {
				if r != fn || strings.ContainsAny(r, "*?") || r == runFunctionArn || strings.Count(r, ":") != 6 {
					t.Errorf("%s: %s: resource %q, want exactly the unqualified plan function %s", e.name, st.where, r, fn)
				}
			}
			if st.condition != nil {
				t.Errorf("%s: %s: a condition %v (the grant is the plan function, unconditionally)", e.name, st.where, st.condition)
			}
		}
		r := e.resource(t, "PlanRole")
		if r["MaxSessionDuration"] != 3600 || r["RoleName"] != param(e, "PlanRoleName") {
			t.Errorf("%s: PlanRole %v: want RoleName the PlanRoleName parameter and MaxSessionDuration 3600", e.name, r)
		}
	}
}

// conditionAllows evaluates an IAM Condition block against request
// context keys, for the operators these templates use.
func conditionAllows(cond map[string]any, ctx map[string]string) (bool, error) {
	for op, block := range cond {
		keys, ok := block.(map[string]any)
		if !ok {
			return false, fmt.Errorf("condition %s is not a mapping", op)
		}
		for key, want := range keys {
			got, present := ctx[key]
			if !present {
				return false, nil
			}
			matched := false
			for _, w := range strs(want) {
				switch op {
				case "StringEquals":
					matched = matched || got == w
				case "StringLike":
					m, err := path.Match(w, got)
					if err != nil {
						return false, err
					}
					matched = matched || m
				default:
					return false, fmt.Errorf("condition operator %s is not implemented", op)
				}
			}
			if !matched {
				return false, nil
			}
		}
	}
	return true, nil
}

// trustAllows reports whether a role's trust policy lets principal call
// action with the request context.
func trustAllows(trust []statement, owner, principalKind, principal, action string, ctx map[string]string) (bool, error) {
	for _, st := range trust {
		if st.owner != owner || st.effect != "Allow" || !slices.Contains(st.actions, action) {
			continue
		}
		p, _ := st.principal.(map[string]any)
		if !slices.Contains(strs(p[principalKind]), principal) {
			continue
		}
		ok, err := conditionAllows(st.condition, ctx)
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

func TestTrustPolicies(t *testing.T) {
	t.Run("control plane", func(t *testing.T) {
		for _, e := range evaluateAll(t, controlPlane) {
			_, trust := policies(t, e)
			want := []statement{{owner: "FunctionRole", where: "FunctionRole trust statement 0", effect: "Allow",
				actions: []string{"sts:AssumeRole"}, principal: map[string]any{"Service": "lambda.amazonaws.com"}}}
			if diff := cmp.Diff(want, trust, cmp.AllowUnexported(statement{})); diff != "" {
				t.Errorf("%s: trust (-want +got):\n%s", e.name, diff)
			}
		}
	})
	t.Run("management role needs the control plane and the external id", func(t *testing.T) {
		for _, e := range evaluateAll(t, targetAccount) {
			_, trust := policies(t, e)
			id := param(e, "ExternalId")
			for _, st := range trust {
				if st.effect == "Allow" && !reflect.DeepEqual(st.condition, map[string]any{"StringEquals": map[string]any{"sts:ExternalId": id}}) {
					t.Errorf("%s: %s: condition %v, want exactly sts:ExternalId = %q", e.name, st.where, st.condition, id)
				}
				p, _ := st.principal.(map[string]any)
				if !reflect.DeepEqual(p, map[string]any{"AWS": controlRoleArn}) {
					t.Errorf("%s: %s: principal %v, want only %s", e.name, st.where, st.principal, controlRoleArn)
				}
			}
			for _, tc := range []struct {
				name, principal string
				ctx             map[string]string
				want            bool
			}{
				{"control plane with the id", controlRoleArn, map[string]string{"sts:ExternalId": id}, true},
				{"control plane without an id", controlRoleArn, nil, false},
				{"control plane with another id", controlRoleArn, map[string]string{"sts:ExternalId": id + "x"}, false},
				{"another role with the id", "arn:aws:iam::123456789012:role/other", map[string]string{"sts:ExternalId": id}, false},
			} {
				got, err := trustAllows(trust, "ManagementRole", "AWS", tc.principal, "sts:AssumeRole", tc.ctx)
				if err != nil || got != tc.want {
					t.Errorf("%s: %s: allowed = %v (%v), want %v", e.name, tc.name, got, err, tc.want)
				}
			}
		}
	})
	t.Run("publish role is the main branch of one repository", func(t *testing.T) {
		for _, e := range evaluateAll(t, githubOIDC) {
			_, trust := policies(t, e)
			provider := refOf("GitHubOIDCProvider")
			if param(e, "CreateOIDCProvider") == "false" {
				provider = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
			}
			for _, st := range trust {
				if st.owner != "PublishRole" {
					continue
				}
				want := map[string]any{"StringEquals": map[string]any{
					"token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
					"token.actions.githubusercontent.com:sub": "repo:acme/dbusers-config:ref:refs/heads/main",
				}}
				if diff := cmp.Diff(want, st.condition); diff != "" {
					t.Errorf("%s: %s: condition (-want +got):\n%s", e.name, st.where, diff)
				}
			}
			claims := func(sub string) map[string]string {
				return map[string]string{"token.actions.githubusercontent.com:aud": "sts.amazonaws.com", "token.actions.githubusercontent.com:sub": sub}
			}
			for _, tc := range []struct {
				name string
				ctx  map[string]string
				want bool
			}{
				{"main", claims("repo:acme/dbusers-config:ref:refs/heads/main"), true},
				{"another branch", claims("repo:acme/dbusers-config:ref:refs/heads/feature"), false},
				{"a branch named main-x", claims("repo:acme/dbusers-config:ref:refs/heads/main-x"), false},
				{"a tag", claims("repo:acme/dbusers-config:ref:refs/tags/main"), false},
				{"a pull request", claims("repo:acme/dbusers-config:pull_request"), false},
				{"an environment", claims("repo:acme/dbusers-config:environment:production"), false},
				{"a fork's main", claims("repo:mallory/dbusers-config:ref:refs/heads/main"), false},
				{"a look-alike repository", claims("repo:acme/dbusers-config2:ref:refs/heads/main"), false},
				{"another audience", map[string]string{"token.actions.githubusercontent.com:aud": "sigstore",
					"token.actions.githubusercontent.com:sub": "repo:acme/dbusers-config:ref:refs/heads/main"}, false},
			} {
				got, err := trustAllows(trust, "PublishRole", "Federated", provider, "sts:AssumeRoleWithWebIdentity", tc.ctx)
				if err != nil || got != tc.want {
					t.Errorf("%s: %s: allowed = %v (%v), want %v", e.name, tc.name, got, err, tc.want)
				}
			}
			if p := e.resource(t, "GitHubOIDCProvider"); p != nil {
				if p["Url"] != "https://token.actions.githubusercontent.com" || !reflect.DeepEqual(p["ClientIdList"], []any{"sts.amazonaws.com"}) {
					t.Errorf("%s: OIDC provider %v", e.name, p)
				}
			} else if param(e, "CreateOIDCProvider") != "false" {
				t.Errorf("%s: no OIDC provider", e.name)
			}
		}
	})
	// pr.yml runs on pull_request_target, whose token's subject is
	// repo:<owner>/<repo>:pull_request for a fork's pull request too: the
	// trust admits this repository's pull-request tokens and nothing else,
	// and the workflow keeps forks out (TestPlanRoleOnlyForThisRepository).
	t.Run("plan role is the pull requests of one repository", func(t *testing.T) {
		planned := 0
		for _, e := range evaluateAll(t, githubOIDC) {
			_, trust := policies(t, e)
			if param(e, "PlanFunctionArn") == "" {
				for _, st := range trust {
					if st.owner == "PlanRole" {
						t.Errorf("%s: a plan role trust statement without PlanFunctionArn", e.name)
					}
				}
				continue
			}
			planned++
			provider := refOf("GitHubOIDCProvider")
			if param(e, "CreateOIDCProvider") == "false" {
				provider = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
			}
			n := 0
			for _, st := range trust {
				if st.owner != "PlanRole" {
					continue
				}
				n++
				// StringEquals, on both keys, and no pattern: a StringLike
				// (or a * in the value) would let in other repositories,
				// branches or environments.
				want := map[string]any{"StringEquals": map[string]any{
					"token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
					"token.actions.githubusercontent.com:sub": "repo:acme/dbusers-config:pull_request",
				}}
				if diff := cmp.Diff(want, st.condition); diff != "" {
					t.Errorf("%s: %s: condition (-want +got):\n%s", e.name, st.where, diff)
				}
				if !slices.Equal(st.actions, []string{"sts:AssumeRoleWithWebIdentity"}) ||
					!reflect.DeepEqual(st.principal, map[string]any{"Federated": provider}) {
					t.Errorf("%s: %s: %v by %v, want only sts:AssumeRoleWithWebIdentity by %s", e.name, st.where, st.actions, st.principal, provider)
				}
			}
			if n != 1 {
				t.Errorf("%s: %d plan role trust statements, want 1", e.name, n)
			}
			claims := func(sub string) map[string]string {
				return map[string]string{"token.actions.githubusercontent.com:aud": "sts.amazonaws.com", "token.actions.githubusercontent.com:sub": sub}
			}
			for _, tc := range []struct {
				name string
				ctx  map[string]string
				want bool
			}{
				{"a pull request of the repository", claims("repo:acme/dbusers-config:pull_request"), true},
				{"main", claims("repo:acme/dbusers-config:ref:refs/heads/main"), false},
				{"another branch", claims("repo:acme/dbusers-config:ref:refs/heads/feature"), false},
				{"a pull request's merge ref", claims("repo:acme/dbusers-config:ref:refs/pull/7/merge"), false},
				{"an environment", claims("repo:acme/dbusers-config:environment:production"), false},
				{"a fork's own pull request", claims("repo:mallory/dbusers-config:pull_request"), false},
				{"another repository of the owner", claims("repo:acme/other:pull_request"), false},
				{"a look-alike repository", claims("repo:acme/dbusers-config2:pull_request"), false},
				{"a shorter look-alike", claims("repo:acme/dbusers:pull_request"), false},
				{"a suffix", claims("repo:acme/dbusers-config:pull_request:x"), false},
				{"a pattern as the subject", claims("repo:acme/*:pull_request"), false},
				{"a pattern as the repository", claims("repo:acme/dbusers-confi?:pull_request"), false},
				{"the subject in another case", claims("repo:ACME/dbusers-config:pull_request"), false},
				{"no subject", map[string]string{"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}, false},
				{"another audience", map[string]string{"token.actions.githubusercontent.com:aud": "sigstore",
					"token.actions.githubusercontent.com:sub": "repo:acme/dbusers-config:pull_request"}, false},
			} {
				got, err := trustAllows(trust, "PlanRole", "Federated", provider, "sts:AssumeRoleWithWebIdentity", tc.ctx)
				if err != nil || got != tc.want {
					t.Errorf("%s: %s: allowed = %v (%v), want %v", e.name, tc.name, got, err, tc.want)
				}
				// Nothing but main ever gets the publish role, and a pull
				// request's token in particular never does.
				if pub, err := trustAllows(trust, "PublishRole", "Federated", provider, "sts:AssumeRoleWithWebIdentity", tc.ctx); err != nil || (pub && tc.name != "main") {
					t.Errorf("%s: %s: the publish role trusts it (%v)", e.name, tc.name, err)
				}
			}
		}
		if planned == 0 {
			t.Fatal("no github-oidc.yaml scenario creates the plan role")
		}
	})
}

// parameterStoreChange is an event as Systems Manager sends it to
// EventBridge (the shape of the "Parameter Store Change" example in the
// Systems Manager user guide).
func parameterStoreChange(name, operation string) string {
	return fmt.Sprintf(`{
  "version": "0",
  "id": "6a7e4feb-b491-4cf7-a9f1-bf3703497718",
  "detail-type": "Parameter Store Change",
  "source": "aws.ssm",
  "account": "123456789012",
  "time": "2026-11-27T16:43:48Z",
  "region": "eu-west-1",
  "resources": ["arn:aws:ssm:eu-west-1:123456789012:parameter%s"],
  "detail": {"operation": %q, "name": %q, "type": "String", "description": "dbusers: current configuration bundle"}
}`, name, operation, name)
}

func TestConfigChangedRule(t *testing.T) {
	for _, e := range evaluateAll(t, controlPlane) {
		var rules []string
		for _, id := range e.t.resourcesOfType("AWS::Events::Rule") {
			if e.resource(t, id)["EventPattern"] != nil {
				rules = append(rules, id)
			}
		}
		if len(rules) != 1 {
			t.Fatalf("%s: rules with an event pattern: %v, want one", e.name, rules)
		}
		pattern, ok := e.resource(t, rules[0])["EventPattern"].(map[string]any)
		if !ok {
			t.Fatalf("%s: EventPattern is not an object", e.name)
		}
		pointer := param(e, "PointerParameter")
		for _, tc := range []struct {
			name  string
			event string
			want  bool
		}{
			{"pointer updated", parameterStoreChange(pointer, "Update"), true},
			{"pointer created (first publish)", parameterStoreChange(pointer, "Create"), true},
			{"pointer deleted", parameterStoreChange(pointer, "Delete"), false},
			{"pointer labelled", parameterStoreChange(pointer, "LabelParameterVersion"), false},
			{"a chunk written", parameterStoreChange(pointer+"/v/20261127T164348Z-0123456789ab/0000", "Create"), false},
			{"a look-alike parameter", parameterStoreChange(pointer+"-staging", "Update"), false},
			{"a parent path", parameterStoreChange(path.Dir(pointer), "Update"), false},
			{"another parameter", parameterStoreChange("/other/config", "Update"), false},
			{"another source", strings.Replace(parameterStoreChange(pointer, "Update"), `"aws.ssm"`, `"acme.dbusers"`, 1), false},
			{"a policy action", strings.Replace(parameterStoreChange(pointer, "Update"), "Parameter Store Change", "Parameter Store Policy Action", 1), false},
		} {
			got, err := matchPattern(pattern, decodeEvent(t, tc.event))
			if err != nil {
				t.Fatalf("%s: %s: %v", e.name, tc.name, err)
			}
			if got != tc.want {
				t.Errorf("%s: %s: match = %v, want %v", e.name, tc.name, got, tc.want)
			}
		}
	}
}

func TestSchedule(t *testing.T) {
	for _, e := range evaluateAll(t, controlPlane) {
		n := 0
		for _, id := range e.t.resourcesOfType("AWS::Events::Rule") {
			expr, ok := e.resource(t, id)["ScheduleExpression"].(string)
			if !ok {
				continue
			}
			n++
			if err := checkSchedule(expr); err != nil {
				t.Errorf("%s: %s: %v", e.name, id, err)
			}
		}
		if n != 1 {
			t.Errorf("%s: %d schedule rules, want 1", e.name, n)
		}
	}
}

// TestRulesInvokeTheFunction: every rule targets the function, may invoke
// it, and sends what it cannot deliver to the dead-letter queue.
func TestRulesInvokeTheFunction(t *testing.T) {
	for _, e := range evaluateAll(t, controlPlane) {
		permitted := map[string]bool{}
		for _, id := range e.t.resourcesOfType("AWS::Lambda::Permission") {
			p := e.resource(t, id)
			if p["FunctionName"] == refOf("Function") && p["Action"] == "lambda:InvokeFunction" && p["Principal"] == "events.amazonaws.com" {
				permitted[fmt.Sprint(p["SourceArn"])] = true
			}
		}
		rules := e.t.resourcesOfType("AWS::Events::Rule")
		for _, id := range rules {
			r := e.resource(t, id)
			if r["State"] != param(e, "RulesState") {
				t.Errorf("%s: %s: State %v, want the RulesState parameter", e.name, id, r["State"])
			}
			targets := asList(r["Targets"])
			if len(targets) != 1 {
				t.Errorf("%s: %s: %d targets, want 1", e.name, id, len(targets))
				continue
			}
			target := targets[0].(map[string]any)
			if target["Arn"] != attOf("Function", "Arn") {
				t.Errorf("%s: %s: targets %v, want the function", e.name, id, target["Arn"])
			}
			if target["Input"] != nil || target["InputPath"] != nil || target["InputTransformer"] != nil {
				t.Errorf("%s: %s: the function tells events apart by their own shape; do not rewrite them", e.name, id)
			}
			if dlq, _ := target["DeadLetterConfig"].(map[string]any); dlq["Arn"] != attOf("DeadLetterQueue", "Arn") {
				t.Errorf("%s: %s: no dead-letter queue for failed deliveries", e.name, id)
			}
			if !permitted[attOf(id, "Arn")] {
				t.Errorf("%s: %s: no lambda:InvokeFunction permission for events.amazonaws.com with this rule as SourceArn", e.name, id)
			}
		}
		// The queue accepts EventBridge's failed deliveries from these rules only.
		perms, _ := policies(t, e)
		var sources []string
		for _, st := range perms {
			if st.owner == "DeadLetterQueuePolicy" {
				sources = append(sources, strs(st.condition["ArnEquals"].(map[string]any)["aws:SourceArn"])...)
			}
		}
		var want []string
		for _, id := range rules {
			want = append(want, attOf(id, "Arn"))
		}
		slices.Sort(sources)
		if !slices.Equal(sources, want) {
			t.Errorf("%s: the queue policy accepts %v, want the rules %v", e.name, sources, want)
		}
	}
}

func TestFunction(t *testing.T) {
	for _, e := range evaluateAll(t, controlPlane) {
		f := e.resource(t, "Function")
		for key, want := range map[string]any{
			"Runtime":                      "provided.al2023",
			"Architectures":                []any{"arm64"},
			"Handler":                      "bootstrap",
			"Timeout":                      900,
			"MemorySize":                   param(e, "MemorySize"),
			"ReservedConcurrentExecutions": 1,
			"Role":                         attOf("FunctionRole", "Arn"),
		} {
			if !equalJSON(f[key], want) {
				t.Errorf("%s: Function %s = %v, want %v", e.name, key, f[key], want)
			}
		}
		logging, _ := f["LoggingConfig"].(map[string]any)
		if logging["LogGroup"] != refOf("LogGroup") || logging["LogFormat"] != "Text" {
			t.Errorf("%s: LoggingConfig %v: want the stack's log group, lines as written (EMF needs the raw JSON)", e.name, logging)
		}
		env := f["Environment"].(map[string]any)["Variables"].(map[string]any)
		names := sortedKeys(env)
		for _, n := range names {
			if !slices.Contains(lambdaEnv, n) {
				t.Errorf("%s: environment variable %s is not one the Lambda reads", e.name, n)
			}
		}
		// The template always sets the topic as well: without it the Lambda
		// runs but sends no alert.
		// And the signing key: without it the Lambda refuses to start,
		// unless unsigned bundles are allowed.
		for _, n := range append([]string{fleet.EnvSNSTopic, fleet.EnvSigningKey}, lambdaEnvRequired...) {
			if _, ok := env[n]; !ok {
				t.Errorf("%s: environment variable %s is missing", e.name, n)
			}
		}
		if e.name == "every option" {
			// All but DBUSERS_PLAN_ONLY, which only the plan function sets.
			want := slices.DeleteFunc(slices.Sorted(slices.Values(lambdaEnv)), func(n string) bool { return n == fleet.EnvPlanOnly })
			if !slices.Equal(names, want) {
				t.Errorf("every option: environment variables %v, want exactly %v", names, want)
			}
		}
		// Each variable carries its parameter; the optional ones are unset
		// when their parameter is empty (or false), so the code's defaults
		// (and dbusers.json's concurrency) apply.
		for n, want := range map[string]string{
			fleet.EnvPointer:     param(e, "PointerParameter"),
			fleet.EnvSNSTopic:    refOf("Topic"),
			fleet.EnvConcurrency: param(e, "Concurrency"),
			fleet.EnvCABundle:    param(e, "CABundle"),
			fleet.EnvLockTimeout: param(e, "LockTimeout"),
			fleet.EnvDryRun:      map[string]string{"true": "true"}[param(e, "DryRun")],
			// The key's ARN (what the pointer names), never the alias.
			fleet.EnvSigningKey:    attOf("SigningKey", "Arn"),
			fleet.EnvAllowUnsigned: map[string]string{"true": "true"}[param(e, "AllowUnsigned")],
		} {
			got, set := env[n]
			if want == "" && set {
				t.Errorf("%s: %s = %v, want it unset", e.name, n, got)
			} else if want != "" && fmt.Sprint(got) != want {
				t.Errorf("%s: %s = %v, want %v", e.name, n, got, want)
			}
		}

		var configs []string
		for _, id := range e.t.resourcesOfType("AWS::Lambda::EventInvokeConfig") {
			c := e.resource(t, id)
			if c["FunctionName"] != refOf("Function") {
				continue
			}
			configs = append(configs, id)
			if n, _ := c["MaximumRetryAttempts"].(int); n > 1 || c["MaximumRetryAttempts"] == nil {
				t.Errorf("%s: %s: MaximumRetryAttempts %v, want 0 or 1", e.name, id, c["MaximumRetryAttempts"])
			}
			dest, _ := c["DestinationConfig"].(map[string]any)
			onFailure, _ := dest["OnFailure"].(map[string]any)
			if onFailure["Destination"] != attOf("DeadLetterQueue", "Arn") {
				t.Errorf("%s: %s: on-failure destination %v, want the dead-letter queue", e.name, id, onFailure["Destination"])
			}
		}
		if len(configs) != 1 && f["DeadLetterConfig"] == nil {
			t.Errorf("%s: no on-failure destination or DeadLetterConfig for asynchronous invocations", e.name)
		}

		lg := e.resource(t, "LogGroup")
		if lg["LogGroupName"] != "/aws/lambda/"+param(e, "FunctionName") || lg["RetentionInDays"] == nil {
			t.Errorf("%s: log group %v: want /aws/lambda/<function> with a retention", e.name, lg)
		}
		if raw := e.t.section("Resources")["LogGroup"].(map[string]any); raw["DeletionPolicy"] != "Retain" {
			t.Errorf("%s: the log group (the audit trail) is not retained when the stack is deleted", e.name)
		}
		topic := e.resource(t, "Topic")
		if _, encrypted := topic["KmsMasterKeyId"]; encrypted != (param(e, "TopicKmsKeyArn") != "") {
			t.Errorf("%s: topic encryption %v does not follow TopicKmsKeyArn", e.name, topic["KmsMasterKeyId"])
		}
	}
}

// planLeavesOut are the run function's variables the plan function does
// without: plan mode sends no alert and takes no lock.
var planLeavesOut = []string{fleet.EnvSNSTopic, fleet.EnvLockTimeout}

// planFunctionReferrers are the only resources that may name the plan
// function: anything else (a rule, a permission, an event source mapping,
// an alarm) would be a way to invoke it, or to page on what a pull
// request sends.
var planFunctionReferrers = []string{"PlanFunctionEventInvokeConfig"}

// TestPlanFunction: the plan function is the run function's code, role
// and network with DBUSERS_PLAN_ONLY=true, a log group and a reserved
// concurrency of its own and a 300 s timeout, and nothing in the stack
// invokes it. (TestFunction holds the run function to what it was.)
func TestPlanFunction(t *testing.T) {
	for _, e := range evaluateAll(t, controlPlane) {
		f, run := e.resource(t, "PlanFunction"), e.resource(t, "Function")
		outputs, err := e.outputs()
		if err != nil {
			t.Fatalf("%s: %v", e.name, err)
		}
		runEnv := run["Environment"].(map[string]any)["Variables"].(map[string]any)
		if _, ok := runEnv[fleet.EnvPlanOnly]; ok {
			t.Errorf("%s: the run function sets %s", e.name, fleet.EnvPlanOnly)
		}
		if param(e, "EnablePlanFunction") != "true" {
			if f != nil || e.resource(t, "PlanLogGroup") != nil || e.resource(t, "PlanFunctionEventInvokeConfig") != nil {
				t.Errorf("%s: EnablePlanFunction=false, yet a plan function, log group or invoke config", e.name)
			}
			if _, ok := outputs["PlanFunctionArn"]; ok {
				t.Errorf("%s: EnablePlanFunction=false, yet an output PlanFunctionArn", e.name)
			}
			continue
		}
		if f == nil {
			t.Fatalf("%s: no plan function", e.name)
		}
		for key, want := range map[string]any{
			"FunctionName": param(e, "FunctionName") + "-plan",
			// The run function's code, runtime, memory and network.
			"Runtime":       run["Runtime"],
			"Architectures": run["Architectures"],
			"Handler":       run["Handler"],
			"Code":          run["Code"],
			"MemorySize":    run["MemorySize"],
			"VpcConfig":     run["VpcConfig"],
			// The role the target accounts trust; see the template for why
			// sharing it is acceptable.
			"Role":    attOf("FunctionRole", "Arn"),
			"Timeout": 300,
			// Its own reservation: never the run function's one execution.
			"ReservedConcurrentExecutions": param(e, "PlanConcurrency"),
		} {
			if !equalJSON(f[key], want) {
				t.Errorf("%s: PlanFunction %s = %v, want %v", e.name, key, f[key], want)
			}
		}
		if e.name == "every option" && (f["VpcConfig"] == nil || f["Code"].(map[string]any)["S3ObjectVersion"] == nil) {
			t.Errorf("%s: the plan function does not follow SubnetIds and CodeObjectVersion: %v", e.name, f)
		}
		logging, _ := f["LoggingConfig"].(map[string]any)
		if logging["LogGroup"] != refOf("PlanLogGroup") || logging["LogFormat"] != "Text" {
			t.Errorf("%s: PlanFunction LoggingConfig %v: want its own log group, lines as written", e.name, logging)
		}
		if lg := e.resource(t, "PlanLogGroup"); lg["LogGroupName"] != "/aws/lambda/"+param(e, "FunctionName")+"-plan" || lg["RetentionInDays"] == nil {
			t.Errorf("%s: plan log group %v: want /aws/lambda/<function>-plan with a retention", e.name, lg)
		}

		env := f["Environment"].(map[string]any)["Variables"].(map[string]any)
		if env[fleet.EnvPlanOnly] != "true" {
			t.Errorf("%s: PlanFunction %s = %v, want \"true\"", e.name, fleet.EnvPlanOnly, env[fleet.EnvPlanOnly])
		}
		for n, v := range env {
			switch {
			case n == fleet.EnvPlanOnly:
			case !slices.Contains(lambdaEnv, n):
				t.Errorf("%s: PlanFunction: environment variable %s is not one the Lambda reads", e.name, n)
			case slices.Contains(planLeavesOut, n):
				t.Errorf("%s: PlanFunction sets %s, which plan mode does not read", e.name, n)
			case !equalJSON(v, runEnv[n]):
				t.Errorf("%s: PlanFunction %s = %v, the run function's is %v", e.name, n, v, runEnv[n])
			}
		}
		for n := range runEnv {
			if _, ok := env[n]; !ok && !slices.Contains(planLeavesOut, n) {
				t.Errorf("%s: PlanFunction lacks %s, which the run function sets", e.name, n)
			}
		}
		for _, n := range append([]string{fleet.EnvSigningKey}, lambdaEnvRequired...) {
			if _, ok := env[n]; !ok {
				t.Errorf("%s: PlanFunction: environment variable %s is missing", e.name, n)
			}
		}
		if e.name == "every option" {
			want := slices.DeleteFunc(slices.Sorted(slices.Values(lambdaEnv)), func(n string) bool { return slices.Contains(planLeavesOut, n) })
			if names := sortedKeys(env); !slices.Equal(names, want) {
				t.Errorf("every option: PlanFunction environment variables %v, want exactly %v", names, want)
			}
		}

		// Nothing in the stack invokes it: no rule, permission, schedule,
		// event source, URL, alias or version; only the plan role's IAM
		// policy (github-oidc.yaml) names it.
		for _, typ := range []string{"AWS::Lambda::EventSourceMapping", "AWS::Lambda::Url", "AWS::Lambda::Alias", "AWS::Lambda::Version", "AWS::Scheduler::Schedule"} {
			if ids := e.t.resourcesOfType(typ); len(ids) > 0 {
				t.Errorf("%s: %s %v: nothing in the stack should invoke a function but the two rules", e.name, typ, ids)
			}
		}
		for _, id := range sortedKeys(e.t.section("Resources")) {
			refs := map[string]bool{}
			references(e.t.section("Resources")[id], refs, map[string]bool{})
			if refs["PlanFunction"] && !slices.Contains(planFunctionReferrers, id) {
				t.Errorf("%s: %s names the plan function; only %v may", e.name, id, planFunctionReferrers)
			}
		}
		// An asynchronous invoke (allowed by lambda:InvokeFunction too) is
		// not retried and does not wait long.
		c := e.resource(t, "PlanFunctionEventInvokeConfig")
		if c["FunctionName"] != refOf("PlanFunction") || !equalJSON(c["MaximumRetryAttempts"], 0) ||
			toFloat(t, c["MaximumEventAgeInSeconds"]) > 60 || c["DestinationConfig"] != nil {
			t.Errorf("%s: PlanFunctionEventInvokeConfig %v: want no retry, events dropped within a minute, no destination", e.name, c)
		}
		if outputs["PlanFunctionName"] != refOf("PlanFunction") || outputs["PlanFunctionArn"] != attOf("PlanFunction", "Arn") {
			t.Errorf("%s: outputs PlanFunctionName %v, PlanFunctionArn %v", e.name, outputs["PlanFunctionName"], outputs["PlanFunctionArn"])
		}
	}
}

// TestPlanFunctionWiring: github-oidc.yaml's PlanFunctionArn takes what
// control-plane.yaml's output of that name is, for every FunctionName the
// control plane accepts, and refuses anything that is not one unqualified
// function.
func TestPlanFunctionWiring(t *testing.T) {
	cp, oidc := loadTemplate(t, controlPlane), loadTemplate(t, githubOIDC)
	if _, ok := cp.section("Outputs")["PlanFunctionArn"]; !ok {
		t.Fatal("control-plane.yaml has no output PlanFunctionArn")
	}
	p := oidc.section("Parameters")["PlanFunctionArn"].(map[string]any)
	name := cp.section("Parameters")["FunctionName"].(map[string]any)
	for _, fn := range []string{"dbusers", "a", strings.Repeat("x", 40), "acme_db-users"} {
		if err := checkParameter(name, fn); err != nil {
			t.Fatalf("FunctionName %q: %v", fn, err)
		}
		arn := "arn:aws:lambda:eu-west-1:123456789012:function:" + fn + "-plan"
		if err := checkParameter(p, arn); err != nil {
			t.Errorf("the plan function of FunctionName %q: %v", fn, err)
		}
	}
	if err := checkParameter(name, strings.Repeat("x", 41)); err == nil {
		t.Error("FunctionName takes 41 characters; the plan function's name (+5) must stay within Lambda's 64")
	}
}

// timeoutMs is the function's timeout in milliseconds (Duration's unit).
func timeoutMs(t *testing.T, e evaluated) float64 {
	t.Helper()
	return toFloat(t, e.resource(t, "Function")["Timeout"]) * 1000
}

func toFloat(t *testing.T, v any) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(fmt.Sprint(v), 64)
	if err != nil {
		t.Fatalf("%v is not a number", v)
	}
	return f
}

func TestAlarms(t *testing.T) {
	dims := emfDimensions(t)
	for _, e := range evaluateAll(t, controlPlane) {
		watched := map[string]bool{}
		for _, id := range e.t.resourcesOfType("AWS::CloudWatch::Alarm") {
			a := e.resource(t, id)
			ns, name := fmt.Sprint(a["Namespace"]), fmt.Sprint(a["MetricName"])
			watched[ns+" "+name] = true
			var alarmDims []string
			for _, d := range asList(a["Dimensions"]) {
				alarmDims = append(alarmDims, fmt.Sprint(d.(map[string]any)["Name"]))
			}
			slices.Sort(alarmDims)
			switch {
			case ns == "AWS/Lambda" && slices.Contains(lambdaMetrics, name):
				want := []any{map[string]any{"Name": "FunctionName", "Value": refOf("Function")}}
				if !equalJSON(a["Dimensions"], want) {
					t.Errorf("%s: %s: dimensions %v, want the function", e.name, id, a["Dimensions"])
				}
			case ns == emfNamespace && slices.Contains(emfMetrics, name):
				if !slices.Equal(alarmDims, dims) {
					t.Errorf("%s: %s: dimensions %v, but the code emits %v", e.name, id, alarmDims, dims)
				}
			// The dead-letter queue: events that never became a run.
			case ns == "AWS/SQS" && name == "ApproximateNumberOfMessagesVisible":
				want := []any{map[string]any{"Name": "QueueName", "Value": attOf("DeadLetterQueue", "QueueName")}}
				if !equalJSON(a["Dimensions"], want) {
					t.Errorf("%s: %s: dimensions %v, want the dead-letter queue", e.name, id, a["Dimensions"])
				}
			default:
				t.Errorf("%s: %s watches %s %s, which nothing emits", e.name, id, ns, name)
			}
			if !slices.Contains(strs(a["AlarmActions"]), refOf("Topic")) {
				t.Errorf("%s: %s does not notify the topic", e.name, id)
			}
			if name == "Duration" {
				if a["Statistic"] != "Maximum" || toFloat(t, a["Threshold"]) != 0.8*timeoutMs(t, e) {
					t.Errorf("%s: %s: %v of Duration > %v, want Maximum > 80%% of the timeout (%v ms)",
						e.name, id, a["Statistic"], a["Threshold"], 0.8*timeoutMs(t, e))
				}
			}
		}
		for _, want := range []string{"AWS/Lambda Errors", "AWS/Lambda Throttles", "AWS/Lambda Duration",
			emfNamespace + " ClustersFailed", emfNamespace + " ClustersPartial", emfNamespace + " SafetyLimitsTripped", emfNamespace + " BundleErrors",
			emfNamespace + " " + fleet.MetricUnsignedBundles, emfNamespace + " " + fleet.MetricRolloutRecordErrors} {
			if !watched[want] {
				t.Errorf("%s: no alarm on %s", e.name, want)
			}
		}
	}
}

// dashboardMetrics are the metrics the dashboard may show.
var dashboardMetrics = map[string][]string{
	"AWS/Lambda": {"Invocations", "Errors", "Throttles", "Duration"},
	emfNamespace: emfMetrics,
}

// Lambda's price for arm64, dollars per GB-second.
const arm64PricePerGBs = 0.0000133334

func TestDashboard(t *testing.T) {
	for _, e := range evaluateAll(t, controlPlane) {
		var body struct {
			Widgets []struct {
				Type       string `json:"type"`
				Properties struct {
					Title   string  `json:"title"`
					Metrics [][]any `json:"metrics"`
					Alarms  []string
					Query   string `json:"query"`
				} `json:"properties"`
			} `json:"widgets"`
		}
		raw := fmt.Sprint(e.resource(t, "Dashboard")["DashboardBody"])
		if err := json.Unmarshal([]byte(raw), &body); err != nil {
			t.Fatalf("%s: DashboardBody is not JSON: %v", e.name, err)
		}
		shown := map[string]bool{}
		var alarms []string
		foundCost := false
		for _, w := range body.Widgets {
			alarms = append(alarms, w.Properties.Alarms...)
			ids := map[string]float64{}
			var exprs [][2]string // id, expression
			for _, m := range w.Properties.Metrics {
				if len(m) == 0 {
					t.Errorf("%s: %q: empty metric", e.name, w.Properties.Title)
					continue
				}
				opts, _ := m[len(m)-1].(map[string]any)
				if ex, ok := opts["expression"].(string); ok {
					exprs = append(exprs, [2]string{fmt.Sprint(opts["id"]), ex})
					continue
				}
				ns, _ := m[0].(string)
				name, _ := m[1].(string)
				if ns == "." || name == "." {
					t.Errorf("%s: %q: spell out every metric (no \".\" shorthand)", e.name, w.Properties.Title)
				}
				if !slices.Contains(dashboardMetrics[ns], name) {
					t.Errorf("%s: %q shows %s %s, which nothing emits", e.name, w.Properties.Title, ns, name)
				}
				shown[ns+" "+name] = true
				if ns == "AWS/Lambda" && name == "Duration" && opts["stat"] == "Sum" && opts["id"] != nil {
					// One hour of billed time: 3,600,000 ms.
					ids[fmt.Sprint(opts["id"])] = 3600000
				}
			}
			for _, x := range exprs {
				v, err := evalMetricMath(x[1], ids)
				if err != nil {
					t.Errorf("%s: %q: expression %s: %v", e.name, w.Properties.Title, x[0], err)
					continue
				}
				ids[x[0]] = v
				if strings.Contains(x[1], strconv.FormatFloat(arm64PricePerGBs, 'f', -1, 64)) {
					foundCost = true
					mem := toFloat(t, param(e, "MemorySize"))
					want := 3600 * mem / 1024 * arm64PricePerGBs
					if math.Abs(v-want) > 1e-12 {
						t.Errorf("%s: an hour at %v MB costs %v by the dashboard, want %v", e.name, mem, v, want)
					}
				}
			}
		}
		if !foundCost {
			t.Errorf("%s: no cost expression (Duration Sum x MemorySize/1024/1000 x %v)", e.name, arm64PricePerGBs)
		}
		for _, m := range emfMetrics {
			if !shown[emfNamespace+" "+m] {
				t.Errorf("%s: the dashboard does not show %s", e.name, m)
			}
		}
		var want []string
		for _, id := range e.t.resourcesOfType("AWS::CloudWatch::Alarm") {
			want = append(want, attOf(id, "Arn"))
		}
		slices.Sort(alarms)
		if !slices.Equal(alarms, want) {
			t.Errorf("%s: the alarm widget shows %v, want every alarm %v", e.name, alarms, want)
		}
	}
}

// evalMetricMath evaluates the arithmetic subset of CloudWatch metric math
// (numbers, ids, + - * / and parentheses), which Go's expression parser
// reads as is.
func evalMetricMath(expr string, ids map[string]float64) (float64, error) {
	x, err := parser.ParseExpr(expr)
	if err != nil {
		return 0, err
	}
	var eval func(ast.Expr) (float64, error)
	eval = func(x ast.Expr) (float64, error) {
		switch x := x.(type) {
		case *ast.BasicLit:
			return strconv.ParseFloat(x.Value, 64)
		case *ast.Ident:
			v, ok := ids[x.Name]
			if !ok {
				return 0, fmt.Errorf("unknown id %s", x.Name)
			}
			return v, nil
		case *ast.ParenExpr:
			return eval(x.X)
		case *ast.BinaryExpr:
			a, err := eval(x.X)
			if err != nil {
				return 0, err
			}
			b, err := eval(x.Y)
			if err != nil {
				return 0, err
			}
			switch x.Op {
			case token.ADD:
				return a + b, nil
			case token.SUB:
				return a - b, nil
			case token.MUL:
				return a * b, nil
			case token.QUO:
				return a / b, nil
			}
		}
		return 0, fmt.Errorf("unsupported expression %T", x)
	}
	return eval(x)
}

// TestTemplateHygiene: the checks cfn-lint would make that matter here.
func TestTemplateHygiene(t *testing.T) {
	pseudoNames := []string{"AWS::Region", "AWS::AccountId", "AWS::Partition", "AWS::StackName", "AWS::NoValue", "AWS::URLSuffix", "AWS::StackId", "AWS::NotificationARNs"}
	for _, file := range []string{controlPlane, targetAccount, githubOIDC} {
		tpl := loadTemplate(t, file)
		if tpl.raw["AWSTemplateFormatVersion"] != "2010-09-09" {
			t.Errorf("%s: AWSTemplateFormatVersion %v", file, tpl.raw["AWSTemplateFormatVersion"])
		}
		if s, _ := tpl.raw["Description"].(string); s == "" {
			t.Errorf("%s: no Description", file)
		}
		for name, p := range tpl.section("Parameters") {
			p := p.(map[string]any)
			if s, _ := p["Description"].(string); strings.TrimSpace(s) == "" {
				t.Errorf("%s: parameter %s has no description", file, name)
			}
		}
		for name, o := range tpl.section("Outputs") {
			if s, _ := o.(map[string]any)["Description"].(string); s == "" {
				t.Errorf("%s: output %s has no description", file, name)
			}
		}
		refs, conds := map[string]bool{}, map[string]bool{}
		for _, sec := range []string{"Conditions", "Resources", "Outputs"} {
			references(tpl.raw[sec], refs, conds)
		}
		for name := range refs {
			_, isParam := tpl.section("Parameters")[name]
			_, isRes := tpl.section("Resources")[name]
			if !isParam && !isRes && !slices.Contains(pseudoNames, name) {
				t.Errorf("%s: reference to unknown %s", file, name)
			}
		}
		for name := range tpl.section("Parameters") {
			if !refs[name] {
				t.Errorf("%s: parameter %s is never used", file, name)
			}
		}
		for name := range conds {
			if _, ok := tpl.section("Conditions")[name]; !ok {
				t.Errorf("%s: unknown condition %s", file, name)
			}
		}
		for name := range tpl.section("Conditions") {
			if !conds[name] {
				t.Errorf("%s: condition %s is never used", file, name)
			}
		}
		for id, r := range tpl.section("Resources") {
			r := r.(map[string]any)
			if typ, _ := r["Type"].(string); !strings.HasPrefix(typ, "AWS::") {
				t.Errorf("%s: resource %s has type %v", file, id, r["Type"])
			}
		}
		// Every resource evaluates in every scenario (no dangling Ref to a
		// resource a condition leaves out).
		for _, sc := range scenarios[file] {
			s, err := tpl.evaluate(sc.values)
			if err != nil {
				t.Fatalf("%s (%s): %v", file, sc.name, err)
			}
			for _, id := range sortedKeys(tpl.section("Resources")) {
				s.resource(t, id)
			}
			if _, err := s.outputs(); err != nil {
				t.Errorf("%s (%s): outputs: %v", file, sc.name, err)
			}
		}
	}
}

// TestDefaultsMatchTheRepository: the templates' defaults are the names this
// repository's dbusers.json uses, so the defaults deploy a working pair.
func TestDefaultsMatchTheRepository(t *testing.T) {
	data, err := os.ReadFile("../../dbusers.json")
	if err != nil {
		t.Fatal(err)
	}
	var s config.Settings
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	defaults := func(file, name string) string {
		p := loadTemplate(t, file).section("Parameters")[name].(map[string]any)
		return fmt.Sprint(p["Default"])
	}
	for _, tc := range []struct{ file, param, want string }{
		{controlPlane, "PointerParameter", s.SSM.Parameter},
		{githubOIDC, "PointerParameter", s.SSM.Parameter},
		{controlPlane, "ManagementRoleName", s.AWS.ManagementRole},
		{targetAccount, "ManagementRoleName", s.AWS.ManagementRole},
	} {
		if got := defaults(tc.file, tc.param); got != tc.want {
			t.Errorf("%s: %s defaults to %q, dbusers.json says %q", tc.file, tc.param, got, tc.want)
		}
	}
}

// TestParameterConstraints: a mistyped parameter fails at deploy time, not
// at the first run.
func TestParameterConstraints(t *testing.T) {
	for _, tc := range []struct {
		file, param, value string
		ok                 bool
	}{
		{controlPlane, "PointerParameter", "/dbusers/config", true},
		{controlPlane, "PointerParameter", "dbusers/config", false},
		{controlPlane, "PointerParameter", "/dbusers/config/", false},
		{controlPlane, "Concurrency", "", true},
		{controlPlane, "Concurrency", "1", true},
		{controlPlane, "Concurrency", "256", true},
		{controlPlane, "Concurrency", "0", false},
		{controlPlane, "Concurrency", "257", false},
		{controlPlane, "Concurrency", "08", false},
		{controlPlane, "DryRun", "yes", false},
		{controlPlane, "ScheduleExpression", "cron(0 * * * ? *)", true},
		{controlPlane, "ScheduleExpression", "every hour", false},
		{controlPlane, "MemorySize", "64", false},
		{controlPlane, "LogRetentionDays", "30", false},
		{controlPlane, "FunctionName", "dbusers prod", false},
		{targetAccount, "ExternalId", "x", false},
		{targetAccount, "ControlPlaneRoleArn", "arn:aws:iam::123456789012:user/someone", false},
		{targetAccount, "SecretNamePrefix", "*", false},
		{githubOIDC, "GitHubRepository", "dbusers config", false},
		{githubOIDC, "GitHubOwner", "-acme", false},
		{githubOIDC, "CreateOIDCProvider", "maybe", false},
		{githubOIDC, "SigningKeyArn", "", false},
		{githubOIDC, "SigningKeyArn", "alias/dbusers-signing", false},
		{githubOIDC, "SigningKeyArn", "arn:aws:kms:eu-west-1:123456789012:alias/dbusers-signing", false},
		{controlPlane, "PublishRoleArn", "", true},
		{controlPlane, "PublishRoleArn", publishRoleArn, true},
		{controlPlane, "PublishRoleArn", "arn:aws:iam::123456789012:role/github/dbusers-publish", true},
		{controlPlane, "PublishRoleArn", "arn:aws:iam::123456789012:root", false},
		{controlPlane, "PublishRoleArn", "arn:aws:iam::123456789012:user/ci", false},
		{controlPlane, "PublishRoleArn", "*", false},
		{controlPlane, "AllowUnsigned", "yes", false},
		{controlPlane, "EnablePlanFunction", "yes", false},
		{controlPlane, "PlanConcurrency", "1", true},
		{controlPlane, "PlanConcurrency", "0", false},
		{controlPlane, "PlanConcurrency", "21", false},
		{githubOIDC, "PlanFunctionArn", "", true},
		{githubOIDC, "PlanFunctionArn", planFunctionArn, true},
		{githubOIDC, "PlanFunctionArn", "arn:aws-cn:lambda:cn-north-1:123456789012:function:dbusers-plan", true},
		{githubOIDC, "PlanFunctionArn", planFunctionArn + ":live", false},
		{githubOIDC, "PlanFunctionArn", planFunctionArn + ":$LATEST", false},
		{githubOIDC, "PlanFunctionArn", "arn:aws:lambda:eu-west-1:123456789012:function:*", false},
		{githubOIDC, "PlanFunctionArn", "arn:aws:lambda:eu-west-1:123456789012:function:dbusers-*", false},
		{githubOIDC, "PlanFunctionArn", "arn:aws:lambda:*:123456789012:function:dbusers-plan", false},
		{githubOIDC, "PlanFunctionArn", "*", false},
		{githubOIDC, "PlanFunctionArn", "dbusers-plan", false},
		{githubOIDC, "PlanFunctionArn", "arn:aws:iam::123456789012:role/dbusers-plan", false},
		{githubOIDC, "PlanRoleName", "dbusers plan", false},
	} {
		values := maps.Clone(scenarios[tc.file][0].values)
		values[tc.param] = tc.value
		_, err := loadTemplate(t, tc.file).evaluate(values)
		if (err == nil) != tc.ok {
			t.Errorf("%s: %s=%q: error %v, want ok %v", tc.file, tc.param, tc.value, err, tc.ok)
		}
	}
}
