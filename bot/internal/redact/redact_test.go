package redact

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

type driverError struct{ msg string }

func (e *driverError) Error() string { return e.msg }

func TestError(t *testing.T) {
	if Error(nil, "pw") != nil {
		t.Error("nil error became non-nil")
	}
	plain := &driverError{"access denied"}
	if got := Error(plain, "hunter2"); got != error(plain) {
		t.Errorf("an error without the secret was replaced: %v", got)
	}
	var de *driverError
	if !errors.As(Error(plain, "hunter2"), &de) {
		t.Error("errors.As lost the driver's error although nothing was redacted")
	}

	leaky := fmt.Errorf("cluster a: %w", fmt.Errorf("near 'hunter2' at line 1: %w", context.DeadlineExceeded))
	got := Error(leaky, "hunter2", "")
	if strings.Contains(got.Error(), "hunter2") || !strings.Contains(got.Error(), "near '<redacted>'") {
		t.Errorf("Error = %q", got)
	}
	if !errors.Is(got, context.DeadlineExceeded) {
		t.Error("errors.Is lost the wrapped error")
	}
	if errors.As(got, &de) {
		t.Error("errors.As reached an error whose text holds the secret")
	}
}

func TestStringLongestFirst(t *testing.T) {
	if got := String("pw is abcabc", "abc", "abcabc"); got != "pw is <redacted>" {
		t.Errorf("String = %q", got)
	}
	if got := String("nothing", ""); got != "nothing" {
		t.Errorf("an empty secret changed the text: %q", got)
	}
}
