package queue

import (
	"context"
	"runtime/trace"
	"time"
)

// The WAL is copied back into the database file by a goroutine of its own
// (checkpointLoop) on its own connection, not by the writer. SQLite's
// automatic checkpoint runs inside the COMMIT that crosses its threshold:
// with ingest writing ~50 MB/s of WAL, one commit in twenty carried a
// 16 MiB checkpoint and took 40–60 ms, and every request waiting for that
// commit (and the next batch behind it) got that as its latency tail. A
// PASSIVE checkpoint never blocks the writer: they take different locks,
// and it copies only frames no reader still needs.
//
// The writer keeps an automatic checkpoint as a safety net at a threshold
// the background loop normally never lets the WAL reach; when it does
// fire, the background loop has already copied most frames, so it is short.

// checkpointEvery is how often the background checkpoint runs.
const checkpointEvery = 100 * time.Millisecond

// writerAutoCheckpointPages is the writer's safety-net threshold (64 MiB
// of 4 KiB pages).
const writerAutoCheckpointPages = 16384

// checkpointLoop runs PASSIVE checkpoints until stop is closed.
func (s *SQLite) checkpointLoop(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	var lastWarn time.Time
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		// A failed pass is left for the next tick or the writer's safety
		// net; nothing depends on one pass. Warned about once a minute.
		reg := trace.StartRegion(context.Background(), "queue-checkpoint")
		_, err := s.cdb.ExecContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)")
		reg.End()
		if err != nil && time.Since(lastWarn) > time.Minute {
			lastWarn = time.Now()
			s.log.Warn("queue: background WAL checkpoint failed", "err", err)
		}
	}
}
