// Package privset compares privilege sets: what a change to one account's
// privileges on one database adds and removes, and what a reviewer calls
// it (grant, revoke, elevate, downgrade, change). The planner (live server
// against declarations) and the pull-request review (one revision against
// another) both classify with it, so the words a reviewer reads on the pull
// request and in the plan cannot disagree.
package privset

import "slices"

// Kind names a change of one privilege set.
type Kind string

// The kinds, as a reviewer names them.
const (
	Grant     Kind = "grant"     // from nothing to something
	Revoke    Kind = "revoke"    // from something to nothing
	Elevate   Kind = "elevate"   // only additions
	Downgrade Kind = "downgrade" // only removals
	Change    Kind = "change"    // some added, some removed
	Same      Kind = ""          // nothing changes
)

// Delta is the difference between two privilege sets.
type Delta struct {
	Kind Kind
	// Added and Removed are sorted.
	Added, Removed []string
}

// Empty reports whether nothing is added or removed.
func (d Delta) Empty() bool { return len(d.Added) == 0 && len(d.Removed) == 0 }

// Compare classifies the move from privilege set before to after. The sets
// need not be sorted; duplicates count once.
func Compare(before, after []string) Delta {
	d := Delta{Added: Minus(after, before), Removed: Minus(before, after)}
	switch {
	case d.Empty():
		d.Kind = Same
	case len(before) == 0:
		d.Kind = Grant
	case len(after) == 0:
		d.Kind = Revoke
	case len(d.Removed) == 0:
		d.Kind = Elevate
	case len(d.Added) == 0:
		d.Kind = Downgrade
	default:
		d.Kind = Change
	}
	return d
}

// Minus returns the sorted, distinct elements of a that are not in b.
func Minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) && !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	slices.Sort(out)
	return out
}
