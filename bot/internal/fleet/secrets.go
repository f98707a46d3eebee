package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"golang.org/x/sync/errgroup"

	"github.com/dbusers/dbusers/bot/internal/desired"
)

// AdminSecret is the admin login as RDS writes it for a managed master
// secret ({"username": ..., "password": ...}); host and port are read when
// present, but the cluster file's endpoint and port win.
type AdminSecret struct {
	Username string
	Password string
	Host     string
	Port     int
}

// ParseAdminSecret decodes an admin secret. Its errors never quote the
// secret.
func ParseAdminSecret(s string) (AdminSecret, error) {
	var raw struct {
		Username string          `json:"username"`
		Password string          `json:"password"`
		Host     string          `json:"host"`
		Port     json.RawMessage `json:"port"`
	}
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return AdminSecret{}, fmt.Errorf("not a JSON object with username and password (%s)", jsonProblem(err))
	}
	if raw.Username == "" || raw.Password == "" {
		return AdminSecret{}, errors.New("username or password is missing or empty")
	}
	a := AdminSecret{Username: raw.Username, Password: raw.Password, Host: raw.Host}
	if p := strings.Trim(string(raw.Port), `"`); p != "" && p != "null" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return AdminSecret{}, errors.New("port is not a TCP port number")
		}
		a.Port = n
	}
	return a, nil
}

// readAdmin reads and decodes a cluster's admin secret.
func readAdmin(ctx context.Context, sm SecretsAPI, ref string) (AdminSecret, error) {
	s, err := getSecret(ctx, sm, ref)
	if err != nil {
		return AdminSecret{}, fmt.Errorf("admin secret %s: %w", ref, err)
	}
	a, err := ParseAdminSecret(s)
	if err != nil {
		return AdminSecret{}, fmt.Errorf("admin secret %s: %w", ref, err)
	}
	return a, nil
}

// errSecretNotFound means the secret does not exist (or is deleted).
var errSecretNotFound = errors.New("not found")

func getSecret(ctx context.Context, sm SecretsAPI, ref string) (string, error) {
	out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(ref)})
	var nf *smtypes.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
		return "", errSecretNotFound
	case err != nil:
		return "", err
	case out.SecretString == nil:
		return "", errors.New("has no string value (binary secrets are not supported)")
	}
	return *out.SecretString, nil
}

// passwordFetchers bounds concurrent GetSecretValue calls per cluster.
const passwordFetchers = 8

// readPasswords reads the password secret of every password user granted
// on c, in c's account. A secret that cannot be read is left out (the
// engine then skips that user and says so) and noted.
func readPasswords(ctx context.Context, sm SecretsAPI, c desired.Cluster) (map[string]string, []string) {
	var refs []string
	for _, a := range c.Accounts {
		if a.Auth.Method == "password" && a.Auth.Secret != "" {
			refs = append(refs, a.Auth.Secret)
		}
	}
	slices.Sort(refs)
	refs = slices.Compact(refs)
	passwords := make(map[string]string, len(refs))
	problems := make([]string, len(refs))
	var mu sync.Mutex
	var g errgroup.Group
	g.SetLimit(passwordFetchers)
	for i, ref := range refs {
		g.Go(func() error {
			pw, err := readPassword(ctx, sm, ref)
			if err != nil {
				problems[i] = fmt.Sprintf("password secret %s: %v", ref, err)
				return nil // noted, never fatal to the other users
			}
			mu.Lock()
			passwords[ref] = pw
			mu.Unlock()
			return nil
		})
	}
	_ = g.Wait()
	var notes []string
	for _, p := range problems {
		if p != "" {
			notes = append(notes, p)
		}
	}
	return passwords, notes
}

// readPassword reads {"password": "..."} from a secret.
func readPassword(ctx context.Context, sm SecretsAPI, ref string) (string, error) {
	s, err := getSecret(ctx, sm, ref)
	if err != nil {
		return "", err
	}
	var v struct {
		Password string `json:"password"`
	}
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return "", fmt.Errorf("not a JSON object with a password (%s)", jsonProblem(err))
	}
	if v.Password == "" {
		return "", errors.New("has no password")
	}
	return v.Password, nil
}
