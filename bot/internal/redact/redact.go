// Package redact removes secrets from errors before anyone sees them. A
// server may echo part of a failed statement ("near '...'"), and a driver
// may quote what it was given; every error that could hold a password
// passes through Error before it is logged, reported or returned.
package redact

import (
	"errors"
	"strings"
)

// Replacement stands where a secret was.
const Replacement = "<redacted>"

// Error returns err with every occurrence of each secret replaced. When no
// secret occurs in its text, err itself is returned, so errors.As still
// reaches the driver's error. Otherwise the result prints only the cleaned
// text and keeps errors.Is working on the original; it does not unwrap,
// because errors.As would hand out the original and its text.
func Error(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := String(msg, secrets...)
	if clean == msg {
		return err
	}
	return &redacted{msg: clean, err: err}
}

// String returns s with every occurrence of each secret replaced; empty
// secrets are ignored. Longer secrets are replaced first, so that a secret
// that contains another is replaced whole.
func String(s string, secrets ...string) string {
	var list []string
	for _, sec := range secrets {
		if sec != "" && strings.Contains(s, sec) {
			list = append(list, sec)
		}
	}
	if len(list) == 0 {
		return s
	}
	// Longest first.
	for i := 1; i < len(list); i++ {
		for j := i; j > 0 && len(list[j]) > len(list[j-1]); j-- {
			list[j], list[j-1] = list[j-1], list[j]
		}
	}
	for _, sec := range list {
		s = strings.ReplaceAll(s, sec, Replacement)
	}
	return s
}

// redacted prints its cleaned text and answers errors.Is for the original.
type redacted struct {
	msg string
	err error
}

func (e *redacted) Error() string { return e.msg }

func (e *redacted) Is(target error) bool { return errors.Is(e.err, target) }
