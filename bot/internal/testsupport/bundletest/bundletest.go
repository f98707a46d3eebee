// Package bundletest writes configuration bundles to SSM the way someone
// allowed to write the parameters could, without `dbusers publish`: a
// bundle consistent in every hash, written with the SSM client directly,
// unsigned or with whatever key and signature they choose. The tests of
// every reader use it to show what they refuse.
//
// Like net/http/httptest it is an ordinary package that only tests import.
package bundletest

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/dbusers/dbusers/bot/internal/ssmbundle"
)

// Forge writes content as a new version under pointer, chunks first and
// the pointer last, as publish would but without signing: the pointer's
// hashes are right, its signature is what edit (nil: none) makes it. It
// returns the pointer written.
func Forge(tb testing.TB, api ssmbundle.API, pointer string, c ssmbundle.Content, o ssmbundle.Origin, edit func(*ssmbundle.Pointer)) ssmbundle.Pointer {
	tb.Helper()
	p, chunks, err := ssmbundle.Pack(c, o, ssmbundle.StandardLimit)
	if err != nil {
		tb.Fatal(err)
	}
	for i, chunk := range chunks {
		Put(tb, api, ssmbundle.ChunkName(pointer, p.Version, i), chunk)
	}
	if edit != nil {
		edit(&p)
	}
	WritePointer(tb, api, pointer, p)
	return p
}

// ReadPointer returns the pointer parameter's value, decoded.
func ReadPointer(tb testing.TB, api ssmbundle.API, pointer string) ssmbundle.Pointer {
	tb.Helper()
	var p ssmbundle.Pointer
	if err := json.Unmarshal([]byte(Get(tb, api, pointer)), &p); err != nil {
		tb.Fatalf("pointer %s: %v", pointer, err)
	}
	return p
}

// WritePointer writes p as the pointer parameter's value.
func WritePointer(tb testing.TB, api ssmbundle.API, pointer string, p ssmbundle.Pointer) {
	tb.Helper()
	data, err := json.Marshal(p)
	if err != nil {
		tb.Fatal(err)
	}
	Put(tb, api, pointer, string(data))
}

// EditPointer rewrites the pointer parameter after edit changes it, and
// leaves everything else (the signature included) as it was.
func EditPointer(tb testing.TB, api ssmbundle.API, pointer string, edit func(*ssmbundle.Pointer)) {
	tb.Helper()
	p := ReadPointer(tb, api, pointer)
	edit(&p)
	WritePointer(tb, api, pointer, p)
}

// Get returns one parameter's value.
func Get(tb testing.TB, api ssmbundle.API, name string) string {
	tb.Helper()
	out, err := api.GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String(name)})
	if err != nil {
		tb.Fatalf("get %s: %v", name, err)
	}
	return aws.ToString(out.Parameter.Value)
}

// Put writes one String parameter.
func Put(tb testing.TB, api ssmbundle.API, name, value string) {
	tb.Helper()
	if _, err := api.PutParameter(context.Background(), &ssm.PutParameterInput{
		Name: aws.String(name), Value: aws.String(value), Type: types.ParameterTypeString, Overwrite: aws.Bool(true),
	}); err != nil {
		tb.Fatalf("put %s: %v", name, err)
	}
}

// ChangeChunk rewrites chunk i of the version p names, changing one
// character in its middle, and leaves the pointer as it is.
func ChangeChunk(tb testing.TB, api ssmbundle.API, pointer string, p ssmbundle.Pointer, i int) {
	tb.Helper()
	name := ssmbundle.ChunkName(pointer, p.Version, i)
	v := []byte(Get(tb, api, name))
	mid := len(v) / 2
	if v[mid] == 'A' {
		v[mid] = 'B'
	} else {
		v[mid] = 'A'
	}
	Put(tb, api, name, string(v))
}
