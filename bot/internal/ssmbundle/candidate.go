package ssmbundle

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// A candidate is a bundle that is not published: the configuration of a
// pull request's head, sent to the Lambda's plan mode in one piece. It is
// encoded as publish encodes a version (gzipped JSON, base64), in one
// string instead of chunks.

// MaxCandidateText bounds an encoded candidate: Lambda accepts at most
// 6 MB in a synchronous invoke, the plan request's other fields included.
// 10,000 users take about 0.5 MB.
const MaxCandidateText = 5 << 20

// ErrCandidateTooLarge refuses a candidate that cannot be sent.
var ErrCandidateTooLarge = errors.New("candidate bundle is too large to send to the plan mode")

// NewCandidate builds the bundle that publishing c from origin o would
// write, and its encoding.
func NewCandidate(c Content, o Origin) (*Bundle, string, error) {
	sha, err := Hash(c)
	if err != nil {
		return nil, "", err
	}
	if o.Time.IsZero() {
		o.Time = time.Now()
	}
	b := &Bundle{
		Meta: Meta{Format: FormatVersion, Version: VersionFor(o.Time, sha), Commit: o.Commit, PullRequest: o.PullRequest,
			MergedBy: o.MergedBy, PublishedAt: o.Time.UTC(), SHA256: sha},
		Content: c,
	}
	chunks, _, err := Encode(b, math.MaxInt)
	if err != nil {
		return nil, "", err
	}
	text := chunks[0]
	if len(text) > MaxCandidateText {
		return nil, "", fmt.Errorf("%w: %d bytes encoded, at most %d", ErrCandidateTooLarge, len(text), MaxCandidateText)
	}
	return b, text, nil
}

// DecodeCandidate decodes an encoded candidate and checks it is whole:
// its content must hash to the hash it carries. It refuses unknown fields
// and anything larger than a published bundle may be. what names the
// candidate in errors ("bundle", "base_bundle").
func DecodeCandidate(what, text string) (*Bundle, error) {
	if len(text) > MaxCandidateText {
		return nil, fmt.Errorf("%s: %w: %d bytes encoded, at most %d", what, ErrCandidateTooLarge, len(text), MaxCandidateText)
	}
	raw, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		return nil, fmt.Errorf("%s: not base64: %v", what, err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%s: not gzip: %v", what, err)
	}
	data, err := io.ReadAll(io.LimitReader(zr, MaxBundleSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: gzip: %v", what, err)
	}
	if len(data) > MaxBundleSize {
		return nil, fmt.Errorf("%s: larger than %d bytes uncompressed", what, MaxBundleSize)
	}
	var b Bundle
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("%s: json: %v", what, err)
	}
	switch {
	case b.Meta.Format > FormatVersion:
		return nil, fmt.Errorf("%s: %w: format %d, this reader knows %d: deploy the new Lambda first", what, ErrNewerFormat, b.Meta.Format, FormatVersion)
	case b.Meta.Format < 1:
		return nil, fmt.Errorf("%s: format %d is not a dbusers format", what, b.Meta.Format)
	}
	sha, err := Hash(b.Content)
	if err != nil {
		return nil, err
	}
	if sha != b.Meta.SHA256 {
		return nil, fmt.Errorf("%s: content hash %s does not match the bundle's own %s", what, sha, b.Meta.SHA256)
	}
	return &b, nil
}
