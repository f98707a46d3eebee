package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dbusers/dbusers/bot/internal/desired"
	"github.com/dbusers/dbusers/bot/internal/diag"
	"github.com/dbusers/dbusers/bot/internal/jsonpos"
	"github.com/dbusers/dbusers/bot/internal/quote"
)

// MaxFileSize bounds one declaration file. The largest real declaration is a
// few kilobytes; anything near this is a mistake or an attack, and reading it
// whole must not cost the workflow its memory.
const MaxFileSize = 1 << 20

// Where the three kinds of declaration live in a repository.
const (
	SettingsFile = "dbusers.json"
	ClustersDir  = "clusters"
	UsersDir     = "users"
)

// Source is one declaration file as read: its path and the index that maps
// its values to lines and columns. Validation uses it to place messages.
type Source struct {
	Path  string
	Index *jsonpos.Index
}

// Option changes how Load reads.
type Option func(*options)

type options struct {
	skipSchema bool
	resolve    bool
}

// WithState also builds the desired state (Loaded.Desired) in the same
// pass that checks the access entries, for callers that plan: without it
// Load only checks, which is what validation of a large repository wants.
func WithState() Option {
	return func(o *options) { o.resolve = true }
}

// SkipSchema leaves out the JSON Schema check, which is two thirds of the
// load time of a large repository. It is for declarations that already
// passed it: the base revision of a pull request, which was validated when
// it merged. Syntax, strict decoding (unknown fields, types) and every
// semantic rule still apply.
func SkipSchema() Option {
	return func(o *options) { o.skipSchema = true }
}

// Loaded is the result of reading a repository: the declarations that could
// be decoded, where each came from, and every problem found on the way.
type Loaded struct {
	Config Config
	// Desired is the state the declarations resolve to on Load's day, set
	// with WithState. Use it only when the diagnostics hold no error: it
	// then means exactly what the declarations say.
	Desired  *desired.State
	Settings *Source
	Clusters map[string]*Source // by cluster name
	Users    map[string]*Source // by user name
}

// Load reads every declaration under fsys (the repository root), checks each
// against its JSON Schema and then the whole against the semantic rules,
// judging expiry dates against today. It
// returns every problem found, not just the first; an I/O error (as opposed
// to a problem in a file) is returned as err.
//
// Declarations are read only from regular files. A symbolic link where a
// declaration belongs (dbusers.json, clusters/, users/ or a .json entry in
// them) is reported and never followed: a pull request shows a reviewer the
// link, not what it points at, so following it would validate, plan and
// publish content that nobody reviewed. A directory or any other entry with
// a declaration's name is reported too. Links are told apart by the type
// bits of directory entries and by fs.Lstat, so fsys should implement
// fs.ReadLinkFS (os.DirFS, os.Root.FS, fstest.MapFS and gitfs do). For a
// working tree use LoadDir, which also confines every read to the root.
func Load(fsys fs.FS, today time.Time, opts ...Option) (*Loaded, diag.List, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	l := &Loaded{Clusters: map[string]*Source{}, Users: map[string]*Source{}}
	l.Config.Files = map[string]string{}
	var diags diag.List

	settingsSrc, d, err := readSettings(fsys, &l.Config.Settings, o)
	if err != nil {
		return nil, nil, err
	}
	diags = append(diags, d...)
	l.Settings = settingsSrc

	clusterPaths, d, err := listJSON(fsys, ClustersDir)
	if err != nil {
		return nil, nil, err
	}
	diags = append(diags, d...)
	userPaths, d, err := listJSON(fsys, UsersDir)
	if err != nil {
		return nil, nil, err
	}
	diags = append(diags, d...)

	clusters := make([]Cluster, len(clusterPaths))
	clusterSrcs, d, err := readAll(fsys, clusterPaths, kindCluster, func(i int) any { return &clusters[i] }, o)
	if err != nil {
		return nil, nil, err
	}
	diags = append(diags, d...)
	users := make([]User, len(userPaths))
	userSrcs, d, err := readAll(fsys, userPaths, kindUser, func(i int) any { return &users[i] }, o)
	if err != nil {
		return nil, nil, err
	}
	diags = append(diags, d...)

	// Only declarations that decoded cleanly take part in the semantic
	// checks; a file with schema errors has already said what is wrong.
	// Names must be unique: a second declaration of a name is reported and
	// left out, so that everything downstream sees one declaration per name.
	for i, keep := range uniqueNames(&diags, "cluster", clusterSrcs, func(i int) string { return clusters[i].Name }) {
		if keep {
			l.Config.Clusters = append(l.Config.Clusters, clusters[i])
			l.Clusters[clusters[i].Name] = clusterSrcs[i]
		}
	}
	for i, keep := range uniqueNames(&diags, "user", userSrcs, func(i int) string { return users[i].Name }) {
		if keep {
			l.Config.Users = append(l.Config.Users, users[i])
			l.Users[users[i].Name] = userSrcs[i]
		}
	}
	slices.SortFunc(l.Config.Clusters, func(a, b Cluster) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(l.Config.Users, func(a, b User) int { return strings.Compare(a.Name, b.Name) })
	for name, src := range l.Clusters {
		l.Config.Files["clusters/"+name] = src.Path
	}
	for name, src := range l.Users {
		l.Config.Files["users/"+name] = src.Path
	}

	diags = append(diags, l.check(today, o.resolve)...)
	diags.Sort()
	return l, diags, nil
}

// uniqueNames checks that each decoded declaration (a non-nil source) has the
// name of its file and that no name is declared twice. It reports which
// declarations to keep: where a name is declared twice, the file named after
// it wins (else the first by path) and every other is reported and dropped.
func uniqueNames(diags *diag.List, what string, srcs []*Source, name func(int) string) []bool {
	keep := make([]bool, len(srcs))
	declared := map[string]string{} // name -> path that declares it
	// First the files whose name matches, which cannot collide with each
	// other, then the rest in path order.
	for _, matching := range []bool{true, false} {
		for i, src := range srcs {
			if src == nil {
				continue
			}
			n := name(i)
			file := strings.TrimSuffix(path.Base(src.Path), ".json")
			if (n == file) != matching {
				continue
			}
			if !matching {
				*diags = append(*diags, src.at("/name", diag.Error, "name %s must equal the file name %s", quote.ASCII(n), quote.ASCII(file)))
			}
			if prev, dup := declared[n]; dup {
				*diags = append(*diags, src.at("/name", diag.Error, "%s %s is also declared in %s", what, n, prev))
				continue
			}
			declared[n] = src.Path
			keep[i] = true
		}
	}
	return keep
}

// LoadDir loads the working tree at dir, as Load does, through an os.Root:
// Load refuses the links it sees when listing, and the root makes sure that
// no read leaves dir even if a link appears between listing and reading.
func LoadDir(dir string, today time.Time, opts ...Option) (*Loaded, diag.List, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("open repository: %w", err)
	}
	defer root.Close()
	return Load(root.FS(), today, opts...)
}

