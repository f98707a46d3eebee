package deploy

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// This file reads CloudFormation templates as CloudFormation does: YAML
// whose short-form tags (!Ref, !Sub, !GetAtt, ...) stand for the long-form
// {"Fn::X": ...} maps, and evaluates the intrinsic functions for a chosen
// set of parameter values, so that tests can check what a stack would
// really contain.

// shortForms maps each short-form tag to its long-form key.
var shortForms = map[string]string{
	"!Ref":          "Ref",
	"!Condition":    "Condition",
	"!Base64":       "Fn::Base64",
	"!Cidr":         "Fn::Cidr",
	"!FindInMap":    "Fn::FindInMap",
	"!GetAtt":       "Fn::GetAtt",
	"!GetAZs":       "Fn::GetAZs",
	"!ImportValue":  "Fn::ImportValue",
	"!Join":         "Fn::Join",
	"!Select":       "Fn::Select",
	"!Split":        "Fn::Split",
	"!Sub":          "Fn::Sub",
	"!Transform":    "Fn::Transform",
	"!And":          "Fn::And",
	"!Equals":       "Fn::Equals",
	"!If":           "Fn::If",
	"!Not":          "Fn::Not",
	"!Or":           "Fn::Or",
	"!ToJsonString": "Fn::ToJsonString",
	"!Length":       "Fn::Length",
}

// parseCFN decodes a template into maps, slices and scalars with every
// short-form tag replaced by its long form. Duplicate keys, anchors and
// unknown tags are errors, as they are (or should be) for CloudFormation.
func parseCFN(data []byte) (map[string]any, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, errors.New("not a single YAML document")
	}
	v, err := convertNode(doc.Content[0])
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("the template is not a mapping")
	}
	return m, nil
}

func convertNode(n *yaml.Node) (any, error) {
	if n.Anchor != "" || n.Kind == yaml.AliasNode {
		return nil, fmt.Errorf("line %d: YAML anchors and aliases are not used in templates", n.Line)
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		key, ok := shortForms[n.Tag]
		if !ok {
			return nil, fmt.Errorf("line %d: unknown tag %s", n.Line, n.Tag)
		}
		inner := *n
		inner.Tag = ""
		if n.Kind == yaml.ScalarNode {
			inner.Tag = "!!str"
		}
		v, err := convertNode(&inner)
		if err != nil {
			return nil, err
		}
		if key == "Fn::GetAtt" {
			if s, ok := v.(string); ok {
				res, attr, found := strings.Cut(s, ".")
				if !found {
					return nil, fmt.Errorf("line %d: !GetAtt %q is not Resource.Attribute", n.Line, s)
				}
				v = []any{res, attr}
			}
		}
		return map[string]any{key: v}, nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode || k.Value == "<<" {
				return nil, fmt.Errorf("line %d: mapping keys must be plain strings", k.Line)
			}
			if _, dup := m[k.Value]; dup {
				return nil, fmt.Errorf("line %d: duplicate key %q", k.Line, k.Value)
			}
			v, err := convertNode(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[k.Value] = v
		}
		return m, nil
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := convertNode(c)
			if err != nil {
				return nil, err
			}
			s = append(s, v)
		}
		return s, nil
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		return v, nil
	}
	return nil, fmt.Errorf("line %d: unexpected YAML node kind %d", n.Line, n.Kind)
}

// template is one parsed template file.
type template struct {
	file string
	raw  map[string]any
}

func loadTemplate(t testing.TB, file string) *template {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := parseCFN(data)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return &template{file: file, raw: raw}
}

func (t *template) section(name string) map[string]any {
	m, _ := t.raw[name].(map[string]any)
	return m
}

