package suggest

import "testing"

func TestNearest(t *testing.T) {
	names := []string{"validate", "plan", "comment", "reconcile", "publish", "erin", "alice"}
	for in, want := range map[string]string{"valdate": "validate", "pln": "plan", "reconcil": "reconcile", "eri": "erin", "zzzzzzzz": "", "": ""} {
		got, ok := Nearest(in, names)
		if got != want || ok != (want != "") {
			t.Errorf("Nearest(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if d := Distance("kitten", "sitting"); d != 3 {
		t.Errorf("Distance = %d, want 3", d)
	}
}
