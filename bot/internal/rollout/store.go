package rollout

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// How a record is stored, and why.
//
// A record must carry every cluster's outcome: with 200 clusters, their
// names, statuses, counts and errors alone are tens of kilobytes of JSON,
// far over one parameter (4 KB Standard, 8 KB Advanced), and a bounded
// summary would have to leave out exactly what a person looks for (which
// cluster failed, and why). So a record is stored as the bundle is:
// gzipped JSON, base64, split into chunks, and a small head parameter,
// written last, that names them and their hash. A reader that finds the
// head finds a whole record.
//
// A record is rewritten by every run of its version, while the publish
// workflow may be reading it. Each write is a new generation: the chunks
// go under <version>/<generation>/, the head names the generation, and the
// previous generation's chunks are deleted only after the new head is
// written. A reader that read the old head finds the old chunks, or finds
// them gone and reads the head again (Read retries).
//
// Every value is written in the Standard tier and fits its 4,096 bytes,
// whatever ssm.tier says for the bundle: Standard parameters cost nothing,
// a Standard value is valid in either tier, and a tier never has to be
// switched (SSM cannot turn an Advanced parameter back into Standard).
//
// Fit keeps the encoded record within MaxChunks chunks (64 KB of base64,
// about 48 KB of gzip): 200 clusters with their errors take 1 to 4 of
// them. When a record would need more (thousands of accounts created
// at once, hundreds of long errors), detail goes first: account events
// beyond the first ones, per-cluster lists, error lengths, old runs, and
// last the clusters that ended well; a failed cluster is never cut. The
// record says what was cut (Cut) and counts it.
//
// Old records go with old versions: after each write, the records of
// versions older than the newest keep (dbusers.json's ssm.keep_versions)
// are deleted by the Lambda, whose role alone may delete under the status
// path; the publish role may only read there.

// ChunkLimit is the largest value written: SSM's Standard tier limit.
const ChunkLimit = 4096

// MaxChunks bounds the chunks of one record.
const MaxChunks = 16

// maxDecoded bounds a record's decompressed size on reading.
const maxDecoded = 8 << 20

// ReadAPI is the SSM calls a reader of records makes (`dbusers rollout`,
// with the publish role): the head, then its chunks. *ssm.Client satisfies
// it. The publish role may make exactly these on the status path (the
// deploy tests derive its policy from this interface).
type ReadAPI interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
	GetParameters(ctx context.Context, in *ssm.GetParametersInput, optFns ...func(*ssm.Options)) (*ssm.GetParametersOutput, error)
}

// WriteAPI is the SSM calls the Lambda makes on the status path: it reads
// the previous record, writes the new one, lists the records and deletes
// old generations and old versions' records. *ssm.Client satisfies it; the
// function role may make exactly these there.
type WriteAPI interface {
	ReadAPI
	GetParametersByPath(ctx context.Context, in *ssm.GetParametersByPathInput, optFns ...func(*ssm.Options)) (*ssm.GetParametersByPathOutput, error)
	PutParameter(ctx context.Context, in *ssm.PutParameterInput, optFns ...func(*ssm.Options)) (*ssm.PutParameterOutput, error)
	DeleteParameters(ctx context.Context, in *ssm.DeleteParametersInput, optFns ...func(*ssm.Options)) (*ssm.DeleteParametersOutput, error)
}

// Head is the value of a record's head parameter.
type Head struct {
	Format     int    `json:"format"`
	Version    string `json:"version"`
	Generation int    `json:"generation"`
	Chunks     int    `json:"chunks"`
	// Bytes is the gzip size; DataSHA256 the hex SHA-256 of the chunks'
	// text joined, as a reader fetches it.
	Bytes      int       `json:"bytes"`
	DataSHA256 string    `json:"data_sha256"`
	WrittenAt  time.Time `json:"written_at"`
}

// Path is the path under which every record lives.
func Path(pointer string) string { return pointer + "/status" }

// HeadName is the head parameter of version's record.
func HeadName(pointer, version string) string { return Path(pointer) + "/" + version }

