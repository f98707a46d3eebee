package deploy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"
)

// This file holds the repository's GitHub Actions workflows to two rules
// that actionlint does not enforce, because they are what stands between
// the publish role and code nobody reviewed, and between a failed publish
// and a green run:
//
//   - every action is pinned to a full commit SHA, with its release tag in
//     a comment for the reader (and for Dependabot): a tag such as v4 can
//     be moved to other code by whoever controls the action's repository,
//     and the publish job holds an OIDC token that becomes AWS credentials;
//   - a run script with a pipeline runs under a shell with pipefail. A step
//     without shell: runs `bash -e {0}`, which reports only the last
//     command of a pipeline, so `dbusers publish | tee ...` passes when
//     publish fails. `shell: bash` means `bash --noprofile --norc -eo
//     pipefail {0}`.
//
// The workflows live in .github/workflows, and these tests read them from
// there; the deploy package is where the repository's other deployment
// artifacts are held to the code's expectations.

// workflowGlobs find the workflow files, from this package's directory.
var workflowGlobs = []string{"../../.github/workflows/*.yml", "../../.github/workflows/*.yaml"}

var (
	// fullSHA is a commit SHA as GitHub shows it and Dependabot writes it.
	fullSHA = regexp.MustCompile(`^[0-9a-f]{40}$`)
	// dockerDigest is a docker:// action pinned to an image digest.
	dockerDigest = regexp.MustCompile(`^docker://[^@\s]+@sha256:[0-9a-f]{64}$`)
	// tagComment is the "# v4.2.2" after a pinned SHA.
	tagComment = regexp.MustCompile(`^#\s*\S`)
	// pipefailOption finds -o pipefail in a custom shell, alone or after
	// other single-letter options (-eo pipefail, -euo pipefail).
	pipefailOption = regexp.MustCompile(`(^|\s)-[A-Za-z]*o\s+pipefail(\s|$)`)
)

// githubDefaultShell is what GitHub runs a step with when neither the step
// nor a defaults: block names a shell (on Linux and macOS runners, which
// are all this repository uses; Windows would run pwsh).
const githubDefaultShell = "bash -e {0}"

// problem is one broken rule, at a line of a workflow file.
type problem struct {
	line int
	msg  string
}

func (p problem) String() string { return fmt.Sprintf("line %d: %s", p.line, p.msg) }

// checkWorkflow returns every problem of one workflow file, ordered by
// line. An error means the file could not be read as a workflow at all.
func checkWorkflow(data []byte) ([]problem, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, errors.New("not a single YAML document")
	}
	top, err := mapping(doc.Content[0])
	if err != nil {
		return nil, err
	}
	workflowShell, err := defaultShell(top, "workflow defaults")
	if err != nil {
		return nil, err
	}
	jobs, err := mapping(top["jobs"])
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	var problems []problem
	for id, node := range jobs {
		job, err := mapping(node)
		if err != nil {
			return nil, fmt.Errorf("job %s: %w", id, err)
		}
		// A job that calls a reusable workflow runs that workflow's code.
		if u := job["uses"]; u != nil {
			problems = append(problems, checkUses(u)...)
		}
		jobShell, err := defaultShell(job, "job defaults")
		if err != nil {
			return nil, fmt.Errorf("job %s: %w", id, err)
		}
		if jobShell.value == "" {
			jobShell = workflowShell
		}
		steps, err := sequence(job["steps"])
		if err != nil {
			return nil, fmt.Errorf("job %s: steps: %w", id, err)
		}
		for i, node := range steps {
			step, err := mapping(node)
			if err != nil {
				return nil, fmt.Errorf("job %s: step %d: %w", id, i+1, err)
			}
			if u := step["uses"]; u != nil {
				problems = append(problems, checkUses(u)...)
			}
			run := step["run"]
			if run == nil {
				continue
			}
			if run.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: run is not a string", run.Line)
			}
			sh := jobShell
			if s := step["shell"]; s != nil {
				if s.Kind != yaml.ScalarNode {
					return nil, fmt.Errorf("line %d: shell is not a string", s.Line)
				}
				sh = shell{value: strings.TrimSpace(s.Value), from: "step shell"}
			}
			if hasPipe(run.Value) && !pipefail(sh.value) {
				problems = append(problems, problem{run.Line, fmt.Sprintf(
					"job %s, step %s: run has a pipe (|), but its shell, %s, has no pipefail, so the step passes when a command before the last | fails; set `shell: bash` (or a defaults: run: shell: bash)",
					id, stepName(step, i), sh)})
			}
		}
	}
	slices.SortFunc(problems, func(a, b problem) int {
		if a.line != b.line {
			return a.line - b.line
		}
		return strings.Compare(a.msg, b.msg)
	})
	return problems, nil
}

// checkUses checks one uses: value; see the file comment for why.
func checkUses(n *yaml.Node) []problem {
	ref := n.Value
	switch {
	case n.Kind != yaml.ScalarNode:
		return []problem{{n.Line, "uses is not a string"}}
	case strings.HasPrefix(ref, "./"):
		// A local action or reusable workflow is this repository's code,
		// reviewed with the change that uses it.
		return nil
	case strings.HasPrefix(ref, "docker://"):
		if !dockerDigest.MatchString(ref) {
			return []problem{{n.Line, fmt.Sprintf("uses %q: pin the image by digest (docker://<image>@sha256:<64 hex>); a tag can be pushed again with other content", ref)}}
		}
		return nil
	}
	at := strings.LastIndex(ref, "@")
	if at < 0 || !fullSHA.MatchString(ref[at+1:]) {
		action := ref
		if at >= 0 {
			action = ref[:at]
		}
		return []problem{{n.Line, fmt.Sprintf("uses %q: pin it to a full 40-hex commit SHA with its tag in a comment (uses: %s@<sha> # <tag>); a tag or branch can be moved to other code", ref, action)}}
	}
	if !tagComment.MatchString(n.LineComment) {
		return []problem{{n.Line, fmt.Sprintf("uses %q: no \"# <tag>\" comment after the SHA says which release it is", ref)}}
	}
	return nil
}

