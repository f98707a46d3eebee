package ssmbundle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/dbusers/dbusers/bot/internal/config"
)

// API is the part of the SSM client this package uses; *ssm.Client
// satisfies it.
type API interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
	GetParameters(ctx context.Context, in *ssm.GetParametersInput, optFns ...func(*ssm.Options)) (*ssm.GetParametersOutput, error)
	GetParametersByPath(ctx context.Context, in *ssm.GetParametersByPathInput, optFns ...func(*ssm.Options)) (*ssm.GetParametersByPathOutput, error)
	PutParameter(ctx context.Context, in *ssm.PutParameterInput, optFns ...func(*ssm.Options)) (*ssm.PutParameterOutput, error)
	DeleteParameters(ctx context.Context, in *ssm.DeleteParametersInput, optFns ...func(*ssm.Options)) (*ssm.DeleteParametersOutput, error)
}

// Target says where and how to publish.
type Target struct {
	Pointer string // the pointer parameter's name
	Tier    string // "Standard" or "Advanced"
	Keep    int    // versions to keep, the current one included
	// Signer signs the pointer; nil publishes it unsigned, which a reader
	// accepts only while it allows unsigned bundles.
	Signer *Signer
}

// TargetOf returns the publish target that the settings name.
func TargetOf(s config.SSM) Target {
	t := Target{Pointer: s.Parameter, Tier: s.Tier, Keep: s.KeepVersions}
	if t.Tier == "" {
		t.Tier = string(types.ParameterTierStandard)
	}
	if t.Keep <= 0 {
		t.Keep = 5
	}
	return t
}

// Limit is the largest value the target's tier accepts.
func (t Target) Limit() (int, error) {
	switch t.Tier {
	case "", string(types.ParameterTierStandard):
		return StandardLimit, nil
	case string(types.ParameterTierAdvanced):
		return AdvancedLimit, nil
	}
	return 0, fmt.Errorf("unknown SSM tier %q (want Standard or Advanced)", t.Tier)
}

// Result is what a publish did.
type Result struct {
	Changed bool     `json:"changed"` // false: the configuration was already published
	Version string   `json:"version"`
	SHA256  string   `json:"sha256"`
	Chunks  int      `json:"chunks"`
	Bytes   int      `json:"bytes"`
	Pruned  []string `json:"pruned,omitempty"` // versions deleted
	// KeyARN is the key the pointer is (or, in a dry run, would be)
	// signed with; empty for an unsigned pointer.
	KeyARN string `json:"key_arn,omitempty"`
	// Repaired says why the current version was written again although
	// its content had not changed: it could not be read back, or it
	// lacked the signature this publish gives it.
	Repaired string `json:"repaired,omitempty"`
}

// Origin is the provenance a publish records.
type Origin struct {
	Commit, PullRequest, MergedBy string
	Time                          time.Time
}

