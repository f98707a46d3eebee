package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/desired"
	"github.com/dbusers/dbusers/bot/internal/engine"
	"github.com/dbusers/dbusers/bot/internal/flavor"
	"github.com/dbusers/dbusers/bot/internal/jsonpos"
	"github.com/dbusers/dbusers/bot/internal/mysqlstate"
	"github.com/dbusers/dbusers/bot/internal/plan"
	"github.com/dbusers/dbusers/bot/internal/quote"
	"github.com/dbusers/dbusers/bot/internal/redact"
)

// The inventory invoke, {"inventory": {"clusters": ["prod-orders"]}},
// returns each cluster's accounts and grants as they are, for
// `dbusers import --from-lambda` and for an audit of clusters only AWS can
// reach. It reads through engine.Inventory's read-only session, with the
// plan login where the cluster file names one, reaches only the clusters of
// the published bundle, and returns no secret and no password hash. The
// plan function refuses it: the PR workflow's role sees plans, not the
// fleet's accounts outside the prefix.

// InventoryReport is an inventory invoke's answer.
type InventoryReport struct {
	// Published is the published configuration the clusters were found in.
	Published string             `json:"published"`
	ReadAt    time.Time          `json:"read_at"`
	Clusters  []InventoryCluster `json:"clusters"`
}

// InventoryCluster is one cluster's accounts.
type InventoryCluster struct {
	Name   string `json:"cluster"`
	Server string `json:"server,omitempty"`
	// Flavor and PartialRevokes say how its grants' database names read.
	Flavor         flavor.Flavor `json:"flavor,omitempty"`
	PartialRevokes bool          `json:"partial_revokes,omitempty"`
	Stage          string        `json:"stage,omitempty"`
	Error          string        `json:"error,omitempty"`
	// Accounts are the managed accounts, sorted.
	Accounts []InventoryAccount `json:"accounts"`
	// Unmanaged are the accounts outside the prefix.
	Unmanaged []mysqlstate.Unmanaged `json:"unmanaged,omitempty"`
	// Truncated counts accounts left out to stay within the response limit.
	Truncated int `json:"truncated,omitempty"`
}

// InventoryAccount is a managed account without its credential: IAM
// accounts say so, a password account's hash stays on the server.
type InventoryAccount struct {
	ID         mysqlstate.AccountID      `json:"account"`
	Plugin     string                    `json:"plugin"`
	Locked     bool                      `json:"locked,omitempty"`
	RequireSSL bool                      `json:"require_ssl,omitempty"`
	Global     []string                  `json:"global,omitempty"`
	Databases  map[string][]string       `json:"databases,omitempty"`
	Tables     []mysqlstate.TableGrant   `json:"tables,omitempty"`
	Roles      []mysqlstate.AccountID    `json:"roles,omitempty"`
	Routines   []mysqlstate.RoutineGrant `json:"routines,omitempty"`
	Proxies    []mysqlstate.AccountID    `json:"proxies,omitempty"`
}

// Live rebuilds the live state an import reads from an inventory: the
// password accounts without their hash (an import then cannot compare
// passwords, and says so).
func (c *InventoryCluster) Live() *mysqlstate.Server {
	srv := &mysqlstate.Server{Flavor: c.Flavor, PartialRevokes: c.PartialRevokes, Accounts: map[mysqlstate.AccountID]*mysqlstate.Account{}}
	for _, a := range c.Accounts {
		acct := &mysqlstate.Account{ID: a.ID, Plugin: a.Plugin, Locked: a.Locked, RequireSSL: a.RequireSSL, Global: a.Global,
			Databases: a.Databases, Tables: a.Tables, Roles: a.Roles, Routines: a.Routines, Proxies: a.Proxies}
		if a.Plugin == plan.IAMPlugin {
			acct.AuthString = plan.IAMAuthString // not a secret: what RDS stores for every IAM account
		}
		srv.Accounts[a.ID] = acct
	}
	return srv
}

// IsInventoryInvoke reports whether an event is a JSON object with an
// "inventory" field.
func IsInventoryInvoke(raw []byte) bool {
	var fields map[string]json.RawMessage
	if json.Unmarshal(bytes.TrimSpace(raw), &fields) != nil {
		return false
	}
	_, ok := fields["inventory"]
	return ok
}

// DecodeInventory decodes {"inventory": {"clusters": [...]}}; "clusters"
// is optional (every cluster), and nothing else is accepted.
func DecodeInventory(raw []byte) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > maxEventBytes {
		return nil, fmt.Errorf("inventory invoke is %d bytes, more than the %d accepted", len(raw), maxEventBytes)
	}
	if _, err := jsonpos.Parse(raw); err != nil {
		return nil, fmt.Errorf("inventory invoke: %w", err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil || top == nil {
		return nil, fmt.Errorf("inventory invoke is not a JSON object: %s", jsonProblem(err))
	}
	for _, k := range slices.Sorted(maps.Keys(top)) {
		if k != "inventory" {
			return nil, fmt.Errorf("inventory invoke: field %s next to \"inventory\": an inventory only reads and takes no other field", quote.Value(k))
		}
	}
	var fields map[string]json.RawMessage
	if err := field(top, "inventory", &fields, "an object"); err != nil {
		return nil, fmt.Errorf("inventory invoke: %w", err)
	}
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		if k != "clusters" {
			return nil, fmt.Errorf("inventory invoke: unknown field inventory.%s (want clusters)", quote.Value(k))
		}
	}
	var clusters []string
	if err := field(fields, "clusters", &clusters, "a list of cluster names"); err != nil {
		return nil, fmt.Errorf("inventory invoke: inventory.%w", err)
	}
	for i, c := range clusters {
		if strings.TrimSpace(c) == "" {
			return nil, fmt.Errorf("inventory invoke: inventory.clusters[%d] is empty", i)
		}
	}
	return slices.Compact(slices.Sorted(slices.Values(clusters))), nil
}