// resourcesOfType returns the logical ids of every resource of a type,
// sorted.
func (t *template) resourcesOfType(typ string) []string {
	var ids []string
	for id, r := range t.section("Resources") {
		if r.(map[string]any)["Type"] == typ {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// Pseudo parameters of the evaluated stack.
const (
	testRegion    = "eu-west-1"
	testAccount   = "123456789012"
	testPartition = "aws"
)

// noValue is what AWS::NoValue evaluates to: the property or list element
// disappears.
type noValueT struct{}

var noValue = noValueT{}

// stack evaluates a template for parameter values: what CloudFormation
// would create.
type stack struct {
	t      *template
	params map[string]any // string, or []any of strings for lists
	conds  map[string]bool
}

// evaluate resolves the parameters (defaults overridden by values, each
// checked against its constraints) and the conditions.
func (t *template) evaluate(values map[string]string) (*stack, error) {
	s := &stack{t: t, params: map[string]any{}, conds: map[string]bool{}}
	for name := range values {
		if _, ok := t.section("Parameters")[name]; !ok {
			return nil, fmt.Errorf("no parameter %s", name)
		}
	}
	for name, p := range t.section("Parameters") {
		p := p.(map[string]any)
		v, ok := values[name]
		if !ok {
			d, has := p["Default"]
			if !has {
				return nil, fmt.Errorf("parameter %s has no default and no value", name)
			}
			v = fmt.Sprint(d)
		}
		if err := checkParameter(p, v); err != nil {
			return nil, fmt.Errorf("parameter %s: %w", name, err)
		}
		if strings.HasPrefix(fmt.Sprint(p["Type"]), "List<") || p["Type"] == "CommaDelimitedList" {
			var list []any
			for item := range strings.SplitSeq(v, ",") {
				list = append(list, strings.TrimSpace(item))
			}
			s.params[name] = list
		} else {
			s.params[name] = v
		}
	}
	for name := range t.section("Conditions") {
		if _, err := s.condition(name, nil); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// checkParameter applies a parameter's constraints to a value.
func checkParameter(p map[string]any, v string) error {
	if allowed, ok := p["AllowedValues"].([]any); ok {
		found := false
		for _, a := range allowed {
			found = found || fmt.Sprint(a) == v
		}
		if !found {
			return fmt.Errorf("%q is not one of %v", v, allowed)
		}
	}
	if pat, ok := p["AllowedPattern"].(string); ok {
		re, err := regexp.Compile(`^(?:` + pat + `)$`)
		if err != nil {
			return fmt.Errorf("AllowedPattern: %w", err)
		}
		if !re.MatchString(v) {
			return fmt.Errorf("%q does not match %s", v, pat)
		}
	}
	if n, ok := p["MinLength"].(int); ok && len(v) < n {
		return fmt.Errorf("%q is shorter than %d", v, n)
	}
	if n, ok := p["MaxLength"].(int); ok && len(v) > n {
		return fmt.Errorf("%q is longer than %d", v, n)
	}
	if p["Type"] == "Number" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", v)
		}
		if n, ok := p["MinValue"].(int); ok && f < float64(n) {
			return fmt.Errorf("%v is below %d", f, n)
		}
		if n, ok := p["MaxValue"].(int); ok && f > float64(n) {
			return fmt.Errorf("%v is above %d", f, n)
		}
	}
	return nil
}

func (s *stack) condition(name string, seen []string) (bool, error) {
	if v, ok := s.conds[name]; ok {
		return v, nil
	}
	if slices.Contains(seen, name) {
		return false, fmt.Errorf("condition %s refers to itself", name)
	}
	def, ok := s.t.section("Conditions")[name]
	if !ok {
		return false, fmt.Errorf("no condition %s", name)
	}
	v, err := s.evalCondition(def, append(seen, name))
	if err != nil {
		return false, fmt.Errorf("condition %s: %w", name, err)
	}
	s.conds[name] = v
	return v, nil
}

func (s *stack) evalCondition(v any, seen []string) (bool, error) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return false, fmt.Errorf("not a condition function: %v", v)
	}
	for fn, arg := range m {
		args, _ := arg.([]any)
		switch fn {
		case "Condition":
			return s.condition(fmt.Sprint(arg), seen)
		case "Fn::Not":
			if len(args) != 1 {
				return false, errors.New("Fn::Not takes one condition")
			}
			b, err := s.evalCondition(args[0], seen)
			return !b, err
		case "Fn::And", "Fn::Or":
			if len(args) < 2 || len(args) > 10 {
				return false, fmt.Errorf("%s takes 2 to 10 conditions", fn)
			}
			all, anyTrue := true, false
			for _, a := range args {
				b, err := s.evalCondition(a, seen)
				if err != nil {
					return false, err
				}
				all, anyTrue = all && b, anyTrue || b
			}
			if fn == "Fn::And" {
				return all, nil
			}
			return anyTrue, nil
		case "Fn::Equals":
			if len(args) != 2 {
				return false, errors.New("Fn::Equals takes two values")
			}
			a, err := s.eval(args[0])
			if err != nil {
				return false, err
			}
			b, err := s.eval(args[1])
			if err != nil {
				return false, err
			}
			return fmt.Sprint(a) == fmt.Sprint(b), nil
		}
		return false, fmt.Errorf("%s is not a condition function", fn)
	}
	panic("unreachable")
}

// active reports whether a resource exists in this stack.
func (s *stack) active(id string) bool {
	r := s.t.section("Resources")[id].(map[string]any)
	c, ok := r["Condition"].(string)
	return !ok || s.conds[c]
}

// resource returns a resource's evaluated properties, or nil when its
// condition leaves it out.
func (s *stack) resource(tb testing.TB, id string) map[string]any {
	tb.Helper()
	r, ok := s.t.section("Resources")[id].(map[string]any)
	if !ok {
		tb.Fatalf("%s: no resource %s", s.t.file, id)
	}
	if !s.active(id) {
		return nil
	}
	props, err := s.eval(r["Properties"])
	if err != nil {
		tb.Fatalf("%s: resource %s: %v", s.t.file, id, err)
	}
	m, _ := props.(map[string]any)
	return m
}

// outputs evaluates the stack's outputs: those whose condition holds,
// each to its value.
func (s *stack) outputs() (map[string]any, error) {
	out := map[string]any{}
	for name, o := range s.t.section("Outputs") {
		o, _ := o.(map[string]any)
		if c, ok := o["Condition"].(string); ok && !s.conds[c] {
			continue
		}
		v, err := s.eval(o["Value"])
		if err != nil {
			return nil, fmt.Errorf("output %s: %w", name, err)
		}
		out[name] = v
	}
	return out, nil
}

// Placeholders for the values CloudFormation only knows at deploy time.
func refOf(id string) string         { return "ref:" + id }
func attOf(id, attr string) string   { return "att:" + id + "." + attr }
func pseudo(name string) (any, bool) { return pseudoParams[name], pseudoParams[name] != nil }

var pseudoParams = map[string]any{
	"AWS::Region":    testRegion,
	"AWS::AccountId": testAccount,
	"AWS::Partition": testPartition,
	"AWS::StackName": "dbusers-test",
	"AWS::URLSuffix": "amazonaws.com",
	"AWS::NoValue":   noValue,
}

// eval resolves every intrinsic function in v.
func (s *stack) eval(v any) (any, error) {
	switch v := v.(type) {
	case []any:
		out := make([]any, 0, len(v))
		for _, e := range v {
			r, err := s.eval(e)
			if err != nil {
				return nil, err
			}
			if r != noValue {
				out = append(out, r)
			}
		}
		return out, nil
	case map[string]any:
		if len(v) == 1 {
			for k, arg := range v {
				if k == "Ref" || strings.HasPrefix(k, "Fn::") {
					return s.intrinsic(k, arg)
				}
			}
		}
		out := make(map[string]any, len(v))
		for k, e := range v {
			r, err := s.eval(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			if r != noValue {
				out[k] = r
			}
		}
		return out, nil
	}
	return v, nil
}

func (s *stack) ref(name string) (any, error) {
	if v, ok := pseudo(name); ok {
		return v, nil
	}
	if v, ok := s.params[name]; ok {
		return v, nil
	}
	if _, ok := s.t.section("Resources")[name]; ok {
		if !s.active(name) {
			return nil, fmt.Errorf("Ref to %s, which the stack does not create", name)
		}
		return refOf(name), nil
	}
	return nil, fmt.Errorf("Ref to unknown %s", name)
}

func (s *stack) getAtt(id, attr string) (any, error) {
	if _, ok := s.t.section("Resources")[id]; !ok {
		return nil, fmt.Errorf("GetAtt of unknown resource %s", id)
	}
	if !s.active(id) {
		return nil, fmt.Errorf("GetAtt of %s, which the stack does not create", id)
	}
	return attOf(id, attr), nil
}

var subVar = regexp.MustCompile(`\$\{([^}]*)\}`)

func (s *stack) sub(format string, vars map[string]any) (string, error) {
	var firstErr error
	out := subVar.ReplaceAllStringFunc(format, func(m string) string {
		name := m[2 : len(m)-1]
		if strings.HasPrefix(name, "!") {
			return "${" + name[1:] + "}"
		}
		var v any
		var err error
		if x, ok := vars[name]; ok {
			v = x
		} else if id, attr, ok := strings.Cut(name, "."); ok {
			v, err = s.getAtt(id, attr)
		} else {
			v, err = s.ref(name)
		}
		if err == nil {
			if _, isList := v.([]any); isList {
				err = fmt.Errorf("${%s} is a list", name)
			}
		}
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			return ""
		}
		return fmt.Sprint(v)
	})
	return out, firstErr
}

func (s *stack) intrinsic(fn string, arg any) (any, error) {
	if fn == "Ref" {
		return s.ref(fmt.Sprint(arg))
	}
	if fn == "Fn::If" {
		args, ok := arg.([]any)
		if !ok || len(args) != 3 {
			return nil, errors.New("Fn::If takes [condition, then, else]")
		}
		c, err := s.condition(fmt.Sprint(args[0]), nil)
		if err != nil {
			return nil, err
		}
		if c {
			return s.eval(args[1])
		}
		return s.eval(args[2])
	}
	if fn == "Fn::GetAtt" {
		args, ok := arg.([]any)
		if !ok || len(args) != 2 {
			return nil, errors.New("Fn::GetAtt takes [resource, attribute]")
		}
		return s.getAtt(fmt.Sprint(args[0]), fmt.Sprint(args[1]))
	}
	if fn == "Fn::Sub" {
		switch a := arg.(type) {
		case string:
			return s.sub(a, nil)
		case []any:
			if len(a) != 2 {
				return nil, errors.New("Fn::Sub takes a string or [string, variables]")
			}
			vars, err := s.eval(a[1])
			if err != nil {
				return nil, err
			}
			m, ok := vars.(map[string]any)
			if !ok {
				return nil, errors.New("Fn::Sub variables must be a mapping")
			}
			return s.sub(fmt.Sprint(a[0]), m)
		}
		return nil, errors.New("Fn::Sub takes a string or [string, variables]")
	}
	ev, err := s.eval(arg)
	if err != nil {
		return nil, err
	}
	args, _ := ev.([]any)
	switch fn {
	case "Fn::Join":
		if len(args) != 2 {
			return nil, errors.New("Fn::Join takes [delimiter, list]")
		}
		if raw, _ := arg.([]any); len(raw) != 2 || !isString(raw[0]) {
			return nil, errors.New("Fn::Join's delimiter must be a literal string")
		}
		list, ok := args[1].([]any)
		if !ok {
			return nil, errors.New("Fn::Join needs a list")
		}
		parts := make([]string, len(list))
		for i, p := range list {
			if _, isList := p.([]any); isList {
				return nil, errors.New("Fn::Join of a nested list")
			}
			parts[i] = fmt.Sprint(p)
		}
		return strings.Join(parts, fmt.Sprint(args[0])), nil
	case "Fn::Split":
		if len(args) != 2 {
			return nil, errors.New("Fn::Split takes [delimiter, string]")
		}
		var out []any
		for p := range strings.SplitSeq(fmt.Sprint(args[1]), fmt.Sprint(args[0])) {
			out = append(out, p)
		}
		return out, nil
	case "Fn::Select":
		if len(args) != 2 {
			return nil, errors.New("Fn::Select takes [index, list]")
		}
		i, err := strconv.Atoi(fmt.Sprint(args[0]))
		list, ok := args[1].([]any)
		if err != nil || !ok || i < 0 || i >= len(list) {
			return nil, fmt.Errorf("Fn::Select index %v out of range", args[0])
		}
		return list[i], nil
	}
	return nil, fmt.Errorf("%s is not supported by this evaluator", fn)
}

// references walks a raw template value and reports every name it refers
// to: Ref and GetAtt targets, ${...} variables of Sub, and conditions.
func references(v any, refs, conds map[string]bool) {
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			references(e, refs, conds)
		}
	case map[string]any:
		for k, e := range v {
			switch k {
			case "Ref":
				refs[fmt.Sprint(e)] = true
			case "Condition":
				if s, ok := e.(string); ok {
					conds[s] = true
				}
			case "Fn::GetAtt":
				if a, ok := e.([]any); ok && len(a) > 0 {
					refs[fmt.Sprint(a[0])] = true
				}
			case "Fn::If":
				if a, ok := e.([]any); ok && len(a) > 0 {
					conds[fmt.Sprint(a[0])] = true
				}
			case "Fn::Sub":
				format, local := e, map[string]any{}
				if a, ok := e.([]any); ok && len(a) == 2 {
					format = a[0]
					local, _ = a[1].(map[string]any)
				}
				for _, m := range subVar.FindAllStringSubmatch(fmt.Sprint(format), -1) {
					name, _, _ := strings.Cut(m[1], ".")
					if _, ok := local[name]; !ok && !strings.HasPrefix(name, "!") {
						refs[name] = true
					}
				}
			}
			references(e, refs, conds)
		}
	}
}

