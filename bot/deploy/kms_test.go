package deploy

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dbusers/dbusers/bot/internal/ssmbundle"
)

// keyAdministration is every action the account (through IAM) may take on
// the signing key: what keeps it manageable and lets CloudFormation create,
// update and delete it, and nothing that uses it. No kms:Sign, and no
// kms:CreateGrant (a grant can hand out kms:Sign); no wildcards, which
// would take in both.
var keyAdministration = []string{
	"kms:CancelKeyDeletion", "kms:CreateAlias", "kms:DeleteAlias", "kms:DescribeKey", "kms:DisableKey", "kms:EnableKey",
	"kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:GetPublicKey", "kms:ListGrants", "kms:ListKeyPolicies",
	"kms:ListResourceTags", "kms:PutKeyPolicy", "kms:RevokeGrant", "kms:ScheduleKeyDeletion", "kms:TagResource",
	"kms:UntagResource", "kms:UpdateAlias", "kms:UpdateKeyDescription",
}

// signingCondition is what the key policy requires of every kms:Sign: what
// dbusers publish sends, and nothing else a holder of the role could ask.
var signingCondition = map[string]any{"StringEquals": map[string]any{
	"kms:SigningAlgorithm": string(ssmbundle.SigningAlgorithm), "kms:MessageType": "DIGEST",
}}

// keyPolicy returns the signing key's policy statements.
func keyPolicy(t *testing.T, e evaluated) []statement {
	t.Helper()
	key := e.resource(t, "SigningKey")
	raw, _ := key["KeyPolicy"].(map[string]any)
	for _, st := range asList(raw["Statement"]) {
		for _, k := range []string{"NotAction", "NotPrincipal", "NotResource"} {
			if _, ok := st.(map[string]any)[k]; ok {
				t.Errorf("%s: a key policy statement uses %s: say what is allowed, not what is not", e.name, k)
			}
		}
	}
	return statementsOf("SigningKey", "SigningKey policy", raw)
}

// principalOf returns the one AWS principal of a key policy statement.
func principalOf(t *testing.T, st statement) string {
	t.Helper()
	p, _ := st.principal.(map[string]any)
	aws := strs(p["AWS"])
	if len(p) != 1 || len(aws) != 1 {
		t.Fatalf("%s: principal %v, want exactly one AWS principal", st.where, st.principal)
	}
	return aws[0]
}

// TestSigningKey: the key is the kind dbusers signs with, and its policy
// lets the publish role alone sign, the Lambda read the public key, and
// the account administer the key without using it.
func TestSigningKey(t *testing.T) {
	root := "arn:aws:iam::" + testAccount + ":root"
	function := attOf("FunctionRole", "Arn")
	for _, e := range evaluateAll(t, controlPlane) {
		key := e.resource(t, "SigningKey")
		if key["KeySpec"] != string(ssmbundle.SigningKeySpec) || key["KeyUsage"] != "SIGN_VERIFY" || key["Enabled"] != true {
			t.Errorf("%s: SigningKey %v %v enabled %v, want %s SIGN_VERIFY enabled", e.name, key["KeySpec"], key["KeyUsage"], key["Enabled"], ssmbundle.SigningKeySpec)
		}
		if _, ok := key["EnableKeyRotation"]; ok {
			t.Errorf("%s: EnableKeyRotation set: KMS does not rotate asymmetric keys, and refuses the key", e.name)
		}
		// The publish side gets the key by this output, by ARN (what the
		// pointer names and the Lambda compares).
		out, err := e.eval(e.t.section("Outputs")["SigningKeyArn"])
		if err != nil {
			t.Fatal(err)
		}
		if v := out.(map[string]any)["Value"]; v != attOf("SigningKey", "Arn") {
			t.Errorf("%s: output SigningKeyArn = %v, want the key's ARN", e.name, v)
		}
		alias := e.resource(t, "SigningKeyAlias")
		if alias["AliasName"] != "alias/"+param(e, "FunctionName")+"-signing" || alias["TargetKeyId"] != refOf("SigningKey") {
			t.Errorf("%s: alias %v", e.name, alias)
		}

		// Who may do what, and under which condition.
		type allowed struct {
			Actions   []string
			Condition map[string]map[string]any // by action
		}
		got := map[string]*allowed{}
		for _, st := range keyPolicy(t, e) {
			if st.effect != "Allow" || !slices.Equal(st.resources, []string{"*"}) {
				t.Errorf("%s: %s: %s on %v; a key policy allows, on this key (\"*\")", e.name, st.where, st.effect, st.resources)
			}
			p := principalOf(t, st)
			a := got[p]
			if a == nil {
				a = &allowed{Condition: map[string]map[string]any{}}
				got[p] = a
			}
			for _, act := range st.actions {
				a.Actions = append(a.Actions, act)
				if st.condition != nil {
					a.Condition[act] = st.condition
				}
			}
			slices.Sort(a.Actions)
		}
		want := map[string]*allowed{
			root:     {Actions: keyAdministration, Condition: map[string]map[string]any{}},
			function: {Actions: verifyActions(), Condition: map[string]map[string]any{}},
		}
		if role := param(e, "PublishRoleArn"); role != "" {
			want[role] = &allowed{Actions: signActions(), Condition: map[string]map[string]any{"kms:Sign": signingCondition}}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: signing key policy (-want +got):\n%s", e.name, diff)
		}

		// kms:Sign, asked by each principal, as dbusers publish asks it
		// and otherwise.
		asPublish := map[string]string{"kms:SigningAlgorithm": "ECDSA_SHA_256", "kms:MessageType": "DIGEST"}
		for _, tc := range []struct {
			name, principal string
			ctx             map[string]string
			want            bool
		}{
			{"the publish role, as dbusers publish signs", publishRoleArn, asPublish, param(e, "PublishRoleArn") != ""},
			{"the publish role, a raw message", publishRoleArn, map[string]string{"kms:SigningAlgorithm": "ECDSA_SHA_256", "kms:MessageType": "RAW"}, false},
			{"the publish role, another algorithm", publishRoleArn, map[string]string{"kms:SigningAlgorithm": "ECDSA_SHA_384", "kms:MessageType": "DIGEST"}, false},
			{"the Lambda", function, asPublish, false},
			// The account root stands for every IAM principal whose own
			// policy allows kms:*: the key policy must not delegate Sign.
			{"an IAM administrator", root, asPublish, false},
			{"another role", "arn:aws:iam::" + testAccount + ":role/other", asPublish, false},
		} {
			got, err := trustAllows(keyPolicy(t, e), "SigningKey", "AWS", tc.principal, "kms:Sign", tc.ctx)
			if err != nil || got != tc.want {
				t.Errorf("%s: kms:Sign by %s: allowed = %v (%v), want %v", e.name, tc.name, got, err, tc.want)
			}
		}
		for _, forbidden := range []string{"kms:Sign", "kms:CreateGrant", "kms:*"} {
			if slices.Contains(got[root].Actions, forbidden) {
				t.Errorf("%s: the account (every IAM principal allowed kms:*) may %s", e.name, forbidden)
			}
		}
	}
}