// shell is a step's effective shell: value is what shell: says ("" for
// GitHub's default), from says where it was set.
type shell struct {
	value, from string
}

func (s shell) String() string {
	switch s.value {
	case "":
		return githubDefaultShell + " (GitHub's default for a step with no shell)"
	case "sh":
		return "sh -e {0} (shell: sh, from the " + s.from + ")"
	}
	return fmt.Sprintf("%q (from the %s)", s.value, s.from)
}

// defaultShell reads defaults.run.shell of a workflow or job mapping;
// its value is "" when there is none.
func defaultShell(m map[string]*yaml.Node, from string) (shell, error) {
	defaults, err := optionalMapping(m["defaults"])
	if err != nil {
		return shell{}, fmt.Errorf("defaults: %w", err)
	}
	run, err := optionalMapping(defaults["run"])
	if err != nil {
		return shell{}, fmt.Errorf("defaults.run: %w", err)
	}
	s := run["shell"]
	if s == nil {
		return shell{}, nil
	}
	if s.Kind != yaml.ScalarNode {
		return shell{}, fmt.Errorf("line %d: defaults.run.shell is not a string", s.Line)
	}
	return shell{value: strings.TrimSpace(s.Value), from: from}, nil
}

// pipefail reports whether a step run with shell: value (after defaults;
// "" for none) fails when any command of a pipeline fails.
func pipefail(value string) bool {
	switch value {
	case "bash":
		return true // bash --noprofile --norc -eo pipefail {0}
	case "", "sh":
		// bash -e {0}, sh -e {0}: dash, Ubuntu's sh, has no pipefail.
		return false
	case "pwsh", "powershell", "python", "cmd":
		// Not a POSIX shell: this check cannot tell what a | does there,
		// and refuses rather than guesses.
		return false
	}
	return pipefailOption.MatchString(value)
}

// hasPipe reports whether script has a pipeline: a | that is not half of
// ||. It is a heuristic, not a shell parser, and errs towards finding a
// pipe, since a false one costs only a pipefail worth having anyway. It
// skips what is quoted ('...', "...", \|), comments (# at the start of a
// word), the >| redirection and ${{ }} expressions (GitHub replaces them
// before the shell runs, and their || is not the shell's). A | in a
// heredoc body, a case pattern (a|b)), arithmetic or a [[ =~ ]] regular
// expression counts as a pipe.
func hasPipe(script string) bool {
	var inSingle, inDouble bool
	for i := 0; i < len(script); i++ {
		if strings.HasPrefix(script[i:], "${{") {
			if end := strings.Index(script[i:], "}}"); end >= 0 {
				i += end + 1
				continue
			}
		}
		c := script[i]
		switch {
		case inSingle:
			inSingle = c != '\''
		case c == '\\':
			i++ // the next byte is literal, in "..." as well (\" and \\)
		case inDouble:
			inDouble = c != '"'
		case c == '\'':
			inSingle = true
		case c == '"':
			inDouble = true
		case c == '#' && (i == 0 || strings.IndexByte(" \t\n;&|()<>", script[i-1]) >= 0):
			if nl := strings.IndexByte(script[i:], '\n'); nl >= 0 {
				i += nl
			} else {
				i = len(script)
			}
		case c == '|':
			switch {
			case i+1 < len(script) && script[i+1] == '|':
				i++
			case i > 0 && script[i-1] == '>':
				// >| file: a redirection that overrides noclobber.
			default:
				return true
			}
		}
	}
	return false
}

// stepName names a step for a message: its name, else its id, else its
// position.
func stepName(step map[string]*yaml.Node, i int) string {
	for _, key := range []string{"name", "id"} {
		if n := step[key]; n != nil && n.Kind == yaml.ScalarNode && n.Value != "" {
			return fmt.Sprintf("%q", n.Value)
		}
	}
	return fmt.Sprintf("%d", i+1)
}

// mapping returns the entries of a YAML mapping, following an alias. A
// duplicate key is an error, as it is for actionlint: this check must not
// read a different value than GitHub does.
func mapping(n *yaml.Node) (map[string]*yaml.Node, error) {
	if n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n == nil || n.Kind != yaml.MappingNode {
		return nil, errors.New("not a mapping")
	}
	m := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Value == "<<" {
			return nil, fmt.Errorf("line %d: mapping keys must be plain strings", k.Line)
		}
		if _, dup := m[k.Value]; dup {
			return nil, fmt.Errorf("line %d: duplicate key %q", k.Line, k.Value)
		}
		if v.Kind == yaml.AliasNode {
			v = v.Alias
		}
		m[k.Value] = v
	}
	return m, nil
}

// optionalMapping is mapping, with no node meaning no entries.
func optionalMapping(n *yaml.Node) (map[string]*yaml.Node, error) {
	if n == nil {
		return nil, nil
	}
	return mapping(n)
}

// sequence returns the items of a YAML sequence; no node means none (a
// job that calls a reusable workflow has no steps).
func sequence(n *yaml.Node) ([]*yaml.Node, error) {
	if n == nil {
		return nil, nil
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("line %d: not a sequence", n.Line)
	}
	return n.Content, nil
}

// TestWorkflows holds the repository's own workflows to the rules.
func TestWorkflows(t *testing.T) {
	var files []string
	for _, g := range workflowGlobs {
		m, err := filepath.Glob(g)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Fatalf("no workflow files match %v", workflowGlobs)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		problems, err := checkWorkflow(data)
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		for _, p := range problems {
			t.Errorf("%s:%d: %s", filepath.Base(file), p.line, p.msg)
		}
	}
}

