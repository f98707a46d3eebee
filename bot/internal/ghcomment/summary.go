package ghcomment

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// StepSummaryLimit is GitHub's limit on one step's summary file, in bytes.
// GitHub drops a larger summary whole, with only an error annotation.
const StepSummaryLimit = 1 << 20

// WriteStepSummary appends sections, joined as one markdown document, to
// the file named by GITHUB_STEP_SUMMARY, which GitHub shows on the workflow
// run's page; it does nothing when the variable is not set (outside
// Actions). The plan stays readable there when the comment cannot be
// posted. Markdown that would take the file over StepSummaryLimit is cut
// the way Pack cuts a comment (between sections or rows, every section
// piece closed) and followed by a note of how much was left out.
func WriteStepSummary(getenv func(string) string, sections []Section) error {
	path := getenv("GITHUB_STEP_SUMMARY")
	if path == "" {
		return nil
	}
	var have int64
	switch fi, err := os.Stat(path); {
	case err == nil:
		have = fi.Size()
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("step summary: %w", err)
	}
	out := summaryText(sections, StepSummaryLimit-int(have))
	if out == "" {
		return fmt.Errorf("step summary %s is full (%d bytes, GitHub's limit is %d)", path, have, StepSummaryLimit)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("step summary: %w", err)
	}
	if _, err := f.WriteString(out); err != nil {
		f.Close()
		return fmt.Errorf("step summary %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("step summary %s: %w", path, err)
	}
	return nil
}

// summaryText is the sections' markdown, ending with a newline, cut to at
// most room bytes, with a note when cut; "" when not even the note fits.
func summaryText(sections []Section, room int) string {
	markdown := join(sections)
	if !strings.HasSuffix(markdown, "\n") {
		markdown += "\n"
	}
	if len(markdown) <= room {
		return markdown
	}
	// The note's length depends on the number in it; reserve for the
	// largest number a cut can produce.
	note := func(left int) string {
		return fmt.Sprintf("\n> [!NOTE]\n> The plan was cut here to fit GitHub's %d KiB step summary limit: %d bytes were left out. Run `dbusers plan` locally for all of it.\n",
			StepSummaryLimit>>10, left)
	}
	reserve := len(note(len(markdown)))
	if room-reserve < MinBody {
		if reserve <= room {
			return note(len(markdown))
		}
		return ""
	}
	p := pack(sections, room-reserve)
	return p.bodies[0] + note(len(markdown)-p.carried[0])
}
