package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/dbusers/dbusers/bot/internal/audit"
)

// MetricNamespace is the CloudWatch namespace of the Lambda's metrics.
const MetricNamespace = "dbusers"

// The metrics every invocation that reads the bundle emits, in Embedded
// Metric Format, without dimensions (one time series each, whatever the
// number of clusters: per-cluster detail is in the logs). Alarms are built
// on these names.
const (
	// MetricClustersOK counts clusters that ended unchanged, planned or
	// applied.
	MetricClustersOK = "ClustersOK"
	// MetricClustersFailed counts failed clusters (alarm: > 0).
	MetricClustersFailed = "ClustersFailed"
	// MetricClustersPartial counts clusters where some accounts failed
	// and the others applied (alarm: > 0).
	MetricClustersPartial = "ClustersPartial"
	// MetricStatementsApplied counts statements that took effect.
	MetricStatementsApplied = "StatementsApplied"
	// MetricUsersCreated counts accounts created.
	MetricUsersCreated = "UsersCreated"
	// MetricUsersDropped counts accounts dropped.
	MetricUsersDropped = "UsersDropped"
	// MetricSafetyLimitsTripped counts clusters whose removal limit held
	// back drops (alarm: > 0).
	MetricSafetyLimitsTripped = "SafetyLimitsTripped"
	// MetricDurationMs is the invocation's wall time in milliseconds.
	MetricDurationMs = "DurationMs"
	// MetricBundleErrors is 1 when the bundle could not be read or used
	// (nothing changed anywhere), else 0 (alarm: > 0).
	MetricBundleErrors = "BundleErrors"
	// MetricUnsignedBundles is 1 when the run used a bundle without a
	// verified signature, which only DBUSERS_ALLOW_UNSIGNED allows, else 0
	// (alarm: > 0).
	MetricUnsignedBundles = "UnsignedBundles"
	// MetricRolloutRecordErrors is 1 when the run could not write its
	// rollout record (or prune old ones), else 0 (alarm: > 0). The run's
	// database work is not affected; the publish workflow's rollout step
	// does not learn how it went.
	MetricRolloutRecordErrors = "RolloutRecordErrors"
	// MetricUnmanagedAccounts counts the accounts outside the prefix on
	// the clusters that were read: shared accounts nobody owns, which
	// dbusers never touches (optional alarm: above a threshold).
	MetricUnmanagedAccounts = "UnmanagedAccounts"
)

// MetricNames lists every metric name, in the order they are written.
var MetricNames = []string{
	MetricClustersOK, MetricClustersFailed, MetricClustersPartial, MetricStatementsApplied, MetricUsersCreated,
	MetricUsersDropped, MetricSafetyLimitsTripped, MetricDurationMs, MetricBundleErrors, MetricUnsignedBundles,
	MetricRolloutRecordErrors, MetricUnmanagedAccounts,
}

// Metrics returns the report's metric values by name.
func (r *Report) Metrics() map[string]float64 {
	m := map[string]float64{}
	for _, n := range MetricNames {
		m[n] = 0
	}
	for _, c := range r.Clusters {
		switch {
		case c.Failed():
			m[MetricClustersFailed]++
		case c.Partial():
			m[MetricClustersPartial]++
		default:
			m[MetricClustersOK]++
		}
		m[MetricStatementsApplied] += float64(c.Statements)
		m[MetricUsersCreated] += float64(c.UsersCreated)
		m[MetricUsersDropped] += float64(c.UsersDropped)
		if c.LimitTripped != "" {
			m[MetricSafetyLimitsTripped]++
		}
		m[MetricUnmanagedAccounts] += float64(c.UnmanagedCount)
	}
	if r.BundleError != "" {
		m[MetricBundleErrors] = 1
	}
	if r.Unsigned {
		m[MetricUnsignedBundles] = 1
	}
	if r.RecordError != "" {
		m[MetricRolloutRecordErrors] = 1
	}
	m[MetricDurationMs] = r.DurationMS
	return m
}

