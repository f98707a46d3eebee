package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/fleet"
	"github.com/dbusers/dbusers/bot/internal/liveplan"
	"github.com/dbusers/dbusers/bot/internal/review"
	"github.com/dbusers/dbusers/bot/internal/ssmbundle"
)

// demoHead is the commit id the demo's pull request stands for.
const demoHead = "4e1d2c3b5a69788796a5b4c3d2e1f0a9b8c7d6e5"

// pullRequest makes the demo's pull request (hana joins on local, gina
// leaves), has someone grant acme_reporting PROCESS by hand, and prints the
// review comment with its live plan, as `dbusers comment --live` posts it:
// the candidate goes to the Lambda's plan mode, which reads the servers
// and plans without applying. It returns the pull request's declarations
// and the live plan.
func pullRequest(ctx context.Context, out io.Writer, awsCfg aws.Config, deps fleet.Deps, lambdaCfg fleet.Config,
	cfg *config.Config, local *demoServer, now func() time.Time) (*config.Config, *liveplan.Report, error) {
	head := *cfg
	head.Users = slices.DeleteFunc(slices.Clone(cfg.Users), func(u config.User) bool { return u.Name == "gina" })
	hana := config.User{Name: "hana", Description: "Data analyst, joins the reporting team.", Owner: "hana@acme.example", Kind: "service",
		Auth:   config.UserAuth{Type: "password", Secret: "demo/users/hana"},
		Access: []config.Access{{Clusters: []string{"local"}, Databases: []string{"analytics"}, Role: "read"}}}
	head.Users = append(head.Users, hana)
	pw := randomPassword()
	data, _ := json.Marshal(map[string]string{"password": pw})
	if _, err := secretsmanager.NewFromConfig(awsCfg).CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(hana.Auth.Secret), SecretString: aws.String(string(data))}); err != nil {
		return nil, nil, err
	}
	local.passwords["hana"] = pw
	root, err := sql.Open("mysql", local.srv.RootDSN())
	if err != nil {
		return nil, nil, err
	}
	defer root.Close()
	if _, err := root.ExecContext(ctx, "GRANT PROCESS ON *.* TO 'acme_reporting'@'%'"); err != nil {
		return nil, nil, err
	}
	fmt.Fprintln(out, "users/hana.json added, users/gina.json removed; on local, by hand: GRANT PROCESS ON *.* TO 'acme_reporting'@'%'")

	today := now()
	baseState, err := config.Desired(cfg, today)
	if err != nil {
		return nil, nil, err
	}
	headState, err := config.Desired(&head, today)
	if err != nil {
		return nil, nil, err
	}
	_, candidate, err := ssmbundle.NewCandidate(ssmbundle.ContentOf(&head), ssmbundle.Origin{Commit: demoHead, Time: today})
	if err != nil {
		return nil, nil, err
	}
	_, base, err := ssmbundle.NewCandidate(ssmbundle.ContentOf(cfg), ssmbundle.Origin{Time: today})
	if err != nil {
		return nil, nil, err
	}
	event, _ := json.Marshal(map[string]any{"plan": map[string]any{"bundle": candidate, "base_bundle": base}})
	planCfg := lambdaCfg
	planCfg.PlanOnly = true // the plan function, which is all the PR workflow may invoke
	deps.Stdout = io.Discard
	res, err := fleet.Invoke(ctx, deps, planCfg, event)
	if err != nil {
		return nil, nil, fmt.Errorf("plan invoke: %w", err)
	}
	live := res.(*liveplan.Report)
	fmt.Fprintf(out, "the plan function read %d cluster(s) and applied nothing (%d bytes sent, its answer %d change(s))\n\n",
		len(live.Clusters), len(event), countChanges(live))

	r := review.Compare(review.Side{Label: "main", Config: cfg, State: baseState},
		review.Side{Label: "pull request #42 (" + demoHead[:12] + ")", Config: &head, State: headState})
	r.Live = live
	r.Context = review.Context{HeadSHA: demoHead, GeneratedAt: today.UTC(), RunURL: "https://github.com/acme/database-access/actions/runs/1"}
	fmt.Fprintln(out, r.Markdown())
	return &head, live, nil
}

func countChanges(r *liveplan.Report) int {
	n := 0
	for _, c := range r.Clusters {
		n += len(c.Changes)
	}
	return n
}

// sameAsLive checks that the merge's run planned, cluster by cluster, as
// many changes as the live plan showed.
func sameAsLive(out io.Writer, rep *fleet.Report, live *liveplan.Report) error {
	planned := map[string]int{}
	for _, c := range live.Clusters {
		planned[c.Name] = len(c.Changes)
	}
	for _, c := range rep.Clusters {
		if c.Changes != planned[c.Cluster] {
			return fmt.Errorf("cluster %s: the run had %d change(s), the live plan showed %d", c.Cluster, c.Changes, planned[c.Cluster])
		}
	}
	fmt.Fprintln(out, "\nevery cluster ran exactly the changes its live plan showed")
	return nil
}
