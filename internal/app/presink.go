package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/relaycdp/relay/internal/console"
	"github.com/relaycdp/relay/internal/delivery"
	"github.com/relaycdp/relay/internal/destination"
	"github.com/relaycdp/relay/internal/presink"
	"github.com/relaycdp/relay/internal/spec"
	"github.com/relaycdp/relay/internal/store"
)

// preSinkFor is delivery's Config.PreSink for destinations whose
// settings carry a transformation, filter and privacy policy
// (presink.Carrier: Klaviyo's, the Webhook's); nil for the others.
func (d *dest) preSinkFor() func(context.Context, string, *spec.Event) (delivery.PreSinkResult, error) {
	if _, ok := d.current().(presink.Carrier); !ok {
		return nil
	}
	return func(ctx context.Context, source string, ev *spec.Event) (delivery.PreSinkResult, error) {
		c, _ := d.current().(presink.Carrier)
		res, err := d.stage.Run(ctx, c.PreSink(), source, ev)
		if err != nil {
			return delivery.PreSinkResult{}, err
		}
		return delivery.PreSinkResult{Events: res.Events, Skipped: res.Skipped, Sent: res.Sent, Dropped: res.Dropped, Audit: res.Active}, nil
	}
}

// stagesOf is the instance's own pre-sink stages, when it has any.
func stagesOf(in destination.Instance) []destination.Stage {
	if s, ok := in.(interface{ Stages() []destination.Stage }); ok {
		return s.Stages()
	}
	return nil
}

// waitingOf is the instance's reason it cannot send yet ("" when it can).
func waitingOf(in destination.Instance) func() string {
	if w, ok := in.(interface{ Waiting() string }); ok {
		return w.Waiting
	}
	return func() string { return "" }
}

// audit is delivery's Config.Audit when the store keeps an audit log.
func (a *App) audit() func(context.Context, []store.AuditEntry) error {
	if al, ok := a.store.(store.AuditLog); ok {
		return al.RecordAudit
	}
	return nil
}

// auditReader is the console's view of the audit log, nil without one.
func (a *App) auditReader() store.AuditReader {
	if al, ok := a.store.(store.AuditLog); ok {
		return al
	}
	return nil
}

// maxTransformationVersions bounds the editor's history per destination.
const maxTransformationVersions = 50

// transformationVersions keeps the console editor's saved transformations
// in the settings store under "transformation-versions:<dest>" (as the
// config hash is kept), so both store backends have them with no schema.
type transformationVersions struct{ st store.SettingsStore }

func (t transformationVersions) key(dest string) string { return "transformation-versions:" + dest }

func (t transformationVersions) TransformationVersions(ctx context.Context, dest string) ([]console.TransformationVersion, error) {
	ds, err := t.st.DestSettings(ctx, t.key(dest))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var vs []console.TransformationVersion
	if err := json.Unmarshal(ds.Settings, &vs); err != nil {
		return nil, fmt.Errorf("transformation versions of %s: %w", dest, err)
	}
	return vs, nil
}

func (t transformationVersions) AddTransformationVersion(ctx context.Context, dest string, v console.TransformationVersion) error {
	vs, err := t.TransformationVersions(ctx, dest)
	if err != nil {
		return err
	}
	vs = append(vs, v)
	if len(vs) > maxTransformationVersions {
		vs = vs[len(vs)-maxTransformationVersions:]
	}
	raw, err := json.Marshal(vs)
	if err != nil {
		return err
	}
	_, err = t.st.PutDestSettings(ctx, t.key(dest), raw, store.AnyVersion)
	return err
}
