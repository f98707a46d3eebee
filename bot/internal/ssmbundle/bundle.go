// Package ssmbundle publishes a validated configuration to AWS SSM
// Parameter Store and reads it back. The configuration is one gzipped JSON
// bundle, split into chunks that fit the parameter tier, written under a
// versioned path; only then is the pointer parameter written, so a reader
// triggered by the pointer never sees a half-written bundle. Hashes in the
// pointer let the reader refuse a corrupted or incomplete bundle, and a
// signature by an AWS KMS key that only the publisher may use lets it
// refuse one that someone else wrote (see sign.go).
package ssmbundle

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dbusers/dbusers/bot/internal/config"
)

// Tier limits: SSM refuses values above these sizes (in bytes). The
// emulator used in tests does not enforce them, so this package does.
const (
	StandardLimit = 4096
	AdvancedLimit = 8192
)

// MaxBundleSize bounds the decompressed bundle a reader accepts, so a
// hostile or corrupt bundle cannot exhaust the Lambda's memory. 10,000
// users take about 4 MB.
const MaxBundleSize = 64 << 20

// FormatVersion is the bundle format; readers refuse a newer one.
const FormatVersion = 1

// MaxChunks bounds the chunks of one version. A pointer naming more is
// refused before anything is allocated for it, and a bundle that would need
// more is refused at publish time: 2,000 Standard chunks hold 6 MB of gzip,
// far more than 10,000 users need, and SSM caps a Standard account at
// 10,000 parameters per region.
const MaxChunks = 2000

// Content is the configuration a bundle carries: the declarations as
// written, not the expanded desired state, so the Lambda evaluates expiry
// on the day it runs.
type Content struct {
	Settings config.Settings  `json:"settings"`
	Clusters []config.Cluster `json:"clusters"`
	Users    []config.User    `json:"users"`
}

// Meta says where a bundle came from.
type Meta struct {
	Format      int       `json:"format"`
	Version     string    `json:"version"`
	Commit      string    `json:"commit,omitempty"`
	PullRequest string    `json:"pull_request,omitempty"`
	MergedBy    string    `json:"merged_by,omitempty"`
	PublishedAt time.Time `json:"published_at"`
	// SHA256 is the hex hash of the content's canonical JSON.
	SHA256 string `json:"sha256"`
}

// Bundle is one published configuration.
type Bundle struct {
	Meta    Meta    `json:"meta"`
	Content Content `json:"content"`
}

// Config returns the bundle's declarations as a config.Config.
func (b *Bundle) Config() *config.Config {
	return &config.Config{Settings: b.Content.Settings, Clusters: b.Content.Clusters, Users: b.Content.Users}
}

// Pointer is the value of the pointer parameter: which version is current,
// how to check it, and who vouches for it.
type Pointer struct {
	Format  int    `json:"format"`
	Version string `json:"version"`
	// SHA256 is the hex hash of the content's canonical JSON (Hash).
	SHA256 string `json:"sha256"`
	// DataSHA256 is the hex SHA-256 of the chunks' text joined: exactly
	// what a reader fetches, checked before any of it is decoded. Pointers
	// written before signing existed have none.
	DataSHA256  string    `json:"data_sha256,omitempty"`
	Chunks      int       `json:"chunks"`
	Bytes       int       `json:"bytes"` // compressed size
	Commit      string    `json:"commit,omitempty"`
	PullRequest string    `json:"pull_request,omitempty"`
	PublishedAt time.Time `json:"published_at"`
	// KeyARN names the KMS key that signed the pointer, and Signature is
	// its ECDSA signature (ASN.1 DER, base64) of SignedDigest. Both are
	// empty on an unsigned pointer.
	KeyARN    string `json:"key_arn,omitempty"`
	Signature string `json:"signature,omitempty"`
}

// ContentOf returns a bundle's content from a loaded configuration.
func ContentOf(c *config.Config) Content {
	return Content{Settings: c.Settings, Clusters: c.Clusters, Users: c.Users}
}

