package sim

import (
	"sync"
	"time"

	"github.com/google/uuid"
)

// Job types, as Klaviyo names the resources.
const (
	jobEvents      = "event-bulk-create-job"
	jobImport      = "profile-bulk-import-job"
	jobSubscribe   = "profile-subscription-bulk-create-job"
	jobUnsubscribe = "profile-subscription-bulk-delete-job"
)

// pendingJob is a job waiting for the worker. Jobs run in the order they
// were accepted (all have the same delay), so a profile import accepted
// before a subscription job is applied before it.
type pendingJob struct {
	state     *JobState // shared with store.jobs; mutated under Sim.mu
	gen       uuid.UUID
	processAt time.Time // real time: queued → processing
	dueAt     time.Time // real time: applied, complete
	apply     func(st *store, now time.Time)
}

type jobQueue struct {
	mu      sync.Mutex
	pending []*pendingJob
	wake    chan struct{}
}

func newJobQueue() *jobQueue { return &jobQueue{wake: make(chan struct{}, 1)} }

func (q *jobQueue) clear() {
	q.mu.Lock()
	q.pending = nil
	q.mu.Unlock()
}

// enqueue registers a job in the store (caller holds Sim.mu) and hands it to
// the worker.
func (s *Sim) enqueueJob(st *store, js *JobState, apply func(st *store, now time.Time)) {
	st.jobs[js.ID] = js
	st.jobOrder = append(st.jobOrder, js)
	now := time.Now()
	s.jobs.mu.Lock()
	s.jobs.pending = append(s.jobs.pending, &pendingJob{state: js, gen: st.gen,
		processAt: now.Add(s.jobDelay / 2), dueAt: now.Add(s.jobDelay), apply: apply})
	s.jobs.mu.Unlock()
	select {
	case s.jobs.wake <- struct{}{}:
	default:
	}
}

func (s *Sim) runJobs() {
	defer s.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if next := s.stepJobs(); next > 0 {
			timer.Reset(next)
		} else {
			timer.Reset(time.Hour)
		}
		select {
		case <-s.closing:
			return
		case <-s.jobs.wake:
		case <-timer.C:
		}
	}
}

// stepJobs advances every job whose time has come and returns the wait
// until the next step (0 when nothing is pending).
func (s *Sim) stepJobs() time.Duration {
	for {
		s.jobs.mu.Lock()
		if len(s.jobs.pending) == 0 {
			s.jobs.mu.Unlock()
			return 0
		}
		j := s.jobs.pending[0]
		real := time.Now()
		due := !real.Before(j.dueAt)
		if due {
			s.jobs.pending = s.jobs.pending[1:]
		}
		s.jobs.mu.Unlock()

		if !due && real.Before(j.processAt) {
			return j.processAt.Sub(real)
		}
		s.mu.Lock()
		if s.data.gen == j.gen {
			now := s.now()
			if j.state.Status == "queued" {
				j.state.Status = "processing"
				j.state.StartedAt = &now
			}
			if due {
				j.apply(s.data, now)
				j.state.Status = "complete"
				j.state.CompletedAt = &now
			}
		}
		s.mu.Unlock()
		if !due {
			return j.dueAt.Sub(real)
		}
	}
}
