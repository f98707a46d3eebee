package rollout

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/google/go-cmp/cmp"
)

func TestWriteAndRead(t *testing.T) {
	ctx := context.Background()
	s, pointer := newStore(t), pointerName(t)
	v := versionAt(0)
	if _, _, err := Read(ctx, s, pointer, v); !errors.Is(err, ErrNoRecord) {
		t.Fatalf("before any run: %v, want ErrNoRecord", err)
	}
	u := update(v, 4, t0.Add(time.Minute))
	w, err := Write(ctx, s, pointer, u, 5)
	if err != nil {
		t.Fatal(err)
	}
	if w.Head != pointer+"/status/"+v || w.Generation != 1 || w.Chunks != 1 {
		t.Errorf("written %+v", w)
	}
	// The head comes last, after every chunk.
	var puts []string
	for _, o := range s.ops() {
		if name, ok := strings.CutPrefix(o, "PutParameter "); ok {
			puts = append(puts, name)
		}
	}
	if want := []string{ChunkName(pointer, v, 1, 0), w.Head}; !slices.Equal(puts, want) {
		t.Errorf("puts %v, want %v", puts, want)
	}
	r, h, err := Read(ctx, s, pointer, v)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Merge(nil, u), r); diff != "" {
		t.Errorf("read back (-want +got):\n%s", diff)
	}
	if h.Generation != 1 || h.Chunks != 1 || h.Version != v {
		t.Errorf("head %+v", h)
	}

	// The next run writes generation 2, and generation 1 goes.
	if w, err = Write(ctx, s, pointer, update(v, 4, t0.Add(time.Hour)), 5); err != nil || w.Generation != 2 {
		t.Fatalf("second write: %+v %v", w, err)
	}
	if got, want := s.names(t, pointer), []string{w.Head, ChunkName(pointer, v, 2, 0)}; !sameSet(got, want) {
		t.Errorf("parameters %v, want %v", got, want)
	}
	if r, _, _ = Read(ctx, s, pointer, v); len(r.Runs) != 2 {
		t.Errorf("runs %d", len(r.Runs))
	}
}

func sameSet(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}

