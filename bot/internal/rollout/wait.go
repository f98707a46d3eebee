package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// ErrTimeout means the wait for a record ended before one came.
var ErrTimeout = errors.New("no rollout record came in time")

// Found is the record a wait ended with.
type Found struct {
	Record *Record
	Head   *Head
	// Version is the version whose record it is: the one waited for, or
	// the newer one that superseded it (SupersededBy is then set).
	Version      string
	SupersededBy string
}

// Progress is what a wait reports on every poll.
type Progress struct {
	Elapsed time.Duration
	// Current is the version the pointer names ("" when unknown).
	Current string
}

// Wait polls for the record of version every poll until it comes or ctx
// ends (ErrTimeout, with what was seen). A version that a newer publish
// superseded before any run read it never gets a record: the newer one's
// run applies both, and the first run of it reports for it. So once the
// pointer names a newer version, its record is waited for too, and taken
// when the version's own has not come: one run of a version runs at a
// time (the function's reserved concurrency is 1), so a newer version's
// record means no run of this one is still to finish. progress, when not
// nil, is called after every poll.
func Wait(ctx context.Context, api ReadAPI, pointer, version string, poll time.Duration, progress func(Progress)) (*Found, error) {
	if !ValidVersion(version) {
		return nil, fmt.Errorf("%q is not a version name (such as 20260301T090000Z-ad6aa65e5287)", version)
	}
	if poll <= 0 {
		poll = 5 * time.Second
	}
	start := time.Now()
	var current string
	for {
		r, h, err := Read(ctx, api, pointer, version)
		if err == nil {
			return &Found{Record: r, Head: h, Version: version}, nil
		}
		if !errors.Is(err, ErrNoRecord) && ctx.Err() == nil {
			return nil, err
		}
		if ctx.Err() == nil {
			if cur, err := CurrentVersion(ctx, api, pointer); err == nil {
				current = cur
			}
			if current > version && ValidVersion(current) {
				r, h, err := Read(ctx, api, pointer, current)
				switch {
				case err == nil:
					return &Found{Record: r, Head: h, Version: current, SupersededBy: current}, nil
				case !errors.Is(err, ErrNoRecord) && ctx.Err() == nil:
					return nil, err
				}
			}
		}
		if progress != nil {
			progress(Progress{Elapsed: time.Since(start), Current: current})
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, timeoutError(version, current, time.Since(start))
		case <-t.C:
		}
	}
}

func timeoutError(version, current string, waited time.Duration) error {
	where := "the pointer names it"
	switch {
	case current == "":
		where = "the pointer could not be read"
	case current < version:
		where = fmt.Sprintf("the pointer still names the older %s: was the publish interrupted?", current)
	case current > version:
		where = fmt.Sprintf("the pointer names the newer %s, which has no record either", current)
	}
	return fmt.Errorf("%w: no run of version %s finished within %s (%s). The function may be queued behind a long run "+
		"(it runs one at a time), its rules disabled, or failing before it reads the bundle: see its logs and the "+
		"dbusers-errors and dbusers-rollout-record alarms; `dbusers rollout --version %s` reads the record once it is there",
		ErrTimeout, version, waited.Round(time.Second), where, version)
}

// CurrentVersion returns the version the pointer parameter names. It is
// read without checking the signature: a wait uses it only to know which
// record to look for, and records are written by the Lambda, which
// checks.
func CurrentVersion(ctx context.Context, api ReadAPI, pointer string) (string, error) {
	out, err := api.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(pointer)})
	var nf *types.ParameterNotFound
	switch {
	case errors.As(err, &nf):
		return "", fmt.Errorf("pointer %s: nothing is published", pointer)
	case err != nil:
		return "", fmt.Errorf("read pointer %s: %w", pointer, err)
	case out.Parameter == nil:
		return "", fmt.Errorf("pointer %s is empty", pointer)
	}
	var p struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal([]byte(aws.ToString(out.Parameter.Value)), &p); err != nil || !ValidVersion(p.Version) {
		return "", fmt.Errorf("pointer %s names no version", pointer)
	}
	return p.Version, nil
}