// Publish writes content unless the pointer already names the same
// content, that version reads back intact and it carries the signature
// this publish would give it. The pointer is signed before anything is
// written; chunks go first, the pointer last, old versions are pruned
// after. With dryRun nothing is written or signed, but the result says
// what would be.
func Publish(ctx context.Context, api API, t Target, c Content, o Origin, dryRun bool) (*Result, error) {
	limit, err := t.Limit()
	if err != nil {
		return nil, err
	}
	if o.Time.IsZero() {
		// Versions sort by time: a zero time would sort before every
		// published version and upset pruning.
		return nil, errors.New("publish: no publication time")
	}
	sha, err := Hash(c)
	if err != nil {
		return nil, err
	}
	var key *PublicKey
	if t.Signer != nil {
		if key, err = FetchPublicKey(ctx, t.Signer.API, t.Signer.KeyARN); err != nil {
			return nil, err
		}
	}
	cur, err := readPointer(ctx, api, t.Pointer)
	if err != nil && !errors.Is(err, ErrNoPointer) {
		return nil, err
	}
	if cur != nil && cur.Format > FormatVersion {
		return nil, fmt.Errorf("pointer %s names version %s in format %d, written by a newer dbusers than this one (format %d); publish with the newer dbusers",
			t.Pointer, cur.Version, cur.Format, FormatVersion)
	}
	var repaired string
	if cur != nil && cur.SHA256 == sha {
		repaired, err = whyRepublish(ctx, api, t.Pointer, key, *cur)
		if err != nil {
			return nil, err
		}
		if repaired == "" {
			return &Result{Version: cur.Version, SHA256: sha, Chunks: cur.Chunks, Bytes: cur.Bytes, KeyARN: cur.KeyARN}, nil
		}
	}
	p, chunks, err := pack(c, sha, o, limit)
	if err != nil {
		return nil, err
	}
	res := &Result{Changed: true, Version: p.Version, SHA256: sha, Chunks: len(chunks), Bytes: p.Bytes, Repaired: repaired}
	if key != nil {
		res.KeyARN = key.ARN
		if dryRun {
			p.KeyARN = key.ARN // for the size check below
		} else if err := t.Signer.sign(ctx, key, t.Pointer, &p); err != nil {
			return nil, fmt.Errorf("%w; nothing was written", err)
		}
	}
	pointerValue, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	if len(pointerValue) > limit {
		return nil, fmt.Errorf("pointer value is %d bytes, over the %s tier's %d", len(pointerValue), t.Tier, limit)
	}
	if dryRun {
		return res, nil
	}
	for i, chunk := range chunks {
		name := ChunkName(t.Pointer, p.Version, i)
		if _, err := api.PutParameter(ctx, &ssm.PutParameterInput{
			Name: aws.String(name), Value: aws.String(chunk), Type: types.ParameterTypeString,
			Tier: types.ParameterTier(t.Tier), Overwrite: aws.Bool(true),
			Description: aws.String(fmt.Sprintf("dbusers bundle %s chunk %d of %d", p.Version, i+1, len(chunks))),
		}); err != nil {
			return nil, fmt.Errorf("write chunk %s: %w (the pointer still names the previous version)", name, err)
		}
	}
	if _, err := api.PutParameter(ctx, &ssm.PutParameterInput{
		Name: aws.String(t.Pointer), Value: aws.String(string(pointerValue)), Type: types.ParameterTypeString,
		Tier: types.ParameterTier(t.Tier), Overwrite: aws.Bool(true),
		Description: aws.String("dbusers: current configuration bundle (do not edit; written by dbusers publish)"),
	}); err != nil {
		return nil, fmt.Errorf("write pointer %s: %w (chunks of %s are written but not in use)", t.Pointer, err, p.Version)
	}
	res.Pruned, err = prune(ctx, api, t, p.Version)
	if err != nil {
		return res, fmt.Errorf("published %s, but pruning old versions failed: %w", p.Version, err)
	}
	return res, nil
}

// Pack builds what Publish writes for content c from origin o with values
// of at most limit bytes: the chunks of the bundle, and its unsigned
// pointer.
func Pack(c Content, o Origin, limit int) (Pointer, []string, error) {
	sha, err := Hash(c)
	if err != nil {
		return Pointer{}, nil, err
	}
	return pack(c, sha, o, limit)
}

func pack(c Content, sha string, o Origin, limit int) (Pointer, []string, error) {
	b := &Bundle{
		Meta: Meta{Format: FormatVersion, Version: VersionFor(o.Time, sha), Commit: o.Commit, PullRequest: o.PullRequest,
			MergedBy: o.MergedBy, PublishedAt: o.Time.UTC(), SHA256: sha},
		Content: c,
	}
	chunks, size, err := Encode(b, limit)
	if err != nil {
		return Pointer{}, nil, err
	}
	return Pointer{Format: FormatVersion, Version: b.Meta.Version, SHA256: sha, DataSHA256: DataHash(chunks), Chunks: len(chunks), Bytes: size,
		Commit: o.Commit, PullRequest: o.PullRequest, PublishedAt: b.Meta.PublishedAt}, chunks, nil
}

// ErrNoPointer means nothing has been published under the pointer's name.
var ErrNoPointer = errors.New("no pointer parameter")

func readPointer(ctx context.Context, api API, name string) (*Pointer, error) {
	out, err := api.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	var nf *types.ParameterNotFound
	if errors.As(err, &nf) {
		return nil, fmt.Errorf("%w %s: nothing is published yet", ErrNoPointer, name)
	}
	if err != nil {
		return nil, fmt.Errorf("read pointer %s: %w", name, err)
	}
	var p Pointer
	if out.Parameter == nil || out.Parameter.Value == nil {
		return nil, fmt.Errorf("read pointer %s: empty", name)
	}
	if err := json.Unmarshal([]byte(*out.Parameter.Value), &p); err != nil {
		return nil, fmt.Errorf("pointer %s is not a dbusers pointer: %w", name, err)
	}
	if p.Version == "" || p.Chunks <= 0 || len(p.SHA256) != 64 {
		return nil, fmt.Errorf("pointer %s is incomplete (version %q, %d chunks)", name, p.Version, p.Chunks)
	}
	if p.Chunks > MaxChunks {
		// Refused before Read allocates anything for that many.
		return nil, fmt.Errorf("%w: pointer %s names %d chunks, over the limit of %d", ErrCorrupt, name, p.Chunks, MaxChunks)
	}
	return &p, nil
}