// readSettings reads dbusers.json, which every repository must have, into v.
func readSettings(fsys fs.FS, v *Settings, o options) (*Source, diag.List, error) {
	fi, err := fs.Lstat(fsys, SettingsFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, diag.List{{File: SettingsFile, Severity: diag.Error,
			Message: "dbusers.json is missing: every repository needs fleet settings (prefix, removal limit, SSM parameter)"}}, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", SettingsFile, err)
	}
	if d, bad := refuse(SettingsFile, fi.Mode(), false); bad {
		return nil, diag.List{d}, nil
	}
	return readDecl(fsys, SettingsFile, kindSettings, v, o)
}

// listJSON returns the sorted paths of the regular .json files directly in
// dir, and a diagnostic for every other entry with a .json name and for a
// dir that is not a directory. A missing directory is an empty one.
func listJSON(fsys fs.FS, dir string) ([]string, diag.List, error) {
	fi, err := fs.Lstat(fsys, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("list %s: %w", dir, err)
	}
	if d, bad := refuse(dir, fi.Mode(), true); bad {
		return nil, diag.List{d}, nil
	}
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var paths []string
	var diags diag.List
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue // a README, or a directory of notes: not a declaration
		}
		p := path.Join(dir, e.Name())
		// Type comes from the directory listing and describes the entry
		// itself: a link is ModeSymlink here whatever it points at.
		if d, bad := refuse(p, e.Type(), false); bad {
			diags = append(diags, d)
			continue
		}
		paths = append(paths, p)
	}
	return paths, diags, nil
}

// refuse reports whether an entry of type mode at p is other than what a
// declaration needs there (a regular file, or with dir a directory), and
// if so the diagnostic that says what it is and that it was not read.
func refuse(p string, mode fs.FileMode, dir bool) (diag.Diagnostic, bool) {
	t := mode.Type()
	want := "a regular file"
	if dir {
		if t == fs.ModeDir {
			return diag.Diagnostic{}, false
		}
		want = "a directory"
	} else if t == 0 {
		return diag.Diagnostic{}, false
	}
	name := path.Base(p)
	var msg string
	if t&fs.ModeSymlink != 0 {
		fix := "put the file itself here"
		if dir {
			fix = "make it a directory"
		}
		msg = fmt.Sprintf("%s is a symbolic link and was not followed: declarations are read only from "+
			"regular files in the repository, whose content a reviewer sees in the pull request; %s", name, fix)
	} else {
		msg = fmt.Sprintf("%s is %s, not %s, so it was not read", name, describeType(t), want)
	}
	return diag.Diagnostic{File: p, Severity: diag.Error, Message: msg}, true
}

