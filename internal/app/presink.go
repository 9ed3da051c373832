package app

import (
	"context"

	"github.com/relaycdp/relay/internal/delivery"
	"github.com/relaycdp/relay/internal/klaviyo"
	"github.com/relaycdp/relay/internal/spec"
	"github.com/relaycdp/relay/internal/store"
)

// preSink is delivery's Config.PreSink: the destination's transformation,
// filter and privacy policy (internal/presink).
func (d *destination) preSink(ctx context.Context, s klaviyo.Settings, source string, ev *spec.Event) (delivery.PreSinkResult, error) {
	res, err := d.stage.Run(ctx, s, source, ev)
	if err != nil {
		return delivery.PreSinkResult{}, err
	}
	return delivery.PreSinkResult{Events: res.Events, Skipped: res.Skipped, Sent: res.Sent, Dropped: res.Dropped, Audit: res.Active}, nil
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
