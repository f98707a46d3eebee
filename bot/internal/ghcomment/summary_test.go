package ghcomment

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dbusers/dbusers/bot/internal/ghcomment/ghcommenttest"
)

func summaryEnv(path string) func(string) string {
	return func(k string) string {
		if k == "GITHUB_STEP_SUMMARY" {
			return path
		}
		return ""
	}
}

func TestWriteStepSummary(t *testing.T) {
	if err := WriteStepSummary(summaryEnv(""), []Section{{Head: "ignored"}}); err != nil {
		t.Errorf("outside Actions: %v", err)
	}

	path := filepath.Join(t.TempDir(), "step_summary")
	for _, md := range []string{"### Plan\n\nno changes\n", "second step"} {
		if err := WriteStepSummary(summaryEnv(path), []Section{{Head: md}}); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := os.ReadFile(path)
	if want := "### Plan\n\nno changes\nsecond step\n"; string(got) != want {
		t.Errorf("summary %q, want %q", got, want)
	}
}

func TestWriteStepSummaryTruncates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "step_summary")
	if err := os.WriteFile(path, []byte("earlier step\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var rows []string
	for i := 0; len(rows) < 60000; i++ { // 2.4 MiB
		rows = append(rows, fmt.Sprintf("| ➕ | prod-orders | db%d | grant read |\n", i))
	}
	sections := []Section{{Head: "### Plan\n"}, userSection("alice", rows)}
	md := join(sections)
	if err := WriteStepSummary(summaryEnv(path), sections); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	got := string(data)
	if len(got) > StepSummaryLimit || len(got) < StepSummaryLimit-1024 {
		t.Errorf("summary of %d bytes, want just under %d", len(got), StepSummaryLimit)
	}
	if !strings.HasPrefix(got, "earlier step\n### Plan\n") {
		t.Errorf("summary starts %q", got[:40])
	}
	// What is kept ends with a table row; the </details> after it closes
	// the cut section, and is not the section's own.
	kept := len(got[len("earlier step\n"):strings.Index(got, "\n</details>\n\n> [!NOTE]")])
	if want := fmt.Sprintf(": %d bytes were left out", len(md)-kept); !strings.Contains(got, want) {
		t.Errorf("the note does not say %q: %q", want, got[len(got)-300:])
	}
	if err := ghcommenttest.CheckRenders(got); err != nil {
		t.Errorf("the truncated summary does not render: %v", err)
	}
}

func TestWriteStepSummaryNearlyFull(t *testing.T) {
	for _, tc := range []struct {
		room     int
		wantNote bool
		wantErr  string
	}{
		{room: 1000, wantNote: true},
		{room: 10, wantErr: "is full"},
	} {
		path := filepath.Join(t.TempDir(), "step_summary")
		if err := os.WriteFile(path, []byte(strings.Repeat("x", StepSummaryLimit-tc.room)), 0o644); err != nil {
			t.Fatal(err)
		}
		err := WriteStepSummary(summaryEnv(path), []Section{{Rows: strings.SplitAfter(strings.Repeat("plan line\n", 1000), "\n")}})
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("room %d: err %v, want %q", tc.room, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(path)
		added := string(data[StepSummaryLimit-tc.room:])
		if len(data) > StepSummaryLimit || !strings.HasPrefix(added, "\n> [!NOTE]") || !strings.Contains(added, "10000 bytes were left out") {
			t.Errorf("room %d: added %q", tc.room, added)
		}
	}
}