// TestPrune: old versions' records go beyond keep; newer ones (a publish
// that raced this run) are left alone, and so are parameters that are not
// records.
func TestPrune(t *testing.T) {
	ctx := context.Background()
	s, pointer := newStore(t), pointerName(t)
	for i := range 7 {
		if _, err := Write(ctx, s, pointer, update(versionAt(i), 1, t0.Add(time.Duration(i)*time.Minute)), 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(Path(pointer) + "/README"), Value: aws.String("not a record"),
		Type: "String", Tier: "Standard", Overwrite: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	// A run of version 4 (the pointer moved on since) writes with keep 3.
	w, err := Write(ctx, s, pointer, update(versionAt(4), 1, t0.Add(time.Hour)), 3)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{versionAt(0), versionAt(1)}; !slices.Equal(w.Pruned, want) {
		t.Errorf("pruned %v, want %v", w.Pruned, want)
	}
	var versions []string
	for _, n := range s.names(t, pointer) {
		rest := strings.TrimPrefix(n, Path(pointer)+"/")
		v, _, _ := strings.Cut(rest, "/")
		if !slices.Contains(versions, v) {
			versions = append(versions, v)
		}
	}
	slices.Sort(versions)
	if want := []string{versionAt(2), versionAt(3), versionAt(4), versionAt(5), versionAt(6), "README"}; !slices.Equal(versions, want) {
		t.Errorf("left %v, want %v", versions, want)
	}
}

// TestReadRetriesAGenerationThatWent: a reader that read a head just
// before a run replaced the record finds its chunks gone, and reads the
// new head.
func TestReadRetriesAGenerationThatWent(t *testing.T) {
	ctx := context.Background()
	s, pointer := newStore(t), pointerName(t)
	v := versionAt(0)
	if _, err := Write(ctx, s, pointer, update(v, 2, t0), 5); err != nil {
		t.Fatal(err)
	}
	old, err := s.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(HeadName(pointer, v))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Write(ctx, s, pointer, update(v, 3, t0.Add(time.Minute)), 5); err != nil {
		t.Fatal(err)
	}
	stale := &staleHead{ReadAPI: s, value: aws.ToString(old.Parameter.Value)}
	r, h, err := Read(ctx, stale, pointer, v)
	if err != nil || h.Generation != 2 || len(r.Clusters) != 3 {
		t.Fatalf("read %+v %+v %v", h, r, err)
	}
	if stale.heads != 2 {
		t.Errorf("%d head reads, want 2", stale.heads)
	}
}

// staleHead answers the first read of a head with an old value.
type staleHead struct {
	ReadAPI
	value string
	heads int
}

func (s *staleHead) GetParameter(ctx context.Context, in *ssm.GetParameterInput, opt ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	s.heads++
	if s.heads == 1 {
		return &ssm.GetParameterOutput{Parameter: &types.Parameter{Name: in.Name, Value: aws.String(s.value)}}, nil
	}
	return s.ReadAPI.GetParameter(ctx, in, opt...)
}

// TestWriteFailures: a failed chunk write leaves the previous record as it
// was; a failed prune leaves the new record in place and says so.
func TestWriteFailures(t *testing.T) {
	ctx := context.Background()
	s, pointer := newStore(t), pointerName(t)
	v := versionAt(0)
	if _, err := Write(ctx, s, pointer, update(v, 2, t0), 5); err != nil {
		t.Fatal(err)
	}
	s.fail = func(op, name string) error {
		if op == "PutParameter" && strings.HasSuffix(name, "/0000") {
			return errors.New("ThrottlingException: Rate exceeded")
		}
		return nil
	}
	if _, err := Write(ctx, s, pointer, update(v, 3, t0.Add(time.Minute)), 5); err == nil || !strings.Contains(err.Error(), "Rate exceeded") {
		t.Fatalf("write with a failing chunk: %v", err)
	}
	if r, h, err := Read(ctx, s, pointer, v); err != nil || h.Generation != 1 || len(r.Clusters) != 2 {
		t.Fatalf("after the failed write: %+v %v", h, err)
	}
	s.fail = func(op, name string) error {
		if op == "DeleteParameters" {
			return errors.New("AccessDeniedException: not authorized to perform: ssm:DeleteParameters")
		}
		return nil
	}
	w, err := Write(ctx, s, pointer, update(v, 3, t0.Add(2*time.Minute)), 5)
	if err == nil || w == nil || !strings.Contains(err.Error(), "record written, but pruning failed") {
		t.Fatalf("write with a failing prune: %+v %v", w, err)
	}
	if r, h, err := Read(ctx, s, pointer, v); err != nil || h.Generation != 2 || len(r.Clusters) != 3 {
		t.Fatalf("after the failed prune: %+v %v", h, err)
	}
	s.fail = nil
	// The next write cleans up what the failed prune left.
	if _, err := Write(ctx, s, pointer, update(v, 3, t0.Add(3*time.Minute)), 5); err != nil {
		t.Fatal(err)
	}
	if got := s.names(t, pointer); len(got) != 2 {
		t.Errorf("parameters %v, want the head and one chunk", got)
	}
}

// TestCorruptRecordIsWrittenAnew: a damaged record does not stop the next
// run from writing its own.
func TestCorruptRecordIsWrittenAnew(t *testing.T) {
	ctx := context.Background()
	s, pointer := newStore(t), pointerName(t)
	v := versionAt(0)
	if _, err := Write(ctx, s, pointer, update(v, 2, t0), 5); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(ChunkName(pointer, v, 1, 0)), Value: aws.String("AAAA"),
		Type: "String", Tier: "Standard", Overwrite: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Read(ctx, s, pointer, v); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read of a changed chunk: %v", err)
	}
	if _, err := Write(ctx, s, pointer, update(v, 2, t0.Add(time.Minute)), 5); err != nil {
		t.Fatal(err)
	}
	r, _, err := Read(ctx, s, pointer, v)
	if err != nil || len(r.Runs) != 1 {
		t.Fatalf("after rewriting: %v %+v", err, r)
	}
}

// TestRecordFor200Clusters measures a realistic record for 200 clusters:
// every cluster applied, a new user created on all of them, 12 failed at
// various stages with their errors, one partial with failed accounts, and
// the removal limit tripped on one. It must fit a handful of Standard
// chunks without anything cut.
func TestRecordFor200Clusters(t *testing.T) {
	ctx := context.Background()
	s, pointer := newStore(t), pointerName(t)
	u := fleet200(versionAt(0))
	start := time.Now()
	w, err := Write(ctx, s, pointer, u, 5)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(Merge(nil, u))
	t.Logf("200 clusters: %d bytes of JSON, %d bytes of gzip, %d Standard chunk(s), written in %s (kumo, in process)", len(raw), w.Bytes, w.Chunks, elapsed)
	if w.Chunks > 6 || len(w.Cut) > 0 {
		t.Errorf("200 clusters take %d chunks, cut %v", w.Chunks, w.Cut)
	}
	r, _, err := Read(ctx, s, pointer, u.Version)
	if err != nil || len(r.Clusters) != 200 || len(r.Problems()) != 14 {
		t.Fatalf("read back: %v, %d clusters, %d problems", err, len(r.Clusters), len(r.Problems()))
	}
}

// fleet200 is the run TestRecordFor200Clusters measures.
func fleet200(version string) Update {
	at := t0.Add(time.Minute)
	u := update(version, 200, at)
	// Names, accounts and servers as varied as a real fleet's: gzip gets
	// no help from a pattern.
	envs := []string{"prod", "staging", "dev", "qa"}
	regions := []string{"eu-west-1", "eu-central-1", "us-east-1", "us-west-2", "ap-southeast-2"}
	u.Users[0].Clusters = nil
	for i := range u.Clusters {
		sum := sha256.Sum256([]byte(fmt.Sprint(i)))
		c := &u.Clusters[i]
		c.Name = fmt.Sprintf("%s-%x-%d", envs[i%4], sum[:3], i)
		c.Environment, c.Region = envs[i%4], regions[i%5]
		c.AccountID = fmt.Sprintf("%012d", uint64(sum[3])<<32|uint64(sum[4])<<24|uint64(sum[5])<<16|uint64(sum[6])<<8|uint64(sum[7]))
		c.Server = fmt.Sprintf("Aurora MySQL 3.0%d.%d (MySQL 8.0.%d)", i%9, i%3, 30+i%10)
		c.Changes, c.Statements, c.DurationMS = 1+int(sum[8])%9, 1+int(sum[8])%9, float64(sum[9])*3.7
		u.Accounts[i].Cluster = c.Name
		u.Users[0].Clusters = append(u.Users[0].Clusters, c.Name)
	}
	slices.Sort(u.Users[0].Clusters)
	stages := []string{"assume-role", "admin-secret", "connect", "tls", "reconcile", "account"}
	for i := range 12 {
		c := &u.Clusters[i*16]
		c.Status, c.Stage, c.Statements, c.Created = Failed, stages[i%len(stages)], 0, 0
		c.Error = fmt.Sprintf("cluster %s: assume arn:aws:iam::%012d:role/dbusers-management: operation error STS: AssumeRole, https response error StatusCode: 403, RequestID: %08x-1b2c-4d5e-8f90-a1b2c3d4e5f6, api error AccessDenied: User: arn:aws:sts::123456789012:assumed-role/dbusers-control-plane/dbusers-reconcile is not authorized to perform: sts:AssumeRole on resource", c.Name, 100000000000+i, i)
		u.Accounts = slices.DeleteFunc(u.Accounts, func(a Account) bool { return a.Cluster == c.Name })
	}
	p := &u.Clusters[5]
	p.Status, p.FailedAccountCount = Partial, 3
	for j := range 3 {
		p.FailedAccounts = append(p.FailedAccounts, FailedAccount{Account: fmt.Sprintf("acme_svc%d", j), User: fmt.Sprintf("svc%d", j),
			Summary: "grant write on orders to acme_svc", Error: "Error 1142 (42000): GRANT command denied to user 'dbusers_admin'@'10.0.3.7' for table `orders`.`items`"})
	}
	h := &u.Clusters[7]
	h.Held, h.LimitTripped = 12, "12 removals exceed the removal limit of 5 (count 5, fraction 0.1 of 40 managed accounts): nothing was dropped or locked"
	return u
}

// TestFitOversize: a record far over the limit (200 failed clusters with
// long errors, failed accounts and notes, and 10,000 accounts created)
// is cut to fit: every value within 4,096 bytes, at most MaxChunks, every
// cluster's outcome kept, and the cut said.
func TestFitOversize(t *testing.T) {
	ctx := context.Background()
	s, pointer := newStore(t), pointerName(t)
	u := update(versionAt(0), 200, t0)
	u.Accounts = nil
	for i := range u.Clusters {
		c := &u.Clusters[i]
		c.Status, c.Stage = Failed, "reconcile"
		c.Error = fmt.Sprintf("%d %s", i, strings.Repeat(fmt.Sprintf("unique text %x ", i*7919), 200))
		for j := range 20 {
			c.FailedAccounts = append(c.FailedAccounts, FailedAccount{Account: fmt.Sprintf("acme_u%d_%d", i, j), Summary: strings.Repeat("s", 300), Error: fmt.Sprintf("%x%s", i*j, strings.Repeat("e", 900))})
			c.Notes = append(c.Notes, fmt.Sprintf("note %d %d %s", i, j, strings.Repeat("n", 500)))
		}
	}
	for i := range 10000 {
		u.Accounts = append(u.Accounts, Account{User: fmt.Sprintf("user%05d", i), Account: fmt.Sprintf("acme_user%05d", i), Cluster: fmt.Sprintf("c%02d", i%200), Event: Created})
	}
	w, err := Write(ctx, s, pointer, u, 5)
	if err != nil {
		t.Fatal(err)
	}
	if w.Chunks > MaxChunks || len(w.Cut) == 0 {
		t.Errorf("written %d chunks, cut %v", w.Chunks, w.Cut)
	}
	t.Logf("oversize record: %d chunk(s), %d bytes of gzip; cut: %s", w.Chunks, w.Bytes, strings.Join(w.Cut, "; "))
	r, _, err := Read(ctx, s, pointer, u.Version)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Clusters) != 200 || len(r.Problems()) != 200 || r.AccountsLeftOut == 0 || len(r.Cut) == 0 {
		t.Errorf("read back %d clusters, %d problems, %d accounts left out, cut %v", len(r.Clusters), len(r.Problems()), r.AccountsLeftOut, r.Cut)
	}
	var text strings.Builder
	Text(&text, r, nil)
	if !strings.Contains(text.String(), "left out of the record to fit SSM") || !strings.Contains(text.String(), "more account event(s)") {
		t.Errorf("the text does not say what was cut:\n%.2000s", text.String())
	}
}

