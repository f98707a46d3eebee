package ghcomment

import (
	"strings"
	"testing"
)

// FuzzPack packs arbitrary text, repeated (up to 64 times, 256 KiB) to
// reach several bodies and cut into sections at every \x1e, under a limit
// between MinBody and MinBody+8191, and checks what holds for every input
// (checkPieces): no body over the limit, the text whole and in order
// across the bodies, the summary whole in body 1 when it fits, every body
// balanced.
func FuzzPack(f *testing.F) {
	for _, s := range []string{
		"",
		"### Plan\n\nNo changes.\n",
		"summary\x1e<details><summary>alice</summary>\n\n```sql\nGRANT SELECT ON `a`.* TO 'acme_alice'@'%';\n```\n</details>\n",
		"```\nunclosed fence\n",
		"<details>\n<details>\n<details>\n<details>\n<details>\ndeep\n</details>\n</details>\n</details>\n</details>\n</details>\n",
		"~~~~ sql\n~~~\nnot closed by three\n~~~~~\n",
		"   ```go\ncode\n   ```\n    ```\nindented\n",
		"<DETAILS open>\n\ntext\n</Details>\n\x1e\x1e\x1eempty sections\n",
		"日本語🙂\r\n```\r\ncrlf\r\n```\r\n",
		strings.Repeat("x", 300) + "\n```\n" + strings.Repeat("y", 300),
		"</details>\n```\n</details>\n```\n<details><summary>a</summary>b</details>\n",
	} {
		f.Add(s, uint16(0), uint8(0))
		f.Add(s, uint16(1000), uint8(60))
	}
	f.Fuzz(func(t *testing.T, s string, extra uint16, repeat uint8) {
		limit := MinBody + int(extra%8192)
		text := strings.Repeat(s, 1+int(repeat)%64)
		if len(text) > 256<<10 {
			t.Skip("input too large")
		}
		sections := strings.Split(text, "\x1e")
		checkPieces(t, sections, limit, pack(sections, limit))
	})
}
