// Package storetest is the conformance suite of store.Store: every
// implementation (SQLite now, PostgreSQL later) runs Run against a fresh,
// empty store per subtest, so they behave the same for their consumers.
package storetest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/relaycdp/relay/internal/store"
)

// Run runs the suite. open returns a new, empty store for each subtest; Run
// closes it when the subtest ends.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"RecordLookup", testRecordLookup},
		{"RecordPrecedence", testRecordPrecedence},
		{"RecordMergesFields", testRecordMergesFields},
		{"RecordHistory", testRecordHistory},
		{"RecordTruncatesDetail", testRecordTruncatesDetail},
		{"RecordInvalid", testRecordInvalid},
		{"UnsafeText", testUnsafeText},
		{"QueryLogSearch", testQueryLogSearch},
		{"QueryLogPaging", testQueryLogPaging},
		{"CountLog", testCountLog},
		{"PruneLog", testPruneLog},
		{"PruneReplayed", testPruneReplayed},
		{"PruneAudit", testPruneAudit},
		{"DeadLetterAddLookup", testDeadLetterAddLookup},
		{"DeadLetterAddIdempotent", testDeadLetterAddIdempotent},
		{"DeadLetterInvalid", testDeadLetterInvalid},
		{"DeadLetterList", testDeadLetterList},
		{"ReplayOne", testReplayOne},
		{"ReplayDestSince", testReplayDestSince},
		{"ReplayEnqueueFails", testReplayEnqueueFails},
		{"ReplayConcurrent", testReplayConcurrent},
		{"ReplayInvalid", testReplayInvalid},
		{"Sources", testSources},
		{"WriteKeyRevoke", testWriteKeyRevoke},
		{"WriteKeyConcurrent", testWriteKeyConcurrent},
		{"SeedSources", testSeedSources},
		{"SeedSourcesInvalid", testSeedSourcesInvalid},
		{"Settings", testSettings},
		{"SettingsInvalid", testSettingsInvalid},
		{"Audit", testAudit},
		{"DeletionLifecycle", testDeletionLifecycle},
		{"DeletionInvalid", testDeletionInvalid},
		{"ForgetUser", testForgetUser},
		{"ForgetUserByPhone", testForgetUserByPhone},
		{"DeletionClaim", testDeletionClaim},
		{"Suppressions", testSuppressions},
		{"SuppressionInvalid", testSuppressionInvalid},
		{"SuppressionKey", testSuppressionKey},
		{"DeletionWithSuppression", testDeletionWithSuppression},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

// at is a fixed time plus d, with microsecond precision, which every
// implementation can store exactly.
func at(d time.Duration) time.Time {
	return time.Date(2025, 6, 1, 12, 0, 0, 123456000, time.UTC).Add(d)
}

func record(t *testing.T, s store.Store, entries ...store.LogEntry) {
	t.Helper()
	if err := s.Record(context.Background(), entries); err != nil {
		t.Fatalf("Record: %v", err)
	}
}

func lookup(t *testing.T, s store.Store, messageID, dest string) store.LogEntry {
	t.Helper()
	e, err := s.LookupLog(context.Background(), messageID, dest)
	if err != nil {
		t.Fatalf("LookupLog(%q, %q): %v", messageID, dest, err)
	}
	return e
}

func query(t *testing.T, s store.Store, q store.LogQuery) []store.LogEntry {
	t.Helper()
	got, err := s.QueryLog(context.Background(), q)
	if err != nil {
		t.Fatalf("QueryLog(%+v): %v", q, err)
	}
	return got
}

func messageIDs(es []store.LogEntry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.MessageID
	}
	return out
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error %v, want %v", what, err, target)
	}
}

// noSecret fails if err's text contains secret.
func noSecret(t *testing.T, what string, err error, secret string) {
	t.Helper()
	if err != nil && secret != "" && strings.Contains(err.Error(), secret) {
		t.Fatalf("%s: error %q contains the secret", what, err)
	}
}