// ChunkName is chunk i of generation gen of version's record.
func ChunkName(pointer, version string, gen, i int) string {
	return fmt.Sprintf("%s/%d/%04d", HeadName(pointer, version), gen, i)
}

// ErrNoRecord means no run of the version has written its record.
var ErrNoRecord = errors.New("no rollout record")

// ErrCorrupt means the stored record cannot be read back.
var ErrCorrupt = errors.New("rollout record is corrupt")

// Encode gzips the record and splits its base64 into chunks of at most
// limit bytes.
func Encode(r *Record, limit int) (chunks []string, gz int, err error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, 0, err
	}
	if err := json.NewEncoder(zw).Encode(r); err != nil {
		return nil, 0, fmt.Errorf("encode rollout record: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, 0, err
	}
	text := base64.StdEncoding.EncodeToString(buf.Bytes())
	for len(text) > 0 {
		n := min(limit, len(text))
		chunks = append(chunks, text[:n])
		text = text[n:]
	}
	return chunks, buf.Len(), nil
}

// Decode checks chunks against the head and returns the record.
func Decode(h Head, chunks []string) (*Record, error) {
	if h.Format > FormatVersion {
		return nil, fmt.Errorf("%w: the record of %s has format %d, this dbusers reads %d: use a newer dbusers", ErrCorrupt, h.Version, h.Format, FormatVersion)
	}
	if len(chunks) != h.Chunks {
		return nil, fmt.Errorf("%w: the head of %s names %d chunk(s), found %d", ErrCorrupt, h.Version, h.Chunks, len(chunks))
	}
	if dataHash(chunks) != h.DataSHA256 {
		return nil, fmt.Errorf("%w: the chunks of %s do not hash to the head's data_sha256", ErrCorrupt, h.Version)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.Join(chunks, ""))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: base64: %v", ErrCorrupt, h.Version, err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: gzip: %v", ErrCorrupt, h.Version, err)
	}
	data, err := io.ReadAll(io.LimitReader(zr, maxDecoded+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: gzip: %v", ErrCorrupt, h.Version, err)
	}
	if len(data) > maxDecoded {
		return nil, fmt.Errorf("%w: %s: larger than %d bytes uncompressed", ErrCorrupt, h.Version, maxDecoded)
	}
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%w: %s: json: %v", ErrCorrupt, h.Version, err)
	}
	if r.Version != h.Version {
		return nil, fmt.Errorf("%w: the chunks hold the record of %s, the head names %s", ErrCorrupt, r.Version, h.Version)
	}
	if r.Format > FormatVersion {
		return nil, fmt.Errorf("%w: the record of %s has format %d, this dbusers reads %d: use a newer dbusers", ErrCorrupt, h.Version, r.Format, FormatVersion)
	}
	return &r, nil
}

