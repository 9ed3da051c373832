package kdest

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/relaycdp/relay/internal/klaviyo"
	"github.com/relaycdp/relay/internal/klaviyo/kapi"
)

func isImportJob(req klaviyo.Request) bool {
	return req.Method == "POST" && req.Path == "/api/profile-bulk-import-jobs"
}

// settleImportJob follows a profile bulk import job until it finishes, because
// Klaviyo validates its profiles asynchronously: only the finished job says
// which items failed. Items the job names fail permanently; the rest are
// delivered. A job that does not finish in time is treated as delivered:
// Klaviyo accepted it and will process it, and resending could only repeat
// the same upserts.
func (b *batch) settleImportJob(ctx context.Context, chunk []ref, resp *kapi.Response) {
	id, err := resp.DataID()
	if err != nil || id == "" {
		b.s.slog.Warn("profile import job: no job id in response; cannot check item errors")
		b.succeed(chunk)
		return
	}
	job := b.waitImportJob(ctx, id)
	if job == nil {
		b.succeed(chunk)
		return
	}
	failed := map[int]kapi.ImportError{}
	for _, e := range job.ImportErrors {
		if idx, ok := klaviyo.ItemIndex(e.Pointer); ok && idx >= 0 && idx < len(chunk) {
			failed[idx] = e
		}
	}
	if job.FailedCount > len(failed) {
		b.s.slog.Warn("profile import job reports failures it does not attribute",
			slog.String("job", id), slog.Int("failed", job.FailedCount), slog.Int("attributed", len(failed)))
	}
	var ok []ref
	for i, r := range chunk {
		e, bad := failed[i]
		if !bad {
			ok = append(ok, r)
			continue
		}
		detail := e.Detail
		if detail == "" {
			detail = e.Title
		}
		b.fail(r, &failure{status: 400, code: e.Code, pointer: e.Pointer,
			detail: fmt.Sprintf("profile import job %s: %s", id, strings.TrimSpace(detail))}, false)
	}
	b.succeed(ok)
}

// waitImportJob polls the job until it is done, ctx ends or
// ImportJobTimeout passes; nil when it did not finish.
func (b *batch) waitImportJob(ctx context.Context, id string) *kapi.ImportJob {
	ctx, cancel := context.WithTimeout(ctx, b.s.cfg.ImportJobTimeout)
	defer cancel()
	// Jobs take seconds at Klaviyo; the job status endpoint has its own
	// budget (150/min per key), shared by every poll of every batch.
	wait := 250 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			b.s.slog.Warn("profile import job did not finish in time", slog.String("job", id))
			return nil
		case <-time.After(wait):
		}
		wait = min(wait*2, 5*time.Second)
		job, err := b.s.send.GetProfileImportJob(ctx, b.settings.PrivateAPIKey, id)
		if err == nil && job.Done() {
			return job
		}
		if err != nil && kapi.ClassOf(err) == kapi.Permanent {
			b.s.slog.Warn("profile import job status", slog.String("job", id), slog.Any("err", err))
			return nil
		}
	}
}
