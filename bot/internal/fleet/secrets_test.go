package fleet

import (
	"strings"
	"testing"
)

func TestParseAdminSecret(t *testing.T) {
	tests := []struct {
		name, secret string
		want         AdminSecret
		err          string
	}{
		{"rds managed", `{"username":"admin","password":"s3cr3t-Pa55"}`, AdminSecret{Username: "admin", Password: "s3cr3t-Pa55"}, ""},
		{"with host and numeric port", `{"engine":"mysql","host":"db.example","port":3307,"username":"admin","password":"s3cr3t-Pa55","dbClusterIdentifier":"x"}`,
			AdminSecret{Username: "admin", Password: "s3cr3t-Pa55", Host: "db.example", Port: 3307}, ""},
		{"string port", `{"username":"admin","password":"s3cr3t-Pa55","port":"3306"}`, AdminSecret{Username: "admin", Password: "s3cr3t-Pa55", Port: 3306}, ""},
		{"null port", `{"username":"admin","password":"s3cr3t-Pa55","port":null}`, AdminSecret{Username: "admin", Password: "s3cr3t-Pa55"}, ""},
		{"bad port", `{"username":"admin","password":"s3cr3t-Pa55","port":"http"}`, AdminSecret{}, "port is not a TCP port number"},
		{"no password", `{"username":"admin"}`, AdminSecret{}, "username or password is missing"},
		{"plain string", `s3cr3t-Pa55`, AdminSecret{}, "not a JSON object"},
		{"wrong type", `{"username":"admin","password":12345678}`, AdminSecret{}, "not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAdminSecret(tt.secret)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				for _, leak := range []string{"s3cr3t", "12345678"} {
					if strings.Contains(err.Error(), leak) {
						t.Errorf("error quotes the secret: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// FuzzParseAdminSecret: never panics, never echoes the password in an
// error, and what it accepts has a user and a password.
func FuzzParseAdminSecret(f *testing.F) {
	f.Add(`{"username":"admin","password":"pw-abcdef"}`)
	f.Add(`{"username":"admin","password":"pw-abcdef","host":"h","port":"3306"}`)
	f.Add(`{"username":"admin","password":"pw-abcdef","port":99999}`)
	f.Add(`pw-abcdef`)
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAdminSecret(s)
		if err != nil {
			if len(s) >= 6 && strings.Contains(err.Error(), s) {
				t.Fatalf("error echoes the input: %v", err)
			}
			return
		}
		if a.Username == "" || a.Password == "" || a.Port < 0 || a.Port > 65535 {
			t.Fatalf("accepted %+v", a)
		}
	})
}
