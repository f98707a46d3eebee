// Package suggest finds the name a person probably meant: "did you mean"
// for an unknown command, flag, user or cluster.
package suggest

import "slices"

// Nearest returns the name closest to s by edit distance, if one is
// within max(2, len(s)/3) edits; ties go to the first in sorted order.
func Nearest(s string, names []string) (string, bool) {
	limit := max(2, len([]rune(s))/3)
	best, bestD := "", limit+1
	for _, n := range slices.Sorted(slices.Values(names)) {
		if d := Distance(s, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best, best != ""
}

// Distance is the Levenshtein distance of a and b, in runes.
func Distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur := make([]int, len(rb)+1)
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(rb)]
}
