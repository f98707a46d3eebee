package ssmbundle

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// zeros reads as an endless run of one byte.
type zeros byte

func (z zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(z)
	}
	return len(p), nil
}

// bomb returns the base64 of a gzip stream that expands to more than
// MaxBundleSize bytes: about 65 KB that would cost a reader 64 MB.
func bomb(tb testing.TB) string {
	tb.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := io.CopyN(zw, zeros(' '), MaxBundleSize+1024); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

// TestReadRefusesDamage publishes a version, damages it as a person, a
// bug or an attacker might, and checks that Read refuses it with a message
// that says which version (and chunk) to look at.
func TestReadRefusesDamage(t *testing.T) {
	ctx := context.Background()
	content := fleet(1000, 10)
	other := fleet(1001, 10)

	// setPointer rewrites the pointer after change edits it, with the
	// hash of the chunks now there, as someone who can write the
	// parameters would: what is left to catch the damage is the content
	// hash and the decoding (the signature is the subject of sign_test.go).
	setPointer := func(t *testing.T, api API, pointer string, change func(*Pointer)) {
		t.Helper()
		var p Pointer
		if err := json.Unmarshal([]byte(get(t, api, pointer)), &p); err != nil {
			t.Fatal(err)
		}
		change(&p)
		if p.Chunks <= MaxChunks {
			var chunks []string
			for i := range p.Chunks {
				out, err := api.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(ChunkName(pointer, p.Version, i))})
				if err != nil {
					break
				}
				chunks = append(chunks, aws.ToString(out.Parameter.Value))
			}
			p.DataSHA256 = DataHash(chunks)
		}
		data, _ := json.Marshal(p)
		put(t, api, pointer, string(data))
	}
	reseal := func(t *testing.T, api API, pointer string) { setPointer(t, api, pointer, func(*Pointer) {}) }

	tests := []struct {
		name   string
		damage func(t *testing.T, api API, pointer string, res *Result)
		is     error    // the sentinel the error must wrap
		want   []string // substrings of the error; "$V" is the version
	}{
		{
			name: "chunk replaced by other base64",
			damage: func(t *testing.T, api API, pointer string, res *Result) {
				name := ChunkName(pointer, res.Version, 1)
				put(t, api, name, base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("dbusers!"), len(get(t, api, name))*3/4/8)))
			},
			is: ErrCorrupt, want: []string{"version $V"},
		},
		{
			name: "one character flipped",
			damage: func(t *testing.T, api API, pointer string, res *Result) {
				name := ChunkName(pointer, res.Version, 1)
				v := []byte(get(t, api, name))
				if v[100] == 'A' {
					v[100] = 'B'
				} else {
					v[100] = 'A'
				}
				put(t, api, name, string(v))
			},
			is: ErrCorrupt, want: []string{"version $V"},
		},
		{
			name: "chunk changed, pointer left alone",
			damage: func(t *testing.T, api API, pointer string, res *Result) {
				name := ChunkName(pointer, res.Version, 2)
				v := get(t, api, name)
				put(t, api, name, v[:10]+"*"+v[11:])
			},
			is: ErrCorrupt, want: []string{"version $V: the chunks do not hash to the pointer's data_sha256"},
		},
		{
			name: "chunk that is not base64",
			damage: func(t *testing.T, api API, pointer string, res *Result) {
				name := ChunkName(pointer, res.Version, 2)
				v := get(t, api, name)
				put(t, api, name, v[:10]+"*"+v[11:])
				reseal(t, api, pointer)
			},
			is: ErrCorrupt, want: []string{"version $V chunk 2: base64"},
		},
		{
			name: "missing chunk",
			damage: func(t *testing.T, api API, pointer string, res *Result) {
				deleteParam(t, api, ChunkName(pointer, res.Version, 1))
			},
			is: ErrCorrupt, want: []string{"version $V is missing chunk", "/v/$V/0001"},
		},
		{
			name: "pointer with the wrong hash",
			damage: func(t *testing.T, api API, pointer string, res *Result) {
				setPointer(t, api, pointer, func(p *Pointer) { p.SHA256 = strings.Repeat("0", 64) })
			},
			is: ErrCorrupt, want: []string{"version $V: content hash ", " does not match the pointer's 0000"},
		},
		{
			name: "truncated set",
			damage: func(t *testing.T, api API, pointer string, res *Result) {
				setPointer(t, api, pointer, func(p *Pointer) { p.Chunks-- })
			},
			is: ErrCorrupt, want: []string{"version $V: gzip"},
		},
		{
			name: "pointer names one chunk too many",
			damage: func(t *testing.T, api API, pointer string, res *Result) {
				setPointer(t, api, pointer, func(p *Pointer) { p.Chunks++ })
			},
			is: ErrCorrupt, want: []string{"version $V is missing chunk"},
		},
		{
			name: "chunks of another content",
			damage: func(t *testing.T, api API, pointer string, res *Result) {
				// Another publish's chunks under this version's name: the
				// hashes and the version inside disagree.
				sha, _ := Hash(other)
				chunks, _, err := Encode(&Bundle{Meta: Meta{Format: 1, Version: "other", SHA256: sha}, Content: other}, StandardLimit)
				if err != nil {
					t.Fatal(err)
				}
				for i, c := range chunks {
					put(t, api, ChunkName(pointer, res.Version, i), c)
				}
				setPointer(t, api, pointer, func(p *Pointer) { p.Chunks = len(chunks) })
			},
			is: ErrCorrupt, want: []string{"version $V: content hash"},
		},
		{
			name: "chunks that name another version",
			damage: func(t *testing.T, api API, pointer string, res *Result) {
				b := &Bundle{Meta: Meta{Format: 1, Version: "20200101T000000Z-aaaaaaaaaaaa", SHA256: res.SHA256}, Content: content}
				chunks, _, _ := Encode(b, StandardLimit)
				for i, c := range chunks {
					put(t, api, ChunkName(pointer, res.Version, i), c)
				}
				setPointer(t, api, pointer, func(p *Pointer) { p.Chunks = len(chunks) })
			},
			is: ErrCorrupt, want: []string{"chunks hold version 20200101T000000Z-aaaaaaaaaaaa, the pointer names $V"},
		},
		{
			name: "pointer with a newer format",
			damage: func(t *testing.T, api API, pointer string, res *Result) {
				setPointer(t, api, pointer, func(p *Pointer) { p.Format = FormatVersion + 1 })
			},
			is: ErrNewerFormat, want: []string{"version $V has format 2, this reader knows 1: deploy the new Lambda first"},
		},
		{
			name: "pointer with no format",
			damage: func(t *testing.T, api API, pointer string, res *Result) {
				setPointer(t, api, pointer, func(p *Pointer) { p.Format = 0 })
			},
			is: ErrCorrupt, want: []string{"version $V: pointer format 0"},
		},
		{
			name: "pointer naming absurdly many chunks",
			damage: func(t *testing.T, api API, pointer string, res *Result) {
				setPointer(t, api, pointer, func(p *Pointer) { p.Chunks = 1 << 40 })
			},
			is: ErrCorrupt, want: []string{"names 1099511627776 chunks, over the limit of 2000"},
		},
		{
			name: "zip bomb",
			damage: func(t *testing.T, api API, pointer string, res *Result) {
				text := bomb(t)
				n := 0
				for ; len(text) > 0; n++ {
					k := min(len(text), AdvancedLimit)
					put(t, api, ChunkName(pointer, res.Version, n), text[:k])
					text = text[k:]
				}
				setPointer(t, api, pointer, func(p *Pointer) { p.Chunks = n })
			},
			is: ErrCorrupt, want: []string{"version $V: larger than 67108864 bytes uncompressed"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := kumoClient(t)
			pointer := pointerName(t)
			res, err := Publish(ctx, api, Target{Pointer: pointer, Tier: "Standard", Keep: 3}, content, origin(0), false)
			if err != nil {
				t.Fatal(err)
			}
			if res.Chunks < 3 {
				t.Fatalf("only %d chunk(s): the damage needs three", res.Chunks)
			}
			tt.damage(t, api, pointer, res)
			b, _, err := Read(ctx, api, pointer, unverified)
			if err == nil {
				t.Fatalf("Read accepted the damaged bundle (version %s)", b.Meta.Version)
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("error does not wrap %v: %v", tt.is, err)
			}
			if tt.is == ErrNewerFormat && errors.Is(err, ErrCorrupt) {
				t.Errorf("a newer format is not corruption: %v", err)
			}
			for _, w := range tt.want {
				if w = strings.ReplaceAll(w, "$V", res.Version); !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestReadNothingPublished(t *testing.T) {
	ctx := context.Background()
	api := kumoClient(t)
	pointer := pointerName(t)
	if _, _, err := Read(ctx, api, pointer, unverified); !errors.Is(err, ErrNoPointer) || !strings.Contains(err.Error(), pointer) {
		t.Errorf("Read of a missing pointer = %v, want ErrNoPointer naming it", err)
	}
	for value, want := range map[string]string{
		"plain text":                   "is not a dbusers pointer",
		`{"version": "v"}`:             "is incomplete",
		`{"version": "", "chunks": 3}`: "is incomplete",
	} {
		put(t, api, pointer, value)
		if _, _, err := Read(ctx, api, pointer, unverified); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Read of pointer %q = %v, want %q", value, err, want)
		}
	}
}
