package ssmbundle

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestCandidateRoundTrip(t *testing.T) {
	content := fleet(50, 3)
	b, text, err := NewCandidate(content, origin(0))
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeCandidate("bundle", text)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(b, got) {
		t.Errorf("decoded %+v, want %+v", got.Meta, b.Meta)
	}
}

// TestCandidateOfTenThousandUsers: the largest configuration publish
// accepts fits in a synchronous invoke, with room for the base's too.
func TestCandidateOfTenThousandUsers(t *testing.T) {
	_, text, err := NewCandidate(fleet(10_000, 200), origin(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("10,000 users, 200 clusters: %d bytes encoded", len(text))
	if 2*len(text) > MaxCandidateText {
		t.Errorf("%d bytes encoded: a candidate and its base would not fit in %d", len(text), MaxCandidateText)
	}
}

func TestDecodeCandidateRefuses(t *testing.T) {
	b, _, err := NewCandidate(fleet(2, 1), origin(0))
	if err != nil {
		t.Fatal(err)
	}
	tampered := *b
	tampered.Content.Users = append(tampered.Content.Users[:1:1], tampered.Content.Users[0])
	tampered.Content.Users[1].Name = "mallory"
	newer := *b
	newer.Meta.Format = FormatVersion + 1
	encode := func(v any) string {
		chunks, _ := encodeRaw(t, v)
		return strings.Join(chunks, "")
	}
	for name, tc := range map[string]struct {
		text string
		want string
		is   error
	}{
		"not base64":     {text: "%%%", want: "bundle: not base64"},
		"not gzip":       {text: "aGVsbG8=", want: "bundle: not gzip"},
		"gzip bomb":      {text: bomb(t), want: "larger than"},
		"too large":      {text: strings.Repeat("A", MaxCandidateText+4), is: ErrCandidateTooLarge},
		"tampered":       {text: encode(tampered), want: "does not match the bundle's own"},
		"newer format":   {text: encode(newer), is: ErrNewerFormat},
		"unknown field":  {text: encode(map[string]any{"meta": b.Meta, "content": b.Content, "apply": true}), want: `unknown field "apply"`},
		"not a bundle":   {text: encode([]int{1}), want: "json"},
		"empty":          {text: "", want: "not gzip"},
		"format missing": {text: encode(map[string]any{"content": b.Content}), want: "format 0"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeCandidate("bundle", tc.text)
			switch {
			case err == nil:
				t.Fatal("accepted")
			case tc.is != nil && !errors.Is(err, tc.is):
				t.Errorf("error %v, want %v", err, tc.is)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Errorf("error %q, want it to say %q", err, tc.want)
			}
		})
	}
}