// Inventory answers an inventory invoke.
func Inventory(ctx context.Context, deps Deps, cfg Config, raw json.RawMessage) (*InventoryReport, error) {
	now := deps.Now
	if now == nil {
		now = time.Now
	}
	log := logger(deps).With("trigger", "inventory")
	names, err := DecodeInventory(raw)
	if err != nil {
		log.Error("inventory refused", "error", err.Error())
		return nil, err
	}
	r := &run{deps: deps, cfg: cfg, log: log, now: now, session: PlanSessionName}
	published, err := r.readBundle(ctx, log, &Report{})
	if err != nil {
		return nil, fmt.Errorf("the published configuration (%s) could not be read, and an inventory reaches clusters only through it: %w", cfg.Pointer, err)
	}
	st, err := config.Desired(published.Config(), now())
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", published.Meta.Version, err)
	}
	targets, err := selectClusters(st, published.Config(), names)
	if err != nil {
		return nil, err
	}
	rep := &InventoryReport{Published: published.Meta.Version, ReadAt: now().UTC(), Clusters: make([]InventoryCluster, len(targets))}
	var g errgroup.Group
	g.SetLimit(cmpPositive(cfg.Concurrency, published.Content.Settings.Concurrency, DefaultConcurrency))
	for i, t := range targets {
		g.Go(func() error {
			rep.Clusters[i] = r.inventoryCluster(ctx, t, published.Content.Settings.AWS, st.Prefix, st.Protected)
			return nil
		})
	}
	_ = g.Wait()
	slices.SortFunc(rep.Clusters, func(a, b InventoryCluster) int { return strings.Compare(a.Name, b.Name) })
	fitInventory(rep, ResponseBudget)
	log.Info("inventory done", "clusters", len(rep.Clusters))
	return rep, nil
}

func (r *run) inventoryCluster(ctx context.Context, t target, settings config.AWS, prefix desired.Prefix, protected []string) InventoryCluster {
	ic := InventoryCluster{Name: t.at.Name, Accounts: []InventoryAccount{}}
	secret, stage := t.at.AdminSecret, StageAdminSecret
	if t.at.PlanSecret != "" {
		secret, stage = t.at.PlanSecret, StagePlanSecret
	}
	l, err := r.login(ctx, t.at, settings, secret, stage)
	if err != nil {
		ic.Stage, ic.Error = StageConnect, err.Error()
		var se *stageError
		if errors.As(err, &se) {
			ic.Stage = se.stage
		}
		return ic
	}
	defer l.db.Close()
	srv, unmanaged, err := engine.Inventory(ctx, l.db, prefix, protected, t.want.Databases)
	if err != nil {
		ic.Stage, ic.Error = "inventory", redact.Error(err, l.admin.Password).Error()
		return ic
	}
	return *InventoryOf(ic.Name, srv, unmanaged)
}

// InventoryOf is a cluster's inventory from its live state, without any
// credential.
func InventoryOf(name string, srv *mysqlstate.Server, unmanaged []mysqlstate.Unmanaged) *InventoryCluster {
	ic := &InventoryCluster{Name: name, Flavor: srv.Flavor, PartialRevokes: srv.PartialRevokes, Unmanaged: unmanaged,
		Server: srv.Flavor.Product() + " " + srv.Version, Accounts: []InventoryAccount{}}
	for _, a := range srv.Accounts {
		ic.Accounts = append(ic.Accounts, InventoryAccount{ID: a.ID, Plugin: a.Plugin, Locked: a.Locked, RequireSSL: a.RequireSSL,
			Global: a.Global, Databases: a.Databases, Tables: a.Tables, Roles: a.Roles, Routines: a.Routines, Proxies: a.Proxies})
	}
	slices.SortFunc(ic.Accounts, func(a, b InventoryAccount) int {
		return strings.Compare(a.ID.User+"@"+a.ID.Host, b.ID.User+"@"+b.ID.Host)
	})
	return ic
}

// fitInventory leaves out the last accounts of the largest clusters until
// the answer fits.
func fitInventory(rep *InventoryReport, budget int) {
	for {
		data, err := json.Marshal(rep)
		if err != nil || len(data) <= budget {
			return
		}
		big := 0
		for i, c := range rep.Clusters {
			if len(c.Accounts) > len(rep.Clusters[big].Accounts) {
				big = i
			}
		}
		c := &rep.Clusters[big]
		if len(c.Accounts) == 0 {
			return
		}
		cut := max(1, len(c.Accounts)/10)
		c.Accounts = c.Accounts[:len(c.Accounts)-cut]
		c.Truncated += cut
	}
}
