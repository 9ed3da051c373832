package queue

import (
	"context"
	"strings"
)

// ExplainHotQueries returns SQLite's query plan for each statement that
// runs constantly, for TestQueryPlans.
func (s *SQLite) ExplainHotQueries(ctx context.Context) map[string]string {
	queries := map[string]struct {
		sql  string
		args []any
	}{
		"scan":           {sqlScan, []any{"a", 0, 10}},
		"claim":          {sqlClaim, []any{1, 1, "[1,2]"}},
		"succeed":        {sqlSucceed, []any{"[1,2]"}},
		"retry":          {sqlRetry, []any{"[1,2]", 1, "x", 1}},
		"oldest":         {sqlOldest, []any{"a"}},
		"forget-aborted": {`DELETE FROM jobs WHERE state = 'aborted'`, nil},
	}
	out := map[string]string{}
	for name, q := range queries {
		rows, err := s.rdb.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q.sql, q.args...)
		if err != nil {
			out[name] = "SCAN jobs (explain failed: " + err.Error() + ")"
			continue
		}
		var lines []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				lines = append(lines, "SCAN jobs (scan failed: "+err.Error()+")")
				break
			}
			lines = append(lines, detail)
		}
		rows.Close()
		out[name] = strings.Join(lines, "\n")
	}
	return out
}

// CommitStats reports how many transactions the writer committed and the
// rows (messages or ids) they carried.
func (s *SQLite) CommitStats() (commits, rows int64) {
	return s.commits.Load(), s.committedRows.Load()
}

// SubmitFailing submits a write that fails inside the batch transaction,
// to exercise the writer's isolation of a failing request.
func (s *SQLite) SubmitFailing(ctx context.Context) error {
	return s.submit(ctx, synced, 1, func(w *wtx) error {
		_, err := w.tx.ExecContext(w.ctx, "INSERT INTO no_such_table VALUES (1)")
		return err
	})
}

// Path is the queue's database file.
func (s *SQLite) Path() string { return s.path }

// EncodeInboxForTest is encodeInbox, for tests that write queue files of
// earlier versions by hand.
func EncodeInboxForTest(msgs []Message) []byte { return encodeInbox(msgs) }

// SubmitProbe submits a write that does nothing but report, when it runs,
// whether its transaction commits with fsync.
func (s *SQLite) SubmitProbe(ctx context.Context, durable bool, ran func(fsync bool)) error {
	d := unsynced
	if durable {
		d = synced
	}
	return s.submit(ctx, d, 1, func(*wtx) error {
		ran(s.syncFull)
		return nil
	})
}