// TestParseCFN checks the reader on the forms templates use.
func TestParseCFN(t *testing.T) {
	got, err := parseCFN([]byte(`
A: !Ref X
B: !GetAtt Res.Arn
C: !Sub "arn:${AWS::Partition}:x"
D: !If [Cond, !Join [",", [a, b]], !Ref AWS::NoValue]
E: !Not [!Equals [!Ref P, ""]]
F: !Select [0, !Split [",", "a,b"]]
G: 900
H: "900"
I: true
`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"A": map[string]any{"Ref": "X"},
		"B": map[string]any{"Fn::GetAtt": []any{"Res", "Arn"}},
		"C": map[string]any{"Fn::Sub": "arn:${AWS::Partition}:x"},
		"D": map[string]any{"Fn::If": []any{"Cond",
			map[string]any{"Fn::Join": []any{",", []any{"a", "b"}}},
			map[string]any{"Ref": "AWS::NoValue"}}},
		"E": map[string]any{"Fn::Not": []any{map[string]any{"Fn::Equals": []any{map[string]any{"Ref": "P"}, ""}}}},
		"F": map[string]any{"Fn::Select": []any{0, map[string]any{"Fn::Split": []any{",", "a,b"}}}},
		"G": 900,
		"H": "900",
		"I": true,
	}
	if !equalJSON(got, want) {
		t.Errorf("parseCFN:\n got %#v\nwant %#v", got, want)
	}
	for _, bad := range []string{"A: !Bogus x\n", "A: 1\nA: 2\n", "A: &x 1\nB: *x\n", "A: !GetAtt NoDot\n", "- a\n"} {
		if _, err := parseCFN([]byte(bad)); err == nil {
			t.Errorf("parseCFN(%q) succeeded, want an error", bad)
		}
	}
}

// TestEvaluate checks the evaluator on every function templates use.
func TestEvaluate(t *testing.T) {
	raw, err := parseCFN([]byte(`
Parameters:
  Name: {Type: String, Default: dbusers, Description: d}
  List: {Type: CommaDelimitedList, Default: "", Description: d}
Conditions:
  HasList: !Not [!Equals [!Join [",", !Ref List], ""]]
  Both: !And [!Condition HasList, !Equals [!Ref Name, dbusers]]
Resources:
  Topic: {Type: AWS::SNS::Topic}
  Maybe: {Type: AWS::SNS::Topic, Condition: HasList}
  Out:
    Type: Test::Thing
    Properties:
      Sub: !Sub "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${Name} ${Topic} ${Topic.Arn} ${!Literal}"
      SubVars: !Sub ["${X}-${Name}", {X: !Ref Topic}]
      If: !If [HasList, !Ref List, !Ref AWS::NoValue]
      Items: [a, !If [Both, b, !Ref AWS::NoValue], c]
      Split: !Split [",", !Join [",", [x, !Join [",", !Ref List]]]]
      Select: !Select [1, [p, q]]
Outputs:
  Always: {Value: !Ref Topic}
  IfList: {Condition: HasList, Value: !GetAtt Maybe.Arn}
`))
	if err != nil {
		t.Fatal(err)
	}
	tpl := &template{file: "inline", raw: raw}
	for _, tc := range []struct {
		list string
		want map[string]any
	}{
		{"", map[string]any{
			"Sub":     "arn:aws:iam::123456789012:role/dbusers ref:Topic att:Topic.Arn ${Literal}",
			"SubVars": "ref:Topic-dbusers",
			"Items":   []any{"a", "c"},
			"Split":   []any{"x", ""},
			"Select":  "q",
		}},
		{"1,2", map[string]any{
			"Sub":     "arn:aws:iam::123456789012:role/dbusers ref:Topic att:Topic.Arn ${Literal}",
			"SubVars": "ref:Topic-dbusers",
			"If":      []any{"1", "2"},
			"Items":   []any{"a", "b", "c"},
			"Split":   []any{"x", "1", "2"},
			"Select":  "q",
		}},
	} {
		s, err := tpl.evaluate(map[string]string{"List": tc.list})
		if err != nil {
			t.Fatal(err)
		}
		if got := s.resource(t, "Out"); !equalJSON(got, tc.want) {
			t.Errorf("List=%q:\n got %#v\nwant %#v", tc.list, got, tc.want)
		}
		if got, want := s.active("Maybe"), tc.list != ""; got != want {
			t.Errorf("List=%q: Maybe active = %v, want %v", tc.list, got, want)
		}
		// An output whose condition fails is left out, not evaluated.
		outputs, err := s.outputs()
		want := map[string]any{"Always": "ref:Topic"}
		if tc.list != "" {
			want["IfList"] = "att:Maybe.Arn"
		}
		if err != nil || !equalJSON(outputs, want) {
			t.Errorf("List=%q: outputs %v (%v), want %v", tc.list, outputs, err, want)
		}
	}
	s, _ := tpl.evaluate(nil)
	if _, err := s.eval(map[string]any{"Ref": "Maybe"}); err == nil {
		t.Error("Ref to a resource left out by its condition succeeded")
	}
	if _, err := s.eval(map[string]any{"Ref": "Nothing"}); err == nil {
		t.Error("Ref to an unknown name succeeded")
	}
	if _, err := tpl.evaluate(map[string]string{"Nope": "x"}); err == nil {
		t.Error("evaluate accepted an unknown parameter")
	}
}

func isString(v any) bool { _, ok := v.(string); return ok }

// equalJSON compares decoded values, treating nil and empty alike.
func equalJSON(a, b any) bool {
	switch a := a.(type) {
	case map[string]any:
		bm, ok := b.(map[string]any)
		if !ok || len(a) != len(bm) {
			return false
		}
		for k := range a {
			if !equalJSON(a[k], bm[k]) {
				return false
			}
		}
		return true
	case []any:
		bs, ok := b.([]any)
		return ok && slices.EqualFunc(a, bs, equalJSON)
	}
	return fmt.Sprint(a) == fmt.Sprint(b)
}

// sortedKeys returns a map's keys in order, for messages.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