// Hash returns the hex SHA-256 of the content's canonical JSON (struct
// fields in declaration order, map keys sorted), which is what "unchanged"
// means for publishing.
func Hash(c Content) (string, error) {
	data, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encode content: %w", err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// DataHash returns the hex SHA-256 of chunks joined: what a pointer's
// DataSHA256 says.
func DataHash(chunks []string) string {
	h := sha256.New()
	for _, c := range chunks {
		h.Write([]byte(c))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// VersionFor names a version by time and content, so versions sort by
// publication time and two different contents never share a path.
func VersionFor(t time.Time, sha string) string {
	return t.UTC().Format("20060102T150405Z") + "-" + sha[:12]
}

// Encode gzips the bundle and splits it into base64 chunks of at most
// limit bytes each.
func Encode(b *Bundle, limit int) ([]string, int, error) {
	if limit < 64 {
		return nil, 0, fmt.Errorf("chunk limit %d is too small", limit)
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, 0, err
	}
	if err := json.NewEncoder(zw).Encode(b); err != nil {
		return nil, 0, fmt.Errorf("encode bundle: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, 0, fmt.Errorf("compress bundle: %w", err)
	}
	text := base64.StdEncoding.EncodeToString(buf.Bytes())
	if n := (len(text) + limit - 1) / limit; n > MaxChunks {
		return nil, 0, fmt.Errorf("bundle needs %d chunks of %d bytes, over the limit of %d", n, limit, MaxChunks)
	}
	var chunks []string
	for len(text) > 0 {
		n := min(limit, len(text))
		chunks = append(chunks, text[:n])
		text = text[n:]
	}
	return chunks, buf.Len(), nil
}

// ErrCorrupt means the chunks do not make the bundle the pointer names.
var ErrCorrupt = errors.New("bundle is corrupt")

// ErrNewerFormat means the pointer or bundle was written by a newer dbusers
// than the one reading it; the reader must be upgraded, the data is fine.
var ErrNewerFormat = errors.New("bundle format is newer than this reader")

// Decode joins chunks, checks them against the pointer and returns the
// bundle. Every refusal names the version, and the chunk when one can be
// blamed.
func Decode(p Pointer, chunks []string) (*Bundle, error) {
	if p.Format > FormatVersion {
		return nil, fmt.Errorf("%w: version %s has format %d, this reader knows %d: deploy the new Lambda first",
			ErrNewerFormat, p.Version, p.Format, FormatVersion)
	}
	if p.Format < 1 {
		return nil, fmt.Errorf("%w: version %s: pointer format %d is not a dbusers format", ErrCorrupt, p.Version, p.Format)
	}
	if len(chunks) != p.Chunks {
		return nil, fmt.Errorf("%w: version %s: pointer names %d chunk(s), found %d", ErrCorrupt, p.Version, p.Chunks, len(chunks))
	}
	joined := strings.Join(chunks, "")
	raw, err := base64.StdEncoding.DecodeString(joined)
	if err != nil {
		var bad base64.CorruptInputError
		if errors.As(err, &bad) {
			i := chunkAt(chunks, int(bad))
			return nil, fmt.Errorf("%w: version %s chunk %d: base64: %v", ErrCorrupt, p.Version, i, err)
		}
		return nil, fmt.Errorf("%w: version %s: base64: %v", ErrCorrupt, p.Version, err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%w: version %s: gzip: %v", ErrCorrupt, p.Version, err)
	}
	data, err := io.ReadAll(io.LimitReader(zr, MaxBundleSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: version %s: gzip: %v", ErrCorrupt, p.Version, err)
	}
	if len(data) > MaxBundleSize {
		return nil, fmt.Errorf("%w: version %s: larger than %d bytes uncompressed", ErrCorrupt, p.Version, MaxBundleSize)
	}
	var b Bundle
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("%w: version %s: json: %v", ErrCorrupt, p.Version, err)
	}
	if b.Meta.Format != p.Format {
		return nil, fmt.Errorf("%w: version %s: bundle format %d, the pointer says %d", ErrCorrupt, p.Version, b.Meta.Format, p.Format)
	}
	sha, err := Hash(b.Content)
	if err != nil {
		return nil, err
	}
	if sha != p.SHA256 {
		return nil, fmt.Errorf("%w: version %s: content hash %s does not match the pointer's %s", ErrCorrupt, p.Version, sha, p.SHA256)
	}
	if sha != b.Meta.SHA256 {
		return nil, fmt.Errorf("%w: version %s: content hash %s does not match the bundle's own %s", ErrCorrupt, p.Version, sha, b.Meta.SHA256)
	}
	if b.Meta.Version != p.Version {
		return nil, fmt.Errorf("%w: chunks hold version %s, the pointer names %s", ErrCorrupt, b.Meta.Version, p.Version)
	}
	return &b, nil
}

// chunkAt returns the index of the chunk that holds byte off of the joined
// chunks.
func chunkAt(chunks []string, off int) int {
	for i, c := range chunks {
		if off < len(c) {
			return i
		}
		off -= len(c)
	}
	return max(len(chunks)-1, 0)
}

// ChunkName is the parameter that holds chunk i of a version.
func ChunkName(pointer, version string, i int) string {
	return fmt.Sprintf("%s/v/%s/%04d", pointer, version, i)
}

// VersionsPath is the path under which every version's chunks live.
func VersionsPath(pointer string) string { return pointer + "/v" }
