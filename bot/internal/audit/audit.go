// Package audit records every statement dbusers applies as one JSON line,
// so that "who granted what to whom, when, from which change" can always be
// answered from the logs. Records carry redacted statements only.
package audit

import (
	"encoding/json"
	"io"
	"sync"
	"time"
)

// Outcome says whether a statement took effect.
type Outcome string

// Outcomes of one statement.
const (
	Applied Outcome = "applied"
	Failed  Outcome = "failed"
	// InDoubt means the connection was lost after the statement was sent:
	// it may or may not have taken effect; the next run's plan tells.
	InDoubt Outcome = "in_doubt"
)

// Record is one applied (or failed) statement.
type Record struct {
	Time    time.Time `json:"time"`
	Cluster string    `json:"cluster"`
	// Account is the MySQL account changed ('user'@'host'); User is the
	// declared user name, empty for an account no user file owns (made by
	// hand, or at a host other than '%').
	Account string `json:"account"`
	User    string `json:"user,omitempty"`
	Action  string `json:"action"`
	Summary string `json:"summary"`
	// Statement is the redacted SQL: passwords never appear.
	Statement     string  `json:"statement"`
	ConfigVersion string  `json:"config_version,omitempty"`
	Commit        string  `json:"commit,omitempty"`
	Outcome       Outcome `json:"outcome"`
	// Error is the server's message for a failed statement, which never
	// contains the statement's secrets (the server echoes no literals back
	// in grant errors; render redacts passwords before any error is built).
	Error      string  `json:"error,omitempty"`
	DurationMS float64 `json:"duration_ms"`
}

// Sink receives audit records. Implementations must be safe for concurrent
// use: clusters reconcile in parallel.
type Sink interface {
	Record(Record) error
}

// JSONLines writes one JSON object per line to w.
type JSONLines struct {
	mu  sync.Mutex
	enc *json.Encoder
}

// NewJSONLines returns a sink writing to w.
func NewJSONLines(w io.Writer) *JSONLines {
	return &JSONLines{enc: json.NewEncoder(w)}
}

// Record writes r as one line.
func (j *JSONLines) Record(r Record) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.enc.Encode(r)
}

// Memory keeps records in memory, for tests and for printing a run's
// summary after the fact.
type Memory struct {
	mu      sync.Mutex
	records []Record
}

// Record appends r.
func (m *Memory) Record(r Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.records = append(m.records, r)
	return nil
}

// Records returns a copy of what was recorded, in order.
func (m *Memory) Records() []Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Record(nil), m.records...)
}
