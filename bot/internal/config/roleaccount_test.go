package config

import (
	"strings"
	"testing"
)

func TestRoleAccount(t *testing.T) {
	for arn, want := range map[string]string{
		"arn:aws:iam::111111111111:role/dbusers-management":      "111111111111",
		"arn:aws-us-gov:iam::222222222222:role/path/to/role":     "222222222222",
		"arn:aws-cn:iam::333333333333:role/r":                    "333333333333",
		"arn:aws:iam::111111111111:role/a:arn:aws:iam::2:role/b": "111111111111",
		"arn:aws:iam::111111111111:user/alice":                   "",
		"arn:aws:iam::111111111111:role/":                        "",
		"arn:aws:sts::111111111111:assumed-role/r/s":             "",
		"arn:aws:iam:eu-west-1:111111111111:role/r":              "",
		"arn:aws:iam::1111:role/r":                               "",
		"arn:aws:iam::11111111111x:role/r":                       "",
		"arn:gcp:iam::111111111111:role/r":                       "",
		"dbusers-management":                                     "",
		"":                                                       "",
	} {
		got, ok := RoleAccount(arn)
		if got != want || ok != (want != "") {
			t.Errorf("RoleAccount(%q) = %q, %v; want %q", arn, got, ok, want)
		}
	}
}

// FuzzRoleAccount: RoleAccount accepts exactly the role ARNs it can name
// the account of, and the account it returns is where the ARN says.
func FuzzRoleAccount(f *testing.F) {
	f.Add("arn:aws:iam::111111111111:role/dbusers-management")
	f.Add("arn:aws-us-gov:iam::222222222222:role/path/to/role")
	f.Add("arn:aws:iam::111111111111:user/alice")
	f.Add("arn:aws:iam::1111:role/r")
	f.Add("::::::")
	f.Fuzz(func(t *testing.T, arn string) {
		acct, ok := RoleAccount(arn)
		if !ok {
			if acct != "" {
				t.Fatalf("RoleAccount(%q) refused it but returned %q", arn, acct)
			}
			return
		}
		if !IsAccountID(acct) {
			t.Fatalf("RoleAccount(%q) = %q, not a 12-digit account id", arn, acct)
		}
		partition, rest, found := strings.Cut(strings.TrimPrefix(arn, "arn:"), ":iam::"+acct+":role/")
		if !strings.HasPrefix(arn, "arn:aws") || !found || strings.Contains(partition, ":") || rest == "" {
			t.Fatalf("RoleAccount(%q) = %q, but the ARN does not read arn:<partition>:iam::%s:role/<name>", arn, acct, acct)
		}
	})
}
