package main

import (
	"runtime/debug"
	"testing"
)

func TestSetMemoryLimit(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if got := setMemoryLimit(env(map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256"})); got != 256<<20*8/10 {
		t.Errorf("256 MB function: limit %d", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 256<<20*8/10 {
		t.Errorf("runtime limit %d", got)
	}
	for _, m := range []map[string]string{
		{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256", "GOMEMLIMIT": "100MiB"},
		{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "lots"},
		{},
	} {
		if got := setMemoryLimit(env(m)); got != -1 {
			t.Errorf("%v: limit %d, want none", m, got)
		}
	}
}
