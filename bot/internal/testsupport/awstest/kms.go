package awstest

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// SigningKey creates an asymmetric KMS key in the emulator, of the kind
// the control-plane stack creates (ECC_NIST_P256, SIGN_VERIFY) unless spec
// says otherwise, and returns its ARN. kumo keeps no key policy: any
// client may sign with any key, so tests stand for the key policy by
// which key they hand to whom.
func SigningKey(tb testing.TB, api *kms.Client, spec types.KeySpec, usage types.KeyUsageType) string {
	tb.Helper()
	out, err := api.CreateKey(context.Background(), &kms.CreateKeyInput{
		KeySpec: spec, KeyUsage: usage, Description: aws.String("dbusers test signing key " + tb.Name()),
	})
	if err != nil {
		tb.Fatalf("create KMS key: %v", err)
	}
	return aws.ToString(out.KeyMetadata.Arn)
}

// DBusersSigningKey is SigningKey of the spec and usage dbusers signs
// with.
func DBusersSigningKey(tb testing.TB, api *kms.Client) string {
	tb.Helper()
	return SigningKey(tb, api, types.KeySpecEccNistP256, types.KeyUsageTypeSignVerify)
}