// WriteEMF writes the report's metrics as one Embedded Metric Format
// document (one line) to w; CloudWatch Logs turns it into metrics with no
// API call from the Lambda.
func WriteEMF(w io.Writer, r *Report, at time.Time) error {
	type metricDef struct {
		Name string `json:"Name"`
		Unit string `json:"Unit"`
	}
	defs := make([]metricDef, 0, len(MetricNames))
	for _, n := range MetricNames {
		unit := "Count"
		if n == MetricDurationMs {
			unit = "Milliseconds"
		}
		defs = append(defs, metricDef{Name: n, Unit: unit})
	}
	doc := map[string]any{
		"_aws": map[string]any{
			"Timestamp": at.UnixMilli(),
			"CloudWatchMetrics": []map[string]any{{
				"Namespace":  MetricNamespace,
				"Dimensions": [][]string{{}},
				"Metrics":    defs,
			}},
		},
		// Properties: searchable in the logs, not metrics.
		"Trigger":       r.Trigger,
		"DryRun":        r.DryRun,
		"ConfigVersion": r.ConfigVersion,
		"Commit":        r.Commit,
		"FailedClusters": func() []string {
			if r.Failed == nil {
				return []string{}
			}
			return r.Failed
		}(),
	}
	for n, v := range r.Metrics() {
		doc[n] = v
	}
	data, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	_, err = w.Write(append(data, '\n'))
	return err
}

// NeedsAlert reports whether the report warrants an SNS message.
func (r *Report) NeedsAlert() bool {
	return r.BundleError != "" || len(r.Failed) > 0 || len(r.Partial) > 0 || len(r.LimitsTripped) > 0
}

// AlertSubject is the SNS subject (ASCII, at most 100 characters).
func (r *Report) AlertSubject() string {
	var parts []string
	if r.BundleError != "" {
		parts = append(parts, "configuration bundle unusable, nothing changed")
	}
	if n := len(r.Failed); n > 0 {
		parts = append(parts, fmt.Sprintf("%d cluster(s) failed", n))
	}
	if n := len(r.Partial); n > 0 {
		parts = append(parts, fmt.Sprintf("%d cluster(s) partial", n))
	}
	if n := len(r.LimitsTripped); n > 0 {
		parts = append(parts, fmt.Sprintf("removal limit tripped on %d cluster(s)", n))
	}
	s := "dbusers: " + strings.Join(parts, ", ")
	if len(s) > 100 {
		s = s[:97] + "..."
	}
	return s
}

// AlertMessage is the SNS message body: what failed and what tripped, and
// where to look.
func (r *Report) AlertMessage() string {
	var b strings.Builder
	fmt.Fprintf(&b, "dbusers reconcile (%s", r.Trigger)
	if r.DryRun {
		b.WriteString(", dry run")
	}
	b.WriteString(")\n")
	if r.ConfigVersion != "" {
		fmt.Fprintf(&b, "configuration %s", r.ConfigVersion)
		if r.Commit != "" {
			fmt.Fprintf(&b, " (commit %s)", r.Commit)
		}
		b.WriteString("\n")
	}
	if r.BundleError != "" {
		fmt.Fprintf(&b, "\nThe configuration bundle could not be used; no cluster was changed:\n  %s\n", r.BundleError)
	}
	byName := map[string]*ClusterReport{}
	for i := range r.Clusters {
		byName[r.Clusters[i].Cluster] = &r.Clusters[i]
	}
	if len(r.Failed) > 0 {
		fmt.Fprintf(&b, "\nFailed clusters (%d of %d); the others ran:\n", len(r.Failed), len(r.Clusters))
		for _, n := range r.Failed {
			c := byName[n]
			fmt.Fprintf(&b, "- %s (account %s, %s), at %s: %s\n", n, c.AccountID, c.Region, c.Stage, c.Error)
			if c.Statements > 0 {
				fmt.Fprintf(&b, "  %d statement(s) had taken effect before the failure (see the audit log)\n", c.Statements)
			}
		}
	}
	if len(r.Partial) > 0 {
		fmt.Fprintf(&b, "\nPartial clusters (%d): some accounts failed there, every other account applied:\n", len(r.Partial))
		for _, n := range r.Partial {
			c := byName[n]
			fmt.Fprintf(&b, "- %s (account %s, %s): %d account(s) failed\n", n, c.AccountID, c.Region, c.FailedAccountCount)
			for _, f := range c.FailedAccounts {
				fmt.Fprintf(&b, "  - %s: %s: %s\n", f.Account, f.Summary, f.Error)
			}
		}
	}
	if len(r.LimitsTripped) > 0 {
		fmt.Fprintf(&b, "\nRemoval limit tripped (nothing dropped there, everything else applied):\n")
		for _, n := range r.LimitsTripped {
			c := byName[n]
			fmt.Fprintf(&b, "- %s: %s\n", n, c.LimitTripped)
		}
	}
	ok := len(r.Clusters) - len(r.Failed) - len(r.Partial)
	if len(r.Clusters) > 0 {
		fmt.Fprintf(&b, "\n%d cluster(s) OK. Details: the Lambda's logs (one JSON line per cluster and per statement).\n", ok)
	}
	return b.String()
}