// describeType names a file type for a message.
func describeType(t fs.FileMode) string {
	switch {
	case t == 0:
		return "a regular file"
	case t&fs.ModeDir != 0:
		return "a directory"
	case t&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case t&fs.ModeSocket != 0:
		return "a socket"
	case t&fs.ModeDevice != 0:
		return "a device"
	}
	// Irregular: what os cannot name, and what gitfs makes of a submodule.
	return "a special entry (a git submodule, say)"
}

// readAll reads files concurrently (schema validation dominates load time)
// and returns their sources in the order of paths; a nil source marks a file
// that did not decode.
func readAll(fsys fs.FS, paths []string, k kind, target func(int) any, o options) ([]*Source, diag.List, error) {
	srcs := make([]*Source, len(paths))
	diagsPer := make([]diag.List, len(paths))
	errs := make([]error, len(paths))
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range next {
				srcs[i], diagsPer[i], errs[i] = readDecl(fsys, paths[i], k, target(i), o)
			}
		})
	}
	for i := range paths {
		next <- i
	}
	close(next)
	wg.Wait()
	var all diag.List
	for i := range paths {
		if errs[i] != nil {
			return nil, nil, errs[i]
		}
		all = append(all, diagsPer[i]...)
	}
	return srcs, all, nil
}

// readDecl reads one file, checks its syntax and schema, and decodes it into
// v. It returns a nil source when the file has problems that stop decoding.
func readDecl(fsys fs.FS, p string, k kind, v any, o options) (*Source, diag.List, error) {
	f, err := fsys.Open(p)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", p, err)
	}
	defer f.Close()
	// The listing said a regular file; what was opened must be one too (a
	// file replaced since, or an fs.FS without type bits in its listing).
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", p, err)
	}
	if d, bad := refuse(p, fi.Mode(), false); bad {
		return nil, diag.List{d}, nil
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, MaxFileSize+1)); err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", p, err)
	}
	if buf.Len() > MaxFileSize {
		return nil, diag.List{{File: p, Severity: diag.Error,
			Message: fmt.Sprintf("file is larger than %d bytes; a declaration is a few kilobytes", MaxFileSize)}}, nil
	}
	src, diags := decode(p, buf.Bytes(), k, v, !o.skipSchema)
	return src, diags, nil
}

// Decode checks one declaration's bytes (syntax, then schema) and decodes
// them into v, which must point to the Go type of kind k. The loader, the
// bundle reader and the fuzz tests share it.
func Decode(p string, data []byte, k kind, v any) (*Source, diag.List) {
	return decode(p, data, k, v, true)
}

func decode(p string, data []byte, k kind, v any, schema bool) (*Source, diag.List) {
	idx, err := jsonpos.Parse(data)
	if err != nil {
		var se *jsonpos.SyntaxError
		if errors.As(err, &se) {
			return nil, diag.List{{File: p, Line: se.Line, Col: se.Col, Severity: diag.Error,
				Message: "invalid JSON: " + se.Msg}}
		}
		return nil, diag.List{{File: p, Severity: diag.Error, Message: "invalid JSON: " + err.Error()}}
	}
	src := &Source{Path: p, Index: idx}
	// Without the schema (trusted input), strict decoding below still
	// refuses unknown fields and wrong types, and the semantic checks run.
	if schema {
		if diags := validateSchema(src, k, data); len(diags) > 0 {
			return nil, diags
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		// The schema lets through what Go cannot hold: 3306.0 is an
		// integer to JSON Schema but not to an int field.
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && strings.HasPrefix(te.Value, "number ") {
			ptr := src.Index.Before(int(te.Offset))
			num := strings.TrimPrefix(te.Value, "number ")
			if strings.ContainsAny(num, ".eE") {
				return nil, diag.List{src.at(ptr, diag.Error, "%s: write %s as a whole number, without a fraction or exponent", displayField(ptr), num)}
			}
			return nil, diag.List{src.at(ptr, diag.Error, "%s: %s is out of range", displayField(ptr), num)}
		}
		return nil, diag.List{src.at("", diag.Error, "cannot decode: %v", err)}
	}
	return src, nil
}

// at builds a diagnostic at the value that pointer names.
func (s *Source) at(pointer string, sev diag.Severity, format string, args ...any) diag.Diagnostic {
	pos := s.Index.Value(pointer)
	return diag.Diagnostic{File: s.Path, Line: pos.Line, Col: pos.Col, Severity: sev, Message: fmt.Sprintf(format, args...)}
}
