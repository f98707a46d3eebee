package importer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/dbusers/dbusers/bot/internal/config"
)

// The files are written the way this repository's hand-written ones are:
// two-space indentation, one access entry per line. A file that exists is
// extended in place, its bytes untouched but for the entries inserted
// after its last one, so a diff shows exactly what import adds.

func str(s string) string {
	data, _ := json.Marshal(s)
	return string(data)
}

func list(ss []string) string {
	quoted := make([]string, len(ss))
	for i, s := range ss {
		quoted[i] = str(s)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

// accessLine renders one access entry on one line.
func accessLine(a config.Access) string {
	var parts []string
	if len(a.Clusters) > 0 {
		parts = append(parts, `"clusters": `+list(a.Clusters))
	}
	if len(a.Environments) > 0 {
		parts = append(parts, `"environments": `+list(a.Environments))
	}
	parts = append(parts, `"databases": `+list(a.Databases), `"role": `+str(a.Role))
	if a.Expires != "" {
		parts = append(parts, `"expires": `+str(a.Expires))
	}
	if a.Reason != "" {
		parts = append(parts, `"reason": `+str(a.Reason))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// renderUser writes a new user file.
func renderUser(u config.User) []byte {
	var b strings.Builder
	b.WriteString("{\n")
	field := func(k, v string) { fmt.Fprintf(&b, "  %s: %s,\n", str(k), v) }
	if u.Schema != "" {
		field("$schema", str(u.Schema))
	}
	field("name", str(u.Name))
	if u.Description != "" {
		field("description", str(u.Description))
	}
	field("owner", str(u.Owner))
	field("kind", str(u.Kind))
	auth := `{"type": ` + str(u.Auth.Method())
	if u.Auth.Secret != "" {
		auth += `, "secret": ` + str(u.Auth.Secret)
	}
	field("auth", auth+"}")
	b.WriteString("  \"access\": [\n")
	for i, a := range u.Access {
		b.WriteString("    " + accessLine(a))
		if i < len(u.Access)-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString("  ]\n}\n")
	return []byte(b.String())
}

// members scans a JSON object document and reports, for the top-level
// member named key, the offsets just after each element (an array) or
// member value (an object) inside it, and just after its opening bracket.
// after is the offset just after the value of the member named afterKey.
type scan struct {
	found      bool
	open       int   // just after [ or {
	ends       []int // just after each element or member value
	afterValue int   // just after the value of afterKey, 0 if absent
	topOpen    int   // just after the document's {
}

func scanMember(src []byte, key, afterKey string) (scan, error) {
	var s scan
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return s, errors.New("not a JSON object")
	}
	s.topOpen = int(dec.InputOffset())
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return s, err
		}
		name, _ := k.(string)
		if name != key {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return s, err
			}
			if name == afterKey {
				s.afterValue = int(dec.InputOffset())
			}
			continue
		}
		s.found = true
		tok, err := dec.Token()
		if err != nil {
			return s, err
		}
		d, ok := tok.(json.Delim)
		if !ok || (d != '[' && d != '{') {
			return s, fmt.Errorf("%s is not an array or object", key)
		}
		s.open = int(dec.InputOffset())
		for dec.More() {
			if d == '{' {
				if _, err := dec.Token(); err != nil { // the member's key
					return s, err
				}
			}
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return s, err
			}
			s.ends = append(s.ends, int(dec.InputOffset()))
		}
		if _, err := dec.Token(); err != nil { // ] or }
			return s, err
		}
		if name == afterKey {
			s.afterValue = int(dec.InputOffset())
		}
	}
	if _, err := dec.Token(); err != nil && err != io.EOF {
		return s, err
	}
	return s, nil
}

// appendAccess inserts access entries after the last one of a user file.
func appendAccess(src []byte, adds []config.Access) ([]byte, error) {
	s, err := scanMember(src, "access", "")
	if err != nil {
		return nil, err
	}
	if !s.found {
		return nil, errors.New("has no access list")
	}
	var ins strings.Builder
	for i, a := range adds {
		if len(s.ends) > 0 || i > 0 {
			ins.WriteString(",")
		}
		ins.WriteString("\n    " + accessLine(a))
	}
	at := s.open
	if len(s.ends) > 0 {
		at = s.ends[len(s.ends)-1]
	} else {
		ins.WriteString("\n  ")
	}
	return splice(src, at, ins.String()), nil
}

// addRoles inserts role templates into dbusers.json: after the last role
// of "roles", or as a new "roles" after "prefix".
func addRoles(src []byte, roles []Role) ([]byte, error) {
	s, err := scanMember(src, "roles", "prefix")
	if err != nil {
		return nil, err
	}
	var ins strings.Builder
	for i, r := range roles {
		if (s.found && len(s.ends) > 0) || i > 0 {
			ins.WriteString(",")
		}
		fmt.Fprintf(&ins, "\n    %s: {\n      \"description\": %s,\n", str(r.Name),
			str("Proposed by dbusers import for "+strings.Join(r.Accounts, ", ")+": name and describe it."))
		if len(r.Extends) > 0 {
			fmt.Fprintf(&ins, "      \"extends\": %s,\n", list(r.Extends))
		}
		fmt.Fprintf(&ins, "      \"privileges\": %s\n    }", list(r.Privileges))
	}
	switch {
	case s.found && len(s.ends) > 0:
		return splice(src, s.ends[len(s.ends)-1], ins.String()), nil
	case s.found:
		return splice(src, s.open, ins.String()+"\n  "), nil
	case s.afterValue > 0:
		return splice(src, s.afterValue, ",\n  \"roles\": {"+ins.String()+"\n  }"), nil
	}
	return splice(src, s.topOpen, "\n  \"roles\": {"+ins.String()+"\n  },"), nil
}

func splice(src []byte, at int, ins string) []byte {
	out := make([]byte, 0, len(src)+len(ins))
	out = append(out, src[:at]...)
	out = append(out, ins...)
	return append(out, src[at:]...)
}