func TestCheckWorkflow(t *testing.T) {
	const sha = "11d5960a326750d5838078e36cf38b85af677262"
	for _, tc := range []struct {
		name string
		yaml string
		want []string // problems, as "line N: " and the start of the message
	}{
		{
			name: "pinned with its tag",
			yaml: "jobs:\n  a:\n    steps:\n      - uses: actions/checkout@" + sha + " # v4.4.0\n",
		},
		{
			name: "a tag",
			yaml: "jobs:\n  a:\n    steps:\n      - uses: actions/checkout@v4\n",
			want: []string{`line 4: uses "actions/checkout@v4": pin it to a full 40-hex commit SHA`},
		},
		{
			name: "a branch of an action in a subdirectory",
			yaml: "jobs:\n  a:\n    steps:\n      - uses: github/codeql-action/init@main # main\n",
			want: []string{`line 4: uses "github/codeql-action/init@main": pin it to a full 40-hex commit SHA with its tag in a comment (uses: github/codeql-action/init@<sha>`},
		},
		{
			name: "a short SHA",
			yaml: "jobs:\n  a:\n    steps:\n      - uses: actions/checkout@11d5960 # v4.4.0\n",
			want: []string{`line 4: uses "actions/checkout@11d5960": pin it`},
		},
		{
			name: "an upper-case SHA",
			yaml: "jobs:\n  a:\n    steps:\n      - uses: actions/checkout@" + strings.ToUpper(sha) + " # v4.4.0\n",
			want: []string{`line 4: uses "actions/checkout@` + strings.ToUpper(sha) + `": pin it`},
		},
		{
			name: "no ref at all",
			yaml: "jobs:\n  a:\n    steps:\n      - uses: actions/checkout\n",
			want: []string{`line 4: uses "actions/checkout": pin it to a full 40-hex commit SHA with its tag in a comment (uses: actions/checkout@<sha>`},
		},
		{
			name: "pinned without a tag comment",
			yaml: "jobs:\n  a:\n    steps:\n      - uses: actions/checkout@" + sha + "\n        with:\n          fetch-depth: 0\n",
			want: []string{`line 4: uses "actions/checkout@` + sha + `": no "# <tag>" comment`},
		},
		{
			name: "an empty comment",
			yaml: "jobs:\n  a:\n    steps:\n      - uses: actions/checkout@" + sha + " #\n",
			want: []string{`line 4: uses "actions/checkout@` + sha + `": no "# <tag>" comment`},
		},
		{
			name: "a local action",
			yaml: "jobs:\n  a:\n    steps:\n      - uses: ./.github/actions/setup\n",
		},
		{
			name: "a docker image by tag",
			yaml: "jobs:\n  a:\n    steps:\n      - uses: docker://alpine:3.20\n",
			want: []string{`line 4: uses "docker://alpine:3.20": pin the image by digest`},
		},
		{
			name: "a docker image by digest",
			yaml: "jobs:\n  a:\n    steps:\n      - uses: docker://alpine@sha256:" + strings.Repeat("ab", 32) + "\n",
		},
		{
			name: "a reusable workflow by tag, and a local one",
			yaml: "jobs:\n  a:\n    uses: acme/ci/.github/workflows/go.yml@v1\n  b:\n    uses: ./.github/workflows/local.yml\n",
			want: []string{`line 3: uses "acme/ci/.github/workflows/go.yml@v1": pin it`},
		},
		{
			name: "a pipe under GitHub's default shell",
			yaml: "jobs:\n  a:\n    steps:\n      - name: Publish\n        run: |\n          make\n          dbusers publish | tee out\n",
			want: []string{`line 5: job a, step "Publish": run has a pipe (|), but its shell, bash -e {0} (GitHub's default for a step with no shell), has no pipefail`},
		},
		{
			name: "a pipe under the workflow's defaults",
			yaml: "defaults:\n  run:\n    shell: bash\njobs:\n  a:\n    steps:\n      - run: a | b\n",
		},
		{
			name: "job defaults bash win over workflow defaults sh",
			yaml: "defaults:\n  run:\n    shell: sh\njobs:\n  a:\n    defaults:\n      run:\n        shell: bash\n    steps:\n      - run: a | b\n",
		},
		{
			name: "job defaults sh win over workflow defaults bash",
			yaml: "defaults:\n  run:\n    shell: bash\njobs:\n  a:\n    defaults:\n      run:\n        shell: sh\n    steps:\n      - id: pipe\n        run: a | b\n",
			want: []string{`line 11: job a, step "pipe": run has a pipe (|), but its shell, sh -e {0} (shell: sh, from the job defaults), has no pipefail`},
		},
		{
			name: "a step's sh wins over workflow defaults bash",
			yaml: "defaults:\n  run:\n    shell: bash\njobs:\n  a:\n    steps:\n      - run: a | b\n        shell: sh\n",
			want: []string{`line 7: job a, step 1: run has a pipe (|), but its shell, sh -e {0} (shell: sh, from the step shell), has no pipefail`},
		},
		{
			name: "a custom shell with pipefail",
			yaml: "jobs:\n  a:\n    steps:\n      - run: a | b\n        shell: bash -eo pipefail {0}\n      - run: a | b\n        shell: bash --noprofile --norc -e -o pipefail {0}\n",
		},
		{
			name: "a custom shell without pipefail",
			yaml: "jobs:\n  a:\n    steps:\n      - run: a | b\n        shell: bash -e {0}\n",
			want: []string{`line 4: job a, step 1: run has a pipe (|), but its shell, "bash -e {0}" (from the step shell), has no pipefail`},
		},
		{
			name: "a custom shell that turns pipefail off",
			yaml: "jobs:\n  a:\n    steps:\n      - run: a | b\n        shell: bash +o pipefail {0}\n",
			want: []string{`line 4: job a, step 1: run has a pipe (|), but its shell, "bash +o pipefail {0}"`},
		},
		{
			name: "|| is not a pipe",
			yaml: "jobs:\n  a:\n    steps:\n      - run: sudo systemctl stop mysql.service || true\n",
		},
		{
			name: "a quoted | is not a pipe",
			yaml: "jobs:\n  a:\n    steps:\n      - run: gh api x --jq '.[] | .number'\n",
		},
		{
			name: "no run, no shell needed",
			yaml: "jobs:\n  a:\n    steps:\n      - uses: ./local\n        with:\n          run: a | b\n",
		},
		{
			name: "problems come in line order, across jobs",
			yaml: "jobs:\n  z:\n    steps:\n      - uses: a/b@v1\n  a:\n    steps:\n      - uses: a/b@v2\n      - run: a | b\n",
			want: []string{`line 4: uses "a/b@v1"`, `line 7: uses "a/b@v2"`, `line 8: job a, step 2: run has a pipe`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			problems, err := checkWorkflow([]byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for i, p := range problems {
				s := p.String()
				if i < len(tc.want) && strings.HasPrefix(s, tc.want[i]) {
					s = tc.want[i] // matched: compare the prefix alone
				}
				got = append(got, s)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCheckWorkflowRefuses: what the check cannot read is an error, not a
// pass.
func TestCheckWorkflowRefuses(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"not YAML", "jobs: [", "yaml: "},
		{"no jobs", "name: x\n", "jobs: not a mapping"},
		{"a duplicate key", "jobs:\n  a:\n    steps:\n      - run: a | b\n        shell: bash\n        shell: sh\n", `job a: step 1: line 6: duplicate key "shell"`},
		{"a merge key", "jobs:\n  a:\n    <<: {steps: []}\n", "job a: line 3: mapping keys must be plain strings"},
		{"steps not a list", "jobs:\n  a:\n    steps: run\n", "job a: steps: line 3: not a sequence"},
		{"run not a string", "jobs:\n  a:\n    steps:\n      - run: [a, b]\n", "line 4: run is not a string"},
		{"defaults.run not a mapping", "defaults:\n  run: bash\njobs: {}\n", "defaults.run: not a mapping"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := checkWorkflow([]byte(tc.yaml))
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error %v, want one starting %q", err, tc.want)
			}
		})
	}
}

func TestHasPipe(t *testing.T) {
	for _, tc := range []struct {
		script string
		want   bool
	}{
		{"a | b", true},
		{"a|b", true},
		{"a |& b", true},
		{"make\ngo test ./... | tee log\n", true},
		{`x=$(git log | head -1)`, true},
		{"a || b", false},
		{"a||b", false},
		{"a || b | c", true},
		{"a ||| b", true}, // || then |, as bash reads it
		{"'a | b'", false},
		{`"a | b"`, false},
		{`"say \"|\""`, false},
		{`echo "it's" | wc`, true},
		{`echo 'say "hi"' | wc`, true},
		{`echo a \| b`, false},
		{"echo hi # a | b", false},
		{"# a | b\necho hi", false},
		{"echo a#b | c", true}, // # inside a word is not a comment
		{`echo "${#pkgs[@]}" | c`, true},
		{"echo hi >| file", false},
		{"echo ${{ inputs.a || 'x' }}", false},
		{"echo '${{ format('{0}', 'x') }}' | wc", true},
		{"echo ${{ unterminated | b", true},
		{"case $x in a|b) ;; esac", true}, // the documented false pipe
		{"", false},
	} {
		if got := hasPipe(tc.script); got != tc.want {
			t.Errorf("hasPipe(%q) = %v, want %v", tc.script, got, tc.want)
		}
	}
}

func TestPipefail(t *testing.T) {
	for _, tc := range []struct {
		shell string
		want  bool
	}{
		{"", false},
		{"bash", true},
		{"sh", false},
		{"pwsh", false},
		{"python", false},
		{"bash {0}", false},
		{"bash -e {0}", false},
		{"bash -o pipefail {0}", true},
		{"bash -eo pipefail {0}", true},
		{"bash -euxo pipefail {0}", true},
		{"bash --noprofile --norc -eo pipefail {0}", true},
		{"bash +o pipefail {0}", false},
		{"bash -o pipefailure {0}", false},
		{"bash -eopipefail {0}", false},
	} {
		if got := pipefail(tc.shell); got != tc.want {
			t.Errorf("pipefail(%q) = %v, want %v", tc.shell, got, tc.want)
		}
	}
}

// FuzzHasPipe: the scanner never panics, finds no pipe without a |, and
// finds none inside single quotes.
func FuzzHasPipe(f *testing.F) {
	for _, s := range []string{"a | b", "a || b", "'a|b'", `"a|b" | c`, "# a|b\nc", "${{ a || b }} | c", `a \| b`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, script string) {
		got := hasPipe(script)
		if got && !strings.Contains(script, "|") {
			t.Fatalf("hasPipe(%q) found a pipe with no |", script)
		}
		if quoted := "'" + script + "'"; !strings.Contains(script, "'") && hasPipe(quoted) {
			t.Fatalf("hasPipe(%q) found a pipe inside single quotes", quoted)
		}
	})
}

// These tests hold the two workflows to what docs/security.md, "Whose
// code makes the review", promises about them (issue 17): a failed publish fails its run, and the
// plan comment is made by the base branch's code, never the pull
// request's.

// workflow is the part of a workflow file these tests read.
type workflow struct {
	On          map[string]any    `yaml:"on"`
	Permissions map[string]string `yaml:"permissions"`
	Jobs        map[string]struct {
		Permissions map[string]string `yaml:"permissions"`
		Steps       []step            `yaml:"steps"`
	} `yaml:"jobs"`
}

type step struct {
	Name             string            `yaml:"name"`
	If               string            `yaml:"if"`
	ContinueOnError  any               `yaml:"continue-on-error"`
	Uses             string            `yaml:"uses"`
	Run              string            `yaml:"run"`
	WorkingDirectory string            `yaml:"working-directory"`
	With             map[string]any    `yaml:"with"`
	Env              map[string]string `yaml:"env"`
}

func readWorkflow(t *testing.T, name string) ([]byte, workflow) {
	t.Helper()
	data, err := os.ReadFile("../../.github/workflows/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var w workflow
	if err := yaml.Unmarshal(data, &w); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return data, w
}

// topLevelDefaults is a workflow's defaults: block.
var topLevelDefaults = regexp.MustCompile(`(?m)^defaults:\n(?:[ #].*\n|\n)*`)

// TestPublishFailureFailsTheRun: the publish step pipes dbusers publish
// into the step summary, and only the workflow's `shell: bash` default
// (pipefail) makes its failure fail the run: without it the check
// refuses the step by name.
func TestPublishFailureFailsTheRun(t *testing.T) {
	data, w := readWorkflow(t, "publish.yml")
	var publish *step
	for i, s := range w.Jobs["publish"].Steps {
		if s.Name == "Publish" {
			publish = &w.Jobs["publish"].Steps[i]
		}
	}
	if publish == nil || !strings.Contains(publish.Run, `"$RUNNER_TEMP/dbusers" publish | tee`) {
		t.Fatalf("no step Publish piping dbusers publish into tee: %+v", publish)
	}
	if publish.Env["DBUSERS_SIGNING_KEY_ARN"] != "${{ vars.DBUSERS_SIGNING_KEY_ARN }}" {
		t.Errorf("the Publish step does not sign with the repository variable DBUSERS_SIGNING_KEY_ARN: env %v", publish.Env)
	}
	if problems, err := checkWorkflow(data); err != nil || len(problems) != 0 {
		t.Fatalf("publish.yml: %v %v", problems, err)
	}
	stripped := topLevelDefaults.ReplaceAll(data, nil)
	if len(stripped) == len(data) {
		t.Fatal("publish.yml has no top-level defaults: block")
	}
	problems, err := checkWorkflow(stripped)
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) != 1 || !strings.Contains(problems[0].msg, `step "Publish": run has a pipe`) {
		t.Errorf("without its defaults, publish.yml's problems are %v; want the Publish step refused", problems)
	}
}

// TestPublishWorkflowReportsTheRollout: after the publish job, the rollout
// job waits for the published version's record and posts the comment and
// the commit status with the workflow's own token, allowed exactly that
// (pull-requests: write, statuses: write) besides reading the repository
// and asking for the publish role; the publish job keeps what it had, in
// its concurrency group, which the rollout job is outside of. The version
// travels as a step output, and no expression is pasted into a script.
func TestPublishWorkflowReportsTheRollout(t *testing.T) {
	data, _ := readWorkflow(t, "publish.yml")
	// What this test reads of the jobs, beyond the workflow type.
	var w struct {
		On          map[string]any    `yaml:"on"`
		Permissions map[string]string `yaml:"permissions"`
		Jobs        map[string]struct {
			Steps []struct {
				step `yaml:",inline"`
				ID   string `yaml:"id"`
			} `yaml:"steps"`
			Permissions    map[string]string `yaml:"permissions"`
			Needs          any               `yaml:"needs"`
			If             string            `yaml:"if"`
			Outputs        map[string]string `yaml:"outputs"`
			TimeoutMinutes int               `yaml:"timeout-minutes"`
			Concurrency    map[string]any    `yaml:"concurrency"`
		} `yaml:"jobs"`
	}
	if err := yaml.Unmarshal(data, &w); err != nil {
		t.Fatal(err)
	}
	if len(w.Permissions) != 0 {
		t.Errorf("workflow permissions %v, want none (each job says its own)", w.Permissions)
	}
	pub, roll := w.Jobs["publish"], w.Jobs["rollout"]
	if diff := cmp.Diff(map[string]string{"contents": "read", "id-token": "write", "pull-requests": "read"}, pub.Permissions); diff != "" {
		t.Errorf("publish permissions (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"contents": "read", "id-token": "write", "pull-requests": "write", "statuses": "write"}, roll.Permissions); diff != "" {
		t.Errorf("rollout permissions (-want +got):\n%s", diff)
	}
	if pub.Concurrency["group"] != "dbusers-publish" || pub.Concurrency["cancel-in-progress"] != false {
		t.Errorf("publish concurrency %v", pub.Concurrency)
	}
	if g, _ := roll.Concurrency["group"].(string); g == "dbusers-publish" || !strings.Contains(g, "${{ github.sha }}") {
		t.Errorf("rollout concurrency %v: one group per commit, apart from the publish", roll.Concurrency)
	}
	if pub.Outputs["version"] != "${{ steps.publish.outputs.version }}" {
		t.Errorf("publish outputs %v", pub.Outputs)
	}
	if roll.Needs != "publish" || roll.If != "needs.publish.outputs.version != ''" {
		t.Errorf("rollout needs %v, if %q", roll.Needs, roll.If)
	}
	if roll.TimeoutMinutes == 0 || roll.TimeoutMinutes > 30 {
		t.Errorf("rollout timeout-minutes %d", roll.TimeoutMinutes)
	}
	var published bool
	for _, s := range pub.Steps {
		published = published || (s.ID == "publish" && s.Name == "Publish")
	}
	if !published {
		t.Error("the Publish step has no id publish: its version output is not read")
	}
	var report *step
	for i, s := range roll.Steps {
		if strings.Contains(s.Run, "${{") {
			t.Errorf("step %q pastes an expression into its script; pass it in env", s.Name)
		}
		if strings.Contains(s.Run, " rollout ") {
			report = &roll.Steps[i].step
		}
	}
	if report == nil {
		t.Fatal("no step runs dbusers rollout")
	}
	if got := strings.TrimSpace(report.Run); got != `"$RUNNER_TEMP/dbusers" rollout --version "$VERSION" --wait "$WAIT" --comment --status` {
		t.Errorf("the rollout step runs %q", got)
	}
	want := map[string]string{
		"GITHUB_TOKEN": "${{ github.token }}",
		"VERSION":      "${{ needs.publish.outputs.version }}",
		"WAIT":         "${{ inputs.rollout_wait || vars.DBUSERS_ROLLOUT_WAIT || '10m' }}",
	}
	if diff := cmp.Diff(want, report.Env); diff != "" {
		t.Errorf("the rollout step's env (-want +got):\n%s", diff)
	}
	dispatch, _ := w.On["workflow_dispatch"].(map[string]any)
	inputs, _ := dispatch["inputs"].(map[string]any)
	if _, ok := inputs["rollout_wait"]; !ok {
		t.Errorf("workflow_dispatch has no rollout_wait input: %v", w.On["workflow_dispatch"])
	}
}

// TestPlanWorkflowRunsTheBaseBranchsCode: the plan workflow runs as the
// base branch defines it (pull_request_target), builds dbusers from a
// checkout of the base branch, reads the pull request as data, runs
// nothing from it but that dbusers, keeps no credentials in either
// checkout, writes no cache, and may write nothing but pull-request
// comments (and ask for the OIDC token of the live plan). Once it holds
// AWS credentials, nothing runs but that dbusers.
func TestPlanWorkflowRunsTheBaseBranchsCode(t *testing.T) {
	_, w := readWorkflow(t, "pr.yml")
	var triggers []string
	for k := range w.On {
		triggers = append(triggers, k)
	}
	if !slices.Equal(triggers, []string{"pull_request_target"}) {
		t.Errorf("triggers %v, want only pull_request_target (a pull_request run uses the pull request's own copy of the workflow)", triggers)
	}
	if diff := cmp.Diff(map[string]string{"contents": "read", "pull-requests": "write"}, w.Permissions); diff != "" {
		t.Errorf("permissions (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"contents": "read", "pull-requests": "write", "id-token": "write"}, w.Jobs["plan"].Permissions); diff != "" {
		t.Errorf("the plan job's permissions (-want +got):\n%s", diff)
	}
	checkouts := map[string]step{}
	built, credentials := false, false
	for _, s := range w.Jobs["plan"].Steps {
		action, _, _ := strings.Cut(s.Uses, "@")
		if s.Uses != "" && !slices.Contains(planWorkflowActions, action) {
			// A local action (./pr/...) would be the pull request's code.
			t.Errorf("step %q uses %q; the plan job may use only %v", s.Name, s.Uses, planWorkflowActions)
		}
		if credentials && !isBaseDbusers(s) {
			t.Errorf("step %q runs after the AWS credentials step and is not the base branch's dbusers in pr/: %+v", s.Name, s)
		}
		switch {
		case action == "actions/checkout":
			checkouts[asString(s.With["path"])] = s
			if s.With["persist-credentials"] != false {
				t.Errorf("checkout %q keeps credentials in .git/config", s.With["path"])
			}
		case action == "actions/setup-go":
			if s.With["cache"] != false || s.With["go-version-file"] != "base/go.mod" {
				t.Errorf("setup-go %v: want cache false (a pull_request_target run writes the base branch's cache) and the base branch's go.mod", s.With)
			}
		case action == "aws-actions/configure-aws-credentials":
			if !built {
				t.Errorf("step %q gets AWS credentials before dbusers is built", s.Name)
			}
			credentials = true
		case s.Run != "" && s.WorkingDirectory == "base":
			built = strings.HasPrefix(s.Run, `go build -trimpath -o "$RUNNER_TEMP/dbusers" ./bot/cmd/dbusers`) && s.Env["GOWORK"] == "off"
			if !built {
				t.Errorf("step %q in base/: %q, env %v; want only the build of dbusers, with GOWORK off", s.Name, s.Run, s.Env)
			}
		case s.Run != "":
			// In the pull request's tree nothing runs but that binary.
			if !isBaseDbusers(s) {
				t.Errorf("step %q runs %q in %q; want only the base branch's dbusers, in pr/", s.Name, s.Run, s.WorkingDirectory)
			}
		}
	}
	if !built {
		t.Error("no step builds dbusers in base/")
	}
	if got := asString(checkouts["base"].With["ref"]); got != "${{ github.event.pull_request.base.sha }}" {
		t.Errorf("base/ checks out %q, want the pull request's base", got)
	}
	if got := asString(checkouts["pr"].With["ref"]); got != "${{ github.event.pull_request.head.sha }}" {
		t.Errorf("pr/ checks out %q, want the pull request's head", got)
	}
	if len(checkouts) != 2 {
		t.Errorf("checkouts %v, want base and pr", checkouts)
	}
}

// planWorkflowActions are the only actions the plan job may use.
var planWorkflowActions = []string{"actions/checkout", "actions/setup-go", "aws-actions/configure-aws-credentials"}

// isBaseDbusers reports whether a step runs the dbusers built from the
// base branch, in pr/, as one command and nothing else.
func isBaseDbusers(s step) bool {
	args, ok := strings.CutPrefix(strings.TrimSpace(s.Run), `"$RUNNER_TEMP/dbusers" `)
	// No list, pipe, substitution, redirection or second line.
	return ok && s.Uses == "" && s.WorkingDirectory == "pr" && !strings.ContainsAny(args, ";&|`\n<>()")
}

func asString(v any) string {
	s, _ := v.(string)
	return s
}

// The live plan's gate (issue 12). pr.yml asks for the plan role's
// credentials only for a pull request from this repository: the role's
// trust cannot tell (a pull_request_target token says
// repo:<owner>/<repo>:pull_request for a fork too), so this is the one
// place forks are kept out. A fork's comment says why it has no live
// plan, through DBUSERS_LIVE_SKIPPED.

// planGate is the condition of the step that assumes the plan role.
const planGate = "github.event.pull_request.head.repo.full_name == github.repository && vars.DBUSERS_PLAN_ROLE_ARN != ''"

// TestPlanRoleOnlyForThisRepository: one step assumes the plan role, only
// for a pull request from this repository and once the role is set up,
// without failing the job; the comment step then asks for the live plan,
// and for every pull request the workflow does not give credentials to,
// DBUSERS_LIVE_SKIPPED says why.
func TestPlanRoleOnlyForThisRepository(t *testing.T) {
	_, w := readWorkflow(t, "pr.yml")
	var assume, comment []step
	for _, s := range w.Jobs["plan"].Steps {
		if strings.HasPrefix(s.Uses, "aws-actions/configure-aws-credentials@") {
			assume = append(assume, s)
		}
		if isBaseDbusers(s) && strings.Contains(s.Run, " comment ") {
			comment = append(comment, s)
		}
	}
	if len(assume) != 1 || len(comment) != 1 {
		t.Fatalf("%d steps assume a role and %d comment; want one each", len(assume), len(comment))
	}
	a, c := assume[0], comment[0]
	if a.If != planGate {
		t.Errorf("the AWS step runs if %q, want exactly %q", a.If, planGate)
	}
	if a.ContinueOnError != true {
		t.Errorf("the AWS step has continue-on-error %v: a role that cannot be assumed must not fail the job", a.ContinueOnError)
	}
	if got := asString(a.With["role-to-assume"]); got != "${{ vars.DBUSERS_PLAN_ROLE_ARN }}" {
		t.Errorf("the AWS step assumes %q, want the repository variable DBUSERS_PLAN_ROLE_ARN", got)
	}
	for _, k := range []string{"aws-access-key-id", "aws-secret-access-key", "aws-session-token", "role-chaining", "web-identity-token-file", "aws-profile"} {
		if _, ok := a.With[k]; ok {
			t.Errorf("the AWS step sets %s: the plan role is assumed with the job's OIDC token alone", k)
		}
	}
	if !slices.Contains(strings.Fields(c.Run), "--live") {
		t.Errorf("the comment step runs %q, without --live", c.Run)
	}
	if c.Env["DBUSERS_PLAN_FUNCTION"] != "${{ vars.DBUSERS_PLAN_FUNCTION }}" {
		t.Errorf("the comment step's DBUSERS_PLAN_FUNCTION is %q, want the repository variable", c.Env["DBUSERS_PLAN_FUNCTION"])
	}
	skipped, ok := strings.CutPrefix(strings.TrimSpace(c.Env["DBUSERS_LIVE_SKIPPED"]), "${{")
	skipped, ok2 := strings.CutSuffix(skipped, "}}")
	if !ok || !ok2 {
		t.Fatalf("DBUSERS_LIVE_SKIPPED is %q, want one ${{ }} expression", c.Env["DBUSERS_LIVE_SKIPPED"])
	}
	const repo = "acme/dbusers-config"
	for _, tc := range []struct {
		name        string
		head, role  any
		credentials bool
		skipped     string // what the comment's one line starts with
	}{
		{"same repository, set up", repo, "arn:aws:iam::123456789012:role/dbusers-plan", true, ""},
		{"same repository, another case", "ACME/dbusers-config", "arn:aws:iam::123456789012:role/dbusers-plan", true, ""},
		{"same repository, not set up", repo, "", false, "the live plan is not set up"},
		{"fork", "mallory/dbusers-config", "arn:aws:iam::123456789012:role/dbusers-plan", false, "fork pull request: "},
		{"fork, not set up", "mallory/dbusers-config", "", false, "fork pull request: "},
		{"a look-alike fork", "acme/dbusers-config-fork", "arn:aws:iam::123456789012:role/dbusers-plan", false, "fork pull request: "},
		{"a deleted fork (no head repository)", nil, "arn:aws:iam::123456789012:role/dbusers-plan", false, "fork pull request: "},
	} {
		ctx := map[string]any{
			"github.event.pull_request.head.repo.full_name": tc.head,
			"github.repository":                             repo,
			"vars.DBUSERS_PLAN_ROLE_ARN":                    tc.role,
		}
		gate, err := evalExpr(a.If, ctx)
		if err != nil {
			t.Fatalf("the AWS step's if: %v", err)
		}
		if truthy(gate) != tc.credentials {
			t.Errorf("%s: the AWS step runs = %v, want %v", tc.name, truthy(gate), tc.credentials)
		}
		why, err := evalExpr(skipped, ctx)
		if err != nil {
			t.Fatalf("DBUSERS_LIVE_SKIPPED: %v", err)
		}
		text := fmt.Sprint(why)
		if why == nil || why == false {
			text = ""
		}
		if (text == "") != tc.credentials || !strings.HasPrefix(text, tc.skipped) {
			t.Errorf("%s: DBUSERS_LIVE_SKIPPED = %q, want it to start %q (and be empty exactly when the workflow asks for credentials)", tc.name, text, tc.skipped)
		}
	}
}

// TestIDTokenOnlyWhereNeeded: an OIDC token (id-token: write, or
// write-all) is available to the publish job, which trades it for the
// publish role, and to the plan job, for the plan role; no other job of
// any workflow can ask for one. Every workflow sets its permissions, so
// the repository's default token settings never apply.
func TestIDTokenOnlyWhereNeeded(t *testing.T) {
	var files []string
	for _, g := range workflowGlobs {
		m, _ := filepath.Glob(g)
		files = append(files, m...)
	}
	var got []string
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var w struct {
			Permissions any `yaml:"permissions"`
			Jobs        map[string]struct {
				Permissions any `yaml:"permissions"`
			} `yaml:"jobs"`
		}
		if err := yaml.Unmarshal(data, &w); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if w.Permissions == nil {
			t.Errorf("%s: no top-level permissions: the repository's default token permissions apply", filepath.Base(file))
		}
		for id, job := range w.Jobs {
			perms := job.Permissions
			if perms == nil {
				perms = w.Permissions
			}
			if idToken(perms) {
				got = append(got, filepath.Base(file)+" "+id)
			}
		}
	}
	slices.Sort(got)
	if want := []string{"pr.yml plan", "publish.yml publish", "publish.yml rollout"}; !slices.Equal(got, want) {
		t.Errorf("jobs that can ask for an OIDC token: %v, want %v", got, want)
	}
}

// idToken reports whether a permissions value grants id-token: write.
func idToken(perms any) bool {
	switch p := perms.(type) {
	case string:
		return p == "write-all"
	case map[string]any:
		return p["id-token"] == "write"
	}
	return false
}

// evalExpr evaluates the part of GitHub's expression syntax the gate
// uses: context names, '...' strings, true, false, null, ==, !=, !, &&,
// || and parentheses. As GitHub does, == compares strings ignoring case,
// null equals only the empty string, && and || return one of their
// operands, and the empty string and null are false. A name missing from
// ctx is an error, and so is a function call.
func evalExpr(expr string, ctx map[string]any) (any, error) {
	toks, err := exprTokens(expr)
	if err != nil {
		return nil, err
	}
	p := &exprParser{toks: toks, ctx: ctx}
	v, err := p.or()
	if err == nil && p.i < len(p.toks) {
		err = fmt.Errorf("unexpected %q", p.toks[p.i])
	}
	return v, err
}

var exprToken = regexp.MustCompile(`^\s*('(?:[^']|'')*'|==|!=|&&|\|\||[!()]|[A-Za-z_][A-Za-z0-9_.-]*)`)

func exprTokens(expr string) ([]string, error) {
	var toks []string
	for rest := expr; strings.TrimSpace(rest) != ""; {
		m := exprToken.FindStringSubmatch(rest)
		if m == nil {
			return nil, fmt.Errorf("cannot read %q", rest)
		}
		toks = append(toks, m[1])
		rest = rest[len(m[0]):]
	}
	return toks, nil
}

type exprParser struct {
	toks []string
	i    int
	ctx  map[string]any
}

func (p *exprParser) accept(tok string) bool {
	if p.i < len(p.toks) && p.toks[p.i] == tok {
		p.i++
		return true
	}
	return false
}

func (p *exprParser) or() (any, error) {
	v, err := p.and()
	for err == nil && p.accept("||") {
		var r any
		if r, err = p.and(); !truthy(v) {
			v = r
		}
	}
	return v, err
}

func (p *exprParser) and() (any, error) {
	v, err := p.cmp()
	for err == nil && p.accept("&&") {
		var r any
		if r, err = p.cmp(); truthy(v) {
			v = r
		}
	}
	return v, err
}

func (p *exprParser) cmp() (any, error) {
	v, err := p.unary()
	if err != nil {
		return nil, err
	}
	for _, op := range []string{"==", "!="} {
		if p.accept(op) {
			r, err := p.unary()
			if err != nil {
				return nil, err
			}
			return exprEqual(v, r) == (op == "=="), nil
		}
	}
	return v, nil
}

func (p *exprParser) unary() (any, error) {
	if p.accept("!") {
		v, err := p.unary()
		return !truthy(v), err
	}
	if p.accept("(") {
		v, err := p.or()
		if err == nil && !p.accept(")") {
			err = errors.New("missing )")
		}
		return v, err
	}
	if p.i >= len(p.toks) {
		return nil, errors.New("unexpected end")
	}
	tok := p.toks[p.i]
	p.i++
	if strings.HasPrefix(tok, "'") {
		return strings.ReplaceAll(tok[1:len(tok)-1], "''", "'"), nil
	}
	switch tok {
	case "true", "false":
		return tok == "true", nil
	case "null":
		return nil, nil
	}
	v, ok := p.ctx[tok]
	if !ok {
		return nil, fmt.Errorf("unknown context %s", tok)
	}
	return v, nil
}

func truthy(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case bool:
		return v
	case string:
		return v != ""
	}
	return true
}

func exprEqual(a, b any) bool {
	if a == nil || b == nil {
		return (a == nil || a == "") && (b == nil || b == "")
	}
	as, aok := a.(string)
	bs, bok := b.(string)
	if aok && bok {
		return strings.EqualFold(as, bs)
	}
	return a == b
}

func TestEvalExpr(t *testing.T) {
	ctx := map[string]any{"a": "x", "e": "", "n": nil}
	for _, tc := range []struct {
		expr string
		want any
	}{
		{"a == 'X'", true},
		{"a != 'x'", false},
		{"n == ''", true},
		{"n == 'x'", false},
		{"e == n", true},
		{"a && 'yes' || 'no'", "yes"},
		{"e && 'yes' || 'no'", "no"},
		{"a != 'x' && 'one' || a == 'x' && 'two' || ''", "two"},
		{"!(a == 'x') || e", ""},
		{"'it''s'", "it's"},
		{"false && 'x' || null", nil},
		{"true && a", "x"},
	} {
		got, err := evalExpr(tc.expr, ctx)
		if err != nil || got != tc.want {
			t.Errorf("%s = %#v (%v), want %#v", tc.expr, got, err, tc.want)
		}
	}
	for _, bad := range []string{"cancelled()", "a ==", "(a", "a b", "unknown == a", "a ~ b"} {
		if _, err := evalExpr(bad, ctx); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
