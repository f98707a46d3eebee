package fleet

import (
	"context"
	"log/slog"

	"github.com/dbusers/dbusers/bot/internal/ssmbundle"
)

// readBundle reads the published bundle once its pointer is signed by the
// configured key (or, with DBUSERS_ALLOW_UNSIGNED, unsigned), and records
// in rep what it is and who vouched for it. It is the only way a run gets
// a bundle: nothing else happens before it returns, so a refused bundle
// costs no STS, Secrets Manager or database call.
func (r *run) readBundle(ctx context.Context, log *slog.Logger, rep *Report) (*ssmbundle.Bundle, error) {
	trust := ssmbundle.Trust{AllowUnsigned: r.cfg.AllowUnsigned, Seen: r.deps.Seen}
	if r.cfg.SigningKeyARN != "" {
		keys := r.deps.Keys
		if keys == nil {
			keys = &ssmbundle.Keys{} // fails: no KMS client
		}
		key, err := keys.Get(ctx, r.cfg.SigningKeyARN)
		if err != nil {
			return nil, err
		}
		trust.Key = key
	}
	bundle, verdict, err := ssmbundle.Read(ctx, r.deps.SSM, r.cfg.Pointer, trust)
	if err != nil {
		r.refused = verdict.Version // what the refusal's rollout record is about
		return nil, err
	}
	rep.ConfigVersion, rep.Commit = bundle.Meta.Version, bundle.Meta.Commit
	attrs := []any{"config_version", bundle.Meta.Version, "published_at", verdict.PublishedAt}
	if verdict.KeyARN != "" {
		rep.SignedBy = verdict.KeyARN
		log.Info("bundle signature verified", append(attrs, "signing_key", verdict.KeyARN)...)
	} else {
		rep.Unsigned = true
		log.Warn("bundle used WITHOUT a verified signature because "+EnvAllowUnsigned+"=true: "+verdict.Unverified+
			"; anyone who can write the SSM parameters can change what this Lambda applies. "+
			"Publish with the signing key, then turn "+EnvAllowUnsigned+" off", attrs...)
	}
	return bundle, nil
}
