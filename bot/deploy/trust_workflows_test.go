package deploy

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"
)

// These tests hold the two workflows to what README's security model
// promises about them (issue 17): a failed publish fails its run, and the
// plan comment is made by the base branch's code, never the pull
// request's.

// workflow is the part of a workflow file these tests read.
type workflow struct {
	On          map[string]any    `yaml:"on"`
	Permissions map[string]string `yaml:"permissions"`
	Jobs        map[string]struct {
		Steps []step `yaml:"steps"`
	} `yaml:"jobs"`
}

type step struct {
	Name             string            `yaml:"name"`
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

// TestPlanWorkflowRunsTheBaseBranchsCode: the plan workflow runs as the
// base branch defines it (pull_request_target), builds dbusers from a
// checkout of the base branch, reads the pull request as data, runs
// nothing from it but that dbusers, keeps no credentials in either
// checkout, writes no cache, and may write nothing but pull-request
// comments.
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
	checkouts := map[string]step{}
	built := false
	for _, s := range w.Jobs["plan"].Steps {
		switch {
		case strings.HasPrefix(s.Uses, "actions/checkout@"):
			checkouts[asString(s.With["path"])] = s
			if s.With["persist-credentials"] != false {
				t.Errorf("checkout %q keeps credentials in .git/config", s.With["path"])
			}
		case strings.HasPrefix(s.Uses, "actions/setup-go@"):
			if s.With["cache"] != false || s.With["go-version-file"] != "base/go.mod" {
				t.Errorf("setup-go %v: want cache false (a pull_request_target run writes the base branch's cache) and the base branch's go.mod", s.With)
			}
		case s.Run != "" && s.WorkingDirectory == "base":
			built = strings.HasPrefix(s.Run, `go build -trimpath -o "$RUNNER_TEMP/dbusers" ./bot/cmd/dbusers`) && s.Env["GOWORK"] == "off"
			if !built {
				t.Errorf("step %q in base/: %q, env %v; want only the build of dbusers, with GOWORK off", s.Name, s.Run, s.Env)
			}
		case s.Run != "":
			// In the pull request's tree nothing runs but that binary.
			if s.WorkingDirectory != "pr" || !strings.HasPrefix(strings.TrimSpace(s.Run), `"$RUNNER_TEMP/dbusers" `) || strings.ContainsAny(strings.TrimSpace(s.Run), ";&|`\n") {
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

func asString(v any) string {
	s, _ := v.(string)
	return s
}