func dataHash(chunks []string) string {
	h := sha256.New()
	for _, c := range chunks {
		h.Write([]byte(c))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Fit cuts r, in place, until it encodes in at most MaxChunks chunks of
// ChunkLimit bytes, and returns the chunks. It fails only when not even
// the failed clusters' outcomes fit.
func Fit(r *Record) ([]string, int, error) {
	for step := 0; ; step++ {
		chunks, gz, err := Encode(r, ChunkLimit)
		if err != nil {
			return nil, 0, err
		}
		if len(chunks) <= MaxChunks {
			return chunks, gz, nil
		}
		if step >= len(cuts) {
			return nil, 0, fmt.Errorf("the rollout record of %s needs %d chunks of %d bytes after every cut, over the limit of %d",
				r.Version, len(chunks), ChunkLimit, MaxChunks)
		}
		if note := cuts[step](r); note != "" {
			r.Cut = append(r.Cut, note)
		}
	}
}

// cuts are Fit's steps, least useful detail first; each says what it cut,
// or "" when it cut nothing.
var cuts = []func(*Record) string{
	func(r *Record) string { return cutAccounts(r, 200) },
	func(r *Record) string { return cutAccounts(r, 20) },
	func(r *Record) string { return cutLists(r, 3, 300) },
	func(r *Record) string { return cutLists(r, 1, 120) },
	func(r *Record) string { return cutAccounts(r, 0) },
	func(r *Record) string {
		if len(r.Runs) <= 1 {
			return ""
		}
		n := len(r.Runs) - 1
		r.Runs, r.RunsLeftOut = r.Runs[n:], r.RunsLeftOut+n
		return fmt.Sprintf("%d earlier run(s)", n)
	},
	func(r *Record) string {
		n := 0
		for i := range r.Clusters {
			c := &r.Clusters[i]
			if c.Status == Applied || c.Status == Unchanged {
				c.Server, c.Notes, c.Skipped, c.AccountID, c.Region, c.Environment = "", nil, nil, "", "", ""
				n++
			}
		}
		if n == 0 {
			return ""
		}
		return fmt.Sprintf("the details of %d cluster(s) that applied or had nothing to do", n)
	},
	func(r *Record) string {
		before := len(r.Clusters)
		r.Clusters = slices.DeleteFunc(r.Clusters, func(c Cluster) bool {
			return (c.Status == Applied || c.Status == Unchanged) && c.Held == 0
		})
		n := before - len(r.Clusters)
		if n == 0 {
			return ""
		}
		r.ClustersLeftOut += n
		return fmt.Sprintf("%d cluster(s) that applied or had nothing to do", n)
	},
}

func cutAccounts(r *Record, keep int) string {
	n := len(r.Accounts) - keep
	if n <= 0 {
		return ""
	}
	r.Accounts = keepAccounts(r.Accounts, keep)
	r.AccountsLeftOut += n
	named := map[string]bool{}
	for _, a := range r.Accounts {
		named[a.User] = true
	}
	r.Users = slices.DeleteFunc(r.Users, func(u User) bool { return !named[u.Name] })
	return fmt.Sprintf("%d account event(s)", n)
}

func cutLists(r *Record, keep, text int) string {
	cut := 0
	for i := range r.Clusters {
		c := &r.Clusters[i]
		if len(c.FailedAccounts) > keep {
			cut += len(c.FailedAccounts) - keep
			c.FailedAccounts = c.FailedAccounts[:keep]
		}
		if len(c.Notes) > keep {
			cut += len(c.Notes) - keep
			c.Notes = c.Notes[:keep]
		}
		if len(c.Skipped) > keep {
			cut += len(c.Skipped) - keep
			c.Skipped = c.Skipped[:keep]
		}
		c.Error = clip(c.Error, text)
		c.LimitTripped = clip(c.LimitTripped, text)
		for j := range c.FailedAccounts {
			c.FailedAccounts[j].Error = clip(c.FailedAccounts[j].Error, text)
			c.FailedAccounts[j].Summary = clip(c.FailedAccounts[j].Summary, text)
		}
		for j := range c.Notes {
			c.Notes[j] = clip(c.Notes[j], text)
		}
		for j := range c.Skipped {
			c.Skipped[j].Reason = clip(c.Skipped[j].Reason, text)
		}
	}
	for i := range r.Accounts {
		r.Accounts[i].Error = clip(r.Accounts[i].Error, text)
		r.Accounts[i].Summary = clip(r.Accounts[i].Summary, text)
	}
	return fmt.Sprintf("%d list item(s) per cluster beyond %d, and text beyond %d characters", cut, keep, text)
}

// Written says what Write did.
type Written struct {
	// Head is the head parameter written.
	Head       string
	Generation int
	Chunks     int
	Bytes      int
	// Cut says what Fit left out.
	Cut []string
	// Pruned lists the versions whose records were deleted.
	Pruned []string
}

// Write adds u to the record of u.Version and writes it (see the comment
// at the top of this file): it reads the previous record, merges, fits,
// writes the chunks of a new generation, then the head, then deletes
// older generations and the records of versions older than the newest
// keep (0: prune nothing). A failure after the head is written (pruning)
// returns the Written with the error: the record is in place.
func Write(ctx context.Context, api WriteAPI, pointer string, u Update, keep int) (*Written, error) {
	if !ValidVersion(u.Version) {
		return nil, fmt.Errorf("rollout record: %q is not a version name", u.Version)
	}
	if pointer == "" || !strings.HasPrefix(pointer, "/") {
		return nil, fmt.Errorf("rollout record: pointer %q is not a parameter path", pointer)
	}
	prev, head, err := Read(ctx, api, pointer, u.Version)
	switch {
	case errors.Is(err, ErrNoRecord):
		prev, head = nil, nil
	case errors.Is(err, ErrCorrupt):
		// Written anew: a damaged record must not stop every later run's.
		prev = nil
	case err != nil:
		return nil, fmt.Errorf("read the previous rollout record: %w", err)
	}
	rec := Merge(prev, u)
	chunks, gz, err := Fit(rec)
	if err != nil {
		return nil, err
	}
	gen := 1
	if head != nil {
		gen = head.Generation + 1
	}
	h := Head{Format: FormatVersion, Version: u.Version, Generation: gen, Chunks: len(chunks), Bytes: gz,
		DataSHA256: dataHash(chunks), WrittenAt: u.Run.FinishedAt.UTC()}
	headValue, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	for i, c := range chunks {
		if len(c) > ChunkLimit {
			return nil, fmt.Errorf("rollout record chunk %d is %d bytes, over %d", i, len(c), ChunkLimit) // Encode's bug
		}
		name := ChunkName(pointer, u.Version, gen, i)
		if err := put(ctx, api, name, c, fmt.Sprintf("dbusers rollout record %s, generation %d, chunk %d of %d", u.Version, gen, i+1, len(chunks))); err != nil {
			return nil, fmt.Errorf("write %s: %w", name, err)
		}
	}
	name := HeadName(pointer, u.Version)
	if err := put(ctx, api, name, string(headValue), "dbusers: what the runs of version "+u.Version+" did (written by the Lambda; read by dbusers rollout)"); err != nil {
		return nil, fmt.Errorf("write %s: %w", name, err)
	}
	w := &Written{Head: name, Generation: gen, Chunks: len(chunks), Bytes: gz, Cut: rec.Cut}
	w.Pruned, err = prune(ctx, api, pointer, u.Version, gen, keep)
	if err != nil {
		return w, fmt.Errorf("record written, but pruning failed: %w", err)
	}
	return w, nil
}

func put(ctx context.Context, api WriteAPI, name, value, description string) error {
	_, err := api.PutParameter(ctx, &ssm.PutParameterInput{
		Name: aws.String(name), Value: aws.String(value), Type: types.ParameterTypeString,
		Tier: types.ParameterTierStandard, Overwrite: aws.Bool(true), Description: aws.String(description),
	})
	return err
}

// Read returns the record of version and its head; ErrNoRecord when there
// is none yet. A head whose chunks are gone (a newer generation replaced
// them meanwhile) is read again.
func Read(ctx context.Context, api ReadAPI, pointer, version string) (*Record, *Head, error) {
	if !ValidVersion(version) {
		return nil, nil, fmt.Errorf("%q is not a version name (such as 20260301T090000Z-ad6aa65e5287)", version)
	}
	var last error
	for range 3 {
		h, err := readHead(ctx, api, pointer, version)
		if err != nil {
			return nil, nil, err
		}
		chunks, missing, err := readChunks(ctx, api, pointer, h)
		if err != nil {
			return nil, h, err
		}
		if missing {
			last = fmt.Errorf("%w: generation %d of %s lost chunks while it was read", ErrCorrupt, h.Generation, version)
			continue
		}
		r, err := Decode(*h, chunks)
		return r, h, err
	}
	return nil, nil, last
}

func readHead(ctx context.Context, api ReadAPI, pointer, version string) (*Head, error) {
	name := HeadName(pointer, version)
	out, err := api.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	var nf *types.ParameterNotFound
	if errors.As(err, &nf) {
		return nil, fmt.Errorf("%w for version %s (%s)", ErrNoRecord, version, name)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if out.Parameter == nil || out.Parameter.Value == nil {
		return nil, fmt.Errorf("%w: %s is empty", ErrCorrupt, name)
	}
	var h Head
	if err := json.Unmarshal([]byte(*out.Parameter.Value), &h); err != nil {
		return nil, fmt.Errorf("%w: %s is not a record head: %v", ErrCorrupt, name, err)
	}
	if h.Version != version || h.Generation < 1 || h.Chunks < 1 || h.Chunks > MaxChunks {
		return nil, fmt.Errorf("%w: %s names version %q, generation %d, %d chunk(s)", ErrCorrupt, name, h.Version, h.Generation, h.Chunks)
	}
	return &h, nil
}

func readChunks(ctx context.Context, api ReadAPI, pointer string, h *Head) ([]string, bool, error) {
	names := make([]string, h.Chunks)
	for i := range names {
		names[i] = ChunkName(pointer, h.Version, h.Generation, i)
	}
	values := map[string]string{}
	for batch := range slices.Chunk(names, 10) {
		out, err := api.GetParameters(ctx, &ssm.GetParametersInput{Names: batch})
		if err != nil {
			return nil, false, fmt.Errorf("read the record of %s: %w", h.Version, err)
		}
		if len(out.InvalidParameters) > 0 {
			return nil, true, nil
		}
		for _, p := range out.Parameters {
			values[aws.ToString(p.Name)] = aws.ToString(p.Value)
		}
	}
	chunks := make([]string, len(names))
	for i, n := range names {
		v, ok := values[n]
		if !ok {
			return nil, true, nil
		}
		chunks[i] = v
	}
	return chunks, false, nil
}

// prune deletes, under the status path, every parameter of version's
// record but its head and generation gen, and the records of versions
// older than version beyond the newest keep (the current one counted).
// Records of newer versions are another run's to judge.
func prune(ctx context.Context, api WriteAPI, pointer, version string, gen, keep int) ([]string, error) {
	base := Path(pointer) + "/"
	byVersion := map[string][]string{}
	var stale []string
	var token *string
	for pages := 0; ; pages++ {
		if pages > 1000 {
			return nil, errors.New("list records: more than 1,000 pages")
		}
		out, err := api.GetParametersByPath(ctx, &ssm.GetParametersByPathInput{
			Path: aws.String(Path(pointer)), Recursive: aws.Bool(true), NextToken: token, MaxResults: aws.Int32(10),
		})
		if err != nil {
			return nil, fmt.Errorf("list records: %w", err)
		}
		for _, p := range out.Parameters {
			name := aws.ToString(p.Name)
			rest, ok := strings.CutPrefix(name, base)
			if !ok {
				continue
			}
			v, sub, _ := strings.Cut(rest, "/")
			if !ValidVersion(v) {
				continue // not ours
			}
			byVersion[v] = append(byVersion[v], name)
			if v == version && sub != "" {
				g, _, _ := strings.Cut(sub, "/")
				if n, err := strconv.Atoi(g); err != nil || n != gen {
					stale = append(stale, name)
				}
			}
		}
		if aws.ToString(out.NextToken) == "" {
			break
		}
		token = out.NextToken
	}
	if err := deleteAll(ctx, api, stale); err != nil {
		return nil, fmt.Errorf("delete old generations of %s: %w", version, err)
	}
	var pruned []string
	if keep <= 0 {
		return nil, nil
	}
	var older []string
	for v := range byVersion {
		if v < version {
			older = append(older, v)
		}
	}
	slices.Sort(older)
	slices.Reverse(older)
	for i, v := range older {
		if i < keep-1 {
			continue
		}
		if err := deleteAll(ctx, api, byVersion[v]); err != nil {
			return pruned, fmt.Errorf("delete the record of %s: %w", v, err)
		}
		pruned = append(pruned, v)
	}
	slices.Sort(pruned)
	return pruned, nil
}

func deleteAll(ctx context.Context, api WriteAPI, names []string) error {
	slices.Sort(names)
	for batch := range slices.Chunk(names, 10) {
		if _, err := api.DeleteParameters(ctx, &ssm.DeleteParametersInput{Names: batch}); err != nil {
			return err
		}
	}
	return nil
}