// whyRepublish says why the published version cur of unchanged content
// must be written again, or "" when it need not be: a chunk deleted or
// damaged by hand, or a pointer without the signature of key (unsigned,
// signed by another key, or altered), would otherwise stay as it is until
// the configuration changes.
func whyRepublish(ctx context.Context, api API, pointer string, key *PublicKey, cur Pointer) (string, error) {
	if key != nil {
		if _, err := (Trust{Key: key}).check(pointer, cur); err != nil {
			return "it is not signed by " + key.ARN + ": " + err.Error(), nil
		}
	}
	_, err := readVersion(ctx, api, pointer, cur)
	switch {
	case err == nil:
		return "", nil
	case errors.Is(err, ErrCorrupt):
		return "it does not read back: " + err.Error(), nil
	}
	return "", err
}

// Read returns the bundle the pointer names once trust accepts the pointer
// (its signature, before any chunk is read), every chunk is there, the
// chunks hash to what the pointer says and the content to its hash. The
// verdict says who vouched for it.
func Read(ctx context.Context, api API, pointer string, trust Trust) (*Bundle, Verdict, error) {
	p, err := readPointer(ctx, api, pointer)
	if err != nil {
		return nil, Verdict{}, err
	}
	v, err := trust.check(pointer, *p)
	if err != nil {
		return nil, v, err
	}
	b, err := readVersion(ctx, api, pointer, *p)
	if err != nil {
		return nil, v, err
	}
	return b, v, nil
}

// readVersion reads and checks the chunks of the version p names.
func readVersion(ctx context.Context, api API, pointer string, p Pointer) (*Bundle, error) {
	if p.Format > FormatVersion {
		return Decode(p, nil) // refuses before reading chunks it cannot use
	}
	names := make([]string, p.Chunks)
	for i := range names {
		names[i] = ChunkName(pointer, p.Version, i)
	}
	values := map[string]string{}
	for batch := range slices.Chunk(names, 10) { // GetParameters takes at most 10 names
		out, err := api.GetParameters(ctx, &ssm.GetParametersInput{Names: batch})
		if err != nil {
			return nil, fmt.Errorf("read chunks of %s: %w", p.Version, err)
		}
		for _, prm := range out.Parameters {
			values[aws.ToString(prm.Name)] = aws.ToString(prm.Value)
		}
		if len(out.InvalidParameters) > 0 {
			return nil, fmt.Errorf("%w: version %s is missing chunk(s) %s", ErrCorrupt, p.Version, strings.Join(out.InvalidParameters, ", "))
		}
	}
	chunks := make([]string, 0, len(names))
	for _, n := range names {
		v, ok := values[n]
		if !ok {
			return nil, fmt.Errorf("%w: version %s is missing chunk %s", ErrCorrupt, p.Version, n)
		}
		chunks = append(chunks, v)
	}
	// The signed hash of exactly the text read, checked before any of it
	// is decoded.
	if p.DataSHA256 != "" && DataHash(chunks) != p.DataSHA256 {
		return nil, fmt.Errorf("%w: version %s: the chunks do not hash to the pointer's data_sha256 %s (a chunk was changed after publishing)",
			ErrCorrupt, p.Version, p.DataSHA256)
	}
	return Decode(p, chunks)
}

// prune deletes every version but the newest t.Keep (current always kept).
func prune(ctx context.Context, api API, t Target, current string) ([]string, error) {
	byVersion := map[string][]string{}
	var token *string
	for {
		out, err := api.GetParametersByPath(ctx, &ssm.GetParametersByPathInput{
			Path: aws.String(VersionsPath(t.Pointer)), Recursive: aws.Bool(true), NextToken: token,
			MaxResults: aws.Int32(10), // the most SSM returns per page
		})
		if err != nil {
			return nil, fmt.Errorf("list versions: %w", err)
		}
		for _, prm := range out.Parameters {
			name := aws.ToString(prm.Name)
			rest := strings.TrimPrefix(name, VersionsPath(t.Pointer)+"/")
			version, _, ok := strings.Cut(rest, "/")
			if ok {
				byVersion[version] = append(byVersion[version], name)
			}
		}
		if out.NextToken == nil || *out.NextToken == "" {
			break
		}
		token = out.NextToken
	}
	// Version names start with the publication time, so they sort by age.
	// Versions newer than ours come from a concurrent publish: not ours to
	// judge. Of the older ones, keep the newest Keep-1.
	var older []string
	for v := range byVersion {
		if v < current {
			older = append(older, v)
		}
	}
	slices.Sort(older)
	slices.Reverse(older)
	var pruned []string
	for i, v := range older {
		if i < t.Keep-1 {
			continue
		}
		names := byVersion[v]
		slices.Sort(names)
		for batch := range slices.Chunk(names, 10) {
			if _, err := api.DeleteParameters(ctx, &ssm.DeleteParametersInput{Names: batch}); err != nil {
				return pruned, fmt.Errorf("delete version %s: %w", v, err)
			}
		}
		pruned = append(pruned, v)
	}
	slices.Sort(pruned)
	return pruned, nil
}