// TestFitKeepsFailures: even with thousands of clusters, those that
// failed stay; those that ended well are counted.
func TestFitKeepsFailures(t *testing.T) {
	u := update(versionAt(0), 8000, t0)
	u.Accounts = nil
	for i := range u.Clusters {
		sum := sha256.Sum256([]byte{byte(i), byte(i >> 8)})
		u.Clusters[i].Name = fmt.Sprintf("cluster-%05d-%x", i, sum[:12])
		u.Clusters[i].Server = fmt.Sprintf("MySQL 8.0.%x", sum[12:20])
	}
	u.Clusters[4321].Status, u.Clusters[4321].Stage, u.Clusters[4321].Error = Failed, "connect", "dial tcp 10.0.0.1:3306: i/o timeout"
	r := Merge(nil, u)
	chunks, _, err := Fit(r)
	if err != nil {
		t.Fatal(err)
	}
	if len(chunks) > MaxChunks || r.ClustersLeftOut == 0 || len(r.Problems()) != 1 {
		t.Fatalf("%d chunks, %d clusters left out, problems %+v", len(chunks), r.ClustersLeftOut, r.Problems())
	}
	if r.Outcome() != NotOK || !strings.Contains(r.Headline(), "cluster-04321") {
		t.Errorf("headline %q", r.Headline())
	}
}

