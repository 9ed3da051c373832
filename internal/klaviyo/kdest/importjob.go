package kdest

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/relaycdp/relay/internal/destination"
	"github.com/relaycdp/relay/internal/klaviyo"
	"github.com/relaycdp/relay/internal/klaviyo/kapi"
)

func isImportJob(req klaviyo.Request) bool {
	return req.Method == "POST" && req.Path == "/api/profile-bulk-import-jobs"
}

// importJob is an accepted profile import job followed after its batch:
// what it takes to say, once the job finished, which of its items failed.
type importJob struct {
	id, apiKey string
	// items are the delivery jobs of each item of the request, in order:
	// the item's own, and those merged into it (batch.followers); only
	// their payloads are kept.
	items [][]destination.Job
}

// followImportJob settles the chunk of an accepted import job as
// delivered and follows the job in the background: Klaviyo validates a
// job's profiles after accepting it, and only the finished job's import
// errors say which items failed, which Config.Late then records
// (dead-lettered, marked dead in the log). Waiting in the batch instead
// would hold delivery for as long as Klaviyo takes. At most
// maxImportFollows jobs are followed at once, so the payloads kept stay
// bounded; a job past that is not followed (a warning names it).
func (b *batch) followImportJob(chunk []ref, resp *kapi.Response) {
	b.succeed(chunk)
	id, err := resp.DataID()
	if err != nil || id == "" {
		b.s.slog.Warn("profile import job: no job id in response; cannot check item errors")
		return
	}
	if b.s.cfg.Late == nil {
		return // nothing would record what the job says
	}
	job := importJob{id: id, apiKey: b.settings.PrivateAPIKey, items: make([][]destination.Job, len(chunk))}
	b.mu.Lock()
	for i, r := range chunk {
		for _, r := range append([]ref{r}, b.followers[r]...) {
			j := destination.Job{Job: b.items[r.item].job}
			// Delivery may reuse the claim's buffers once the batch is settled.
			j.Payload = bytes.Clone(j.Payload)
			job.items[i] = append(job.items[i], j)
		}
	}
	b.mu.Unlock()
	select {
	case b.s.follows <- struct{}{}:
	default:
		// Never hold delivery for it: events wait behind a blocked batch,
		// and Klaviyo may take minutes to validate a job.
		b.s.slog.Warn("profile import job not followed: as many jobs are followed already; its item errors are not checked",
			slog.String("job", id), slog.Int("followed", maxImportFollows))
		return
	}
	b.s.following.Go(func() {
		defer func() { <-b.s.follows }()
		b.s.settleImportJob(job)
	})
}

// settleImportJob waits for the job to finish, reads its import errors and
// reports each failed item's delivery job Dead through Config.Late.
func (s *Sink) settleImportJob(job importJob) {
	ctx, cancel := context.WithTimeout(s.life, s.cfg.ImportJobTimeout)
	defer cancel()
	done := s.waitImportJob(ctx, job.apiKey, job.id)
	if done == nil || done.FailedCount == 0 {
		return
	}
	errs, err := s.send.ImportErrors(ctx, job.apiKey, job.id)
	if err != nil {
		s.slog.Warn("profile import job errors", slog.String("job", job.id), slog.Any("err", err))
	}
	var (
		jobs       []destination.Job
		results    []destination.Result
		seen       = map[int64]bool{}
		attributed int // import errors that named an item
	)
	for _, e := range errs {
		idx, ok := klaviyo.ItemIndex(e.Pointer)
		if !ok || idx < 0 || idx >= len(job.items) {
			continue
		}
		detail := strings.TrimSpace(e.Detail)
		if detail == "" {
			detail = e.Title
		}
		attributed++
		for _, j := range job.items[idx] {
			if seen[j.ID] {
				continue
			}
			seen[j.ID] = true
			jobs = append(jobs, j)
			results = append(results, destination.Result{Outcome: destination.Dead, Status: 400, Code: e.Code, Pointer: e.Pointer,
				Detail: fmt.Sprintf("profile import job %s: %s", job.id, detail)})
		}
	}
	if done.FailedCount > attributed {
		s.slog.Warn("profile import job reports failures it does not attribute",
			slog.String("job", job.id), slog.Int("failed", done.FailedCount), slog.Int("attributed", attributed))
	}
	if len(jobs) == 0 {
		return
	}
	// Recorded even when following ran out of time: the store is there
	// until the sink is closed.
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer rcancel()
	if err := s.cfg.Late(rctx, jobs, results); err != nil {
		s.slog.Error("record profile import job failures", slog.String("job", job.id), slog.Any("err", err))
	}
}

// waitImportJob polls the job until it is done or ctx ends; nil when it
// did not finish.
func (s *Sink) waitImportJob(ctx context.Context, apiKey, id string) *kapi.ImportJob {
	// Jobs take seconds at Klaviyo; the job status endpoint has its own
	// budget (150/min per key), shared by every poll of every job.
	wait := 250 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			if s.life.Err() == nil {
				s.slog.Warn("profile import job did not finish in time; its item errors are not checked", slog.String("job", id))
			}
			return nil
		case <-time.After(wait):
		}
		wait = min(wait*2, 5*time.Second)
		job, err := s.send.GetProfileImportJob(ctx, apiKey, id)
		if err == nil && job.Done() {
			return job
		}
		if err != nil && kapi.ClassOf(err) == kapi.Permanent {
			s.slog.Warn("profile import job status", slog.String("job", id), slog.Any("err", err))
			return nil
		}
	}
}
