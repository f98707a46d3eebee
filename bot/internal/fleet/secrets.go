package fleet

import (
	"context"
	"crypto/tls"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/go-sql-driver/mysql"
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

// Login is what the Lambda connects to a cluster with.
type Login struct {
	Cluster  string
	Host     string
	Port     int
	User     string
	Password string
	// TLS is nil for tls "disabled".
	TLS *tls.Config
}

// Timeouts of a cluster connection.
const (
	DialTimeout = 10 * time.Second
	IOTimeout   = 60 * time.Second
)

// DefaultConnect opens a go-sql-driver/mysql pool to l with TLS and the
// timeouts above. It does not dial; the caller pings.
func DefaultConnect(_ context.Context, l Login) (*sql.DB, error) {
	return openPool(mysqlConfig(l))
}

// mysqlConfig is the driver's configuration of a connection to l.
func mysqlConfig(l Login) *mysql.Config {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd = l.User, l.Password
	cfg.Net, cfg.Addr = "tcp", net.JoinHostPort(l.Host, strconv.Itoa(l.Port))
	cfg.TLS = l.TLS
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = DialTimeout, IOTimeout, IOTimeout
	cfg.ConnectionAttributes = "program_name:dbusers"
	// A query with an argument (the reads' LIKE pattern) would otherwise
	// be a server-side prepared statement: two round trips and a close
	// instead of one, 4 of a converged cluster's 15 round trips. The
	// driver escapes for the session's NO_BACKSLASH_ESCAPES, and refuses
	// to interpolate for the character sets it cannot escape safely.
	cfg.InterpolateParams = true
	return cfg
}

// openPool opens the pool a cluster is reconciled on.
func openPool(cfg *mysql.Config) (*sql.DB, error) {
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("mysql connector: %w", err)
	}
	db := sql.OpenDB(conn)
	// The engine works on one connection; a second one serves the ping
	// and a retry after a dropped connection.
	db.SetMaxOpenConns(2)
	db.SetConnMaxLifetime(10 * time.Minute)
	return db, nil
}