// finish alerts when needed and writes the rollout record (at once, each
// bounded: neither waits for the other), then the metrics and the summary
// log.
func (r *run) finish(ctx context.Context, log *slog.Logger, rep *Report, start time.Time) {
	end := r.now()
	rep.DurationMS = float64(end.Sub(start).Microseconds()) / 1000
	var wg sync.WaitGroup
	wg.Go(func() { r.alert(ctx, log, rep) })
	r.writeRecord(ctx, log, rep, start, end)
	wg.Wait()
	if err := WriteEMF(r.out, rep, end); err != nil {
		log.Error("metrics not written", "error", err.Error())
	}
	level := slog.LevelInfo
	if rep.NeedsAlert() {
		level = slog.LevelError
	}
	log.Log(ctx, level, "run finished", "clusters", len(rep.Clusters), "failed", rep.Failed,
		"limits_tripped", rep.LimitsTripped, "alerted", rep.Alerted, "rollout_record", rep.Record, "duration_ms", rep.DurationMS)
}

// alert sends the SNS message when the report needs one. It sets
// rep.Alerted and reads only what the rollout record's writer does not
// write.
func (r *run) alert(ctx context.Context, log *slog.Logger, rep *Report) {
	if rep.NeedsAlert() && r.cfg.SNSTopicARN != "" && r.deps.SNS != nil {
		// The alert must go out even if the work context ran out.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		_, err := r.deps.SNS.Publish(actx, &sns.PublishInput{
			TopicArn: aws.String(r.cfg.SNSTopicARN),
			Subject:  aws.String(rep.AlertSubject()),
			Message:  aws.String(rep.AlertMessage()),
		})
		cancel()
		if err != nil {
			log.Error("SNS alert not sent", "topic", r.cfg.SNSTopicARN, "error", err.Error())
		} else {
			rep.Alerted = true
		}
	} else if rep.NeedsAlert() {
		log.Warn("no SNS alert sent: " + EnvSNSTopic + " is not set")
	}
}

// auditSink writes each audit record as one JSON log line through the
// Lambda's handler, returning write errors so the engine stops rather than
// apply what it cannot account for.
type auditSink struct {
	h slog.Handler
}

// Record logs r under "audit", in the same shape as audit.JSONLines.
func (s *auditSink) Record(r audit.Record) error {
	level := slog.LevelInfo
	if r.Outcome == audit.Failed {
		level = slog.LevelError
	}
	rec := slog.NewRecord(time.Now(), level, "statement "+string(r.Outcome), 0)
	rec.AddAttrs(slog.Any("audit", r))
	return s.h.Handle(context.Background(), rec)
}
