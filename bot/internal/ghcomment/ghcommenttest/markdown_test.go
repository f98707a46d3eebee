package ghcommenttest

import (
	"strings"
	"testing"
)

func TestCheckRenders(t *testing.T) {
	const table = "| | cluster | change |\n|---|---|--:|\n| ➕ | a | grant |\n| ➖ | b\\|c | revoke |\n"
	for _, tc := range []struct {
		name, body string
		err        string // in the error; "" for none
	}{
		{"a table in details", "<details open><summary>x</summary>\n\n" + table + "\n</details>\n", ""},
		{"two tables", table + "\ntext\n\n" + table, ""},
		{"a pipe in a code fence", "```\n| not | a | row |\n```\n", ""},
		{"escaped pipes are not cells", "| a \\| b |\n|---|\n", ""},
		{"rows without a header", "<details><summary>x</summary>\n\n| ➕ | a | grant |\n</details>\n", "line 3: a table row without a header"},
		{"a header without a delimiter", "| a | b |\n| 1 | 2 |\n", "line 1: a table row without a header"},
		{"a delimiter of other width", "| a | b |\n|---|\n", "line 1"},
		{"a delimiter that is not one", "| a | b |\n|-x-|---|\n", "line 1"},
		{"rows after text", table + "text\n| ➕ | a | grant |\n", "line 6"},
		{"details left open", "<details>\n\ntext\n", "1 <details>"},
		{"a fence left open", "```sql\nGRANT\n", "code fence (true)"},
		{"a close first", "</details>\n<details>\n", "line 1: </details> without <details>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckRenders(tc.body)
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("CheckRenders: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("CheckRenders = %v, want an error with %q", err, tc.err)
			}
		})
	}
}