func TestDecodeRefuses(t *testing.T) {
	r := Merge(nil, update(versionAt(0), 2, t0))
	chunks, gz, err := Encode(r, 64)
	if err != nil {
		t.Fatal(err)
	}
	h := Head{Format: 1, Version: r.Version, Generation: 1, Chunks: len(chunks), Bytes: gz, DataSHA256: dataHash(chunks)}
	if _, err := Decode(h, chunks); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		h      Head
		chunks []string
	}{
		"newer format":    {Head{Format: 2, Version: h.Version, Chunks: h.Chunks, DataSHA256: h.DataSHA256}, chunks},
		"missing chunk":   {h, chunks[1:]},
		"changed chunk":   {h, append([]string{strings.Repeat("A", len(chunks[0]))}, chunks[1:]...)},
		"other version":   {Head{Format: 1, Version: versionAt(1), Chunks: h.Chunks, DataSHA256: h.DataSHA256}, chunks},
		"not base64":      {Head{Format: 1, Version: h.Version, Chunks: 1, DataSHA256: dataHash([]string{"!!"})}, []string{"!!"}},
		"not gzip":        {Head{Format: 1, Version: h.Version, Chunks: 1, DataSHA256: dataHash([]string{"AAAA"})}, []string{"AAAA"}},
		"empty chunk set": {Head{Format: 1, Version: h.Version, Chunks: 0, DataSHA256: dataHash(nil)}, nil},
	} {
		if _, err := Decode(tc.h, tc.chunks); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
}

