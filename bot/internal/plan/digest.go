package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
)

// Digest is the SHA-256, in hex, of what the plan would send and what it
// shows it leaves out: its changes, the drops the removal limit holds back
// and the users it skips. Two plans with one digest send the same
// statements in the same order. Ended sessions are left out of it: a run
// ends the sessions open when it has applied the rest, read then (a
// session opened after the plan was made is ended too, one that closed is
// not), so the sessions a plan shows are a preview, not a promise.
// Passwords are not in it (a Change's JSON never holds one): a run sets
// the password its secret holds when it runs.
func (p *Plan) Digest() string {
	noSessions := func(cs []Change) []Change {
		return slices.DeleteFunc(slices.Clone(cs), func(c Change) bool { return c.Action() == EndSession })
	}
	data, err := json.Marshal(struct {
		Changes []Change `json:"changes"`
		Held    []Change `json:"held"`
		Skipped []Skip   `json:"skipped"`
	}{noSessions(p.Changes), noSessions(p.Held), p.Skipped})
	if err != nil {
		// Only a change without an operation fails to marshal, and Diff
		// never makes one; a digest that matches nothing is the safe answer.
		return "unmarshallable: " + err.Error()
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