// FuzzDecode: no input makes Decode panic or accept what does not hash.
//
// CI fuzz budget: 20000 execs
func FuzzDecode(f *testing.F) {
	r := Merge(nil, update(versionAt(0), 2, t0))
	chunks, _, _ := Encode(r, 256)
	f.Add(strings.Join(chunks, "\n"), 1)
	f.Add("", 0)
	f.Add("H4sIAAAAAAAA/wMAAAAAAAAAAAA=", 1)
	f.Fuzz(func(t *testing.T, text string, format int) {
		parts := strings.Split(text, "\n")
		h := Head{Format: format, Version: versionAt(0), Generation: 1, Chunks: len(parts), DataSHA256: dataHash(parts)}
		got, err := Decode(h, parts)
		if err == nil && (got.Version != h.Version || got.Format > FormatVersion) {
			t.Fatalf("accepted a record of %q format %d", got.Version, got.Format)
		}
	})
}

// BenchmarkWrite200Clusters writes and reads back the 200-cluster record
// of TestRecordFor200Clusters through the emulator, as a run and then
// `dbusers rollout` do: the previous record read, merged, fitted, written
// (chunks, head), pruned, and read again.
func BenchmarkWrite200Clusters(b *testing.B) {
	ctx := context.Background()
	s, pointer := newStore(b), pointerName(b)
	u := fleet200(versionAt(0))
	var w *Written
	for b.Loop() {
		var err error
		if w, err = Write(ctx, s, pointer, u, 5); err != nil {
			b.Fatal(err)
		}
		if _, _, err := Read(ctx, s, pointer, u.Version); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(w.Bytes), "gzip-bytes")
	b.ReportMetric(float64(w.Chunks), "chunks")
}
