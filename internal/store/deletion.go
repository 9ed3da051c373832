package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DeletionState is a user deletion request's place in its life:
// pending → running → done | failed; a running request whose process died
// is resumed (it is due again), a failed attempt that will be retried goes
// back to pending with NextAt.
type DeletionState string

// Deletion states.
const (
	DeletionPending DeletionState = "pending"
	DeletionRunning DeletionState = "running"
	DeletionDone    DeletionState = "done"
	DeletionFailed  DeletionState = "failed" // gave up; LastError says why
)

// Valid reports whether s is one of the constants.
func (s DeletionState) Valid() bool {
	switch s {
	case DeletionPending, DeletionRunning, DeletionDone, DeletionFailed:
		return true
	}
	return false
}

// DeletionSubject identifies the user to forget; at least one field.
type DeletionSubject struct {
	UserID string
	Email  string // compared case-insensitively
	Phone  string // E.164 when it reaches Klaviyo
}

// Empty reports whether no identifier is set.
func (s DeletionSubject) Empty() bool { return s.UserID == "" && s.Email == "" && s.Phone == "" }

// Redacted replaces each identifier by a short fingerprint, so a finished
// request proves what was deleted without keeping the personal data.
func (s DeletionSubject) Redacted() DeletionSubject {
	fp := func(v string) string {
		if v == "" || strings.HasPrefix(v, redactedPrefix) {
			return v
		}
		h := sha256.Sum256([]byte(strings.ToLower(v)))
		return redactedPrefix + hex.EncodeToString(h[:6])
	}
	return DeletionSubject{UserID: fp(s.UserID), Email: fp(s.Email), Phone: fp(s.Phone)}
}

const redactedPrefix = "sha256:"

// DeletionStep is one part of a deletion's work, with what it did.
type DeletionStep struct {
	Name   string `json:"name"`
	Done   bool   `json:"done"`
	Detail string `json:"detail,omitempty"`
}

// Deletion is a durable user deletion request.
type Deletion struct {
	ID      int64 // assigned by CreateDeletions
	Subject DeletionSubject
	// Origin says how it was asked: rudderstack, segment, cli, api.
	Origin string
	// LocalOnly: forget the user in Relay only, ask no destination
	// (Segment's DELETE_INTERNAL).
	LocalOnly bool
	// Dests limits the destinations asked; empty means every one.
	Dests     []string
	State     DeletionState
	Attempts  int
	LastError string // cut to MaxDetail
	Steps     []DeletionStep
	NextAt    time.Time // a pending request is due from then (zero: now)
	// LeaseUntil: a running request belongs to the node that claimed it
	// until then (ClaimDeletions); afterwards its node is taken as dead.
	LeaseUntil time.Time
	// Suppress, when set at CreateDeletions, is stored with the request in
	// its transaction, under the regulation id DeletionRegulation(ID)
	// (SUPPRESS_WITH_DELETE). Not read back.
	Suppress  *Suppression
	CreatedAt time.Time
	UpdatedAt time.Time
}

// DeletionQuery selects deletions, newest first.
type DeletionQuery struct {
	State DeletionState // empty: any
	Limit int           // default 50, at most 1000
}

// Forgotten counts what ForgetUser removed.
type Forgotten struct {
	LogRows     int64
	DeadLetters int64
	// AuditEntries are the audit log entries whose identifiers were
	// blanked: the entries (keys sent and dropped, never values) stay.
	AuditEntries int64
}

// DeletionStore keeps user deletion requests and forgets users.
type DeletionStore interface {
	// CreateDeletions stores ds (state pending) in one transaction and
	// sets their ID, State and CreatedAt: once it returned nil the
	// requests survive a crash.
	CreateDeletions(ctx context.Context, ds []Deletion) error
	// Deletion returns one request, or ErrNotFound.
	Deletion(ctx context.Context, id int64) (Deletion, error)
	ListDeletions(ctx context.Context, q DeletionQuery) ([]Deletion, error)
	// DueDeletions returns up to limit requests to work on, oldest first:
	// pending ones whose NextAt has come, and running ones whose lease
	// ended (their worker died; the steps they finished are marked done).
	DueDeletions(ctx context.Context, now time.Time, limit int) ([]Deletion, error)
	// ClaimDeletions is DueDeletions for a worker: it also marks them
	// running with LeaseUntil = now + lease, atomically, so several nodes
	// sharing the store never work one request at once.
	ClaimDeletions(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Deletion, error)
	// ExtendDeletionLease moves a running request's lease to until (the
	// worker's heartbeat during a long step); other states are left alone.
	ExtendDeletionLease(ctx context.Context, id int64, until time.Time) error
	// UpdateDeletion saves d's State, Attempts, LastError, Steps, NextAt
	// and (running only) LeaseUntil. When State is done the subject is
	// replaced by Subject.Redacted().
	UpdateDeletion(ctx context.Context, d Deletion) error
	// ForgetUser deletes the delivery log rows of the subject (by userId,
	// by email, by phone (normalised as LogEntry.Phone), or whose
	// messageId is in messageIDs), blanks the userId and email of the same
	// audit log entries, and deletes the dead letters
	// (pending or replayed) for which match returns true, in one
	// transaction.
	ForgetUser(ctx context.Context, s DeletionSubject, messageIDs []string, match func(DeadLetter) bool) (Forgotten, error)
}

// DeletionRegulation is the regulation id of a deletion request.
func DeletionRegulation(id int64) string { return "del_" + strconv.FormatInt(id, 10) }

func checkDeletion(i int, d *Deletion) error {
	if d.Suppress != nil {
		if err := checkSuppression(i, d.Suppress); err != nil {
			return err
		}
	}
	if d.Subject.Empty() {
		return fmt.Errorf("deletion %d: subject: one of userId, email or phone is required: %w", i, ErrInvalid)
	}
	for _, v := range []string{d.Subject.UserID, d.Subject.Email, d.Subject.Phone} {
		if len(v) > 1024 {
			return fmt.Errorf("deletion %d: subject: an identifier longer than 1024 bytes: %w", i, ErrInvalid)
		}
	}
	return nil
}

func deletionLimit(n int) int {
	if n <= 0 {
		return 50
	}
	return min(n, 1000)
}

// leaseOf is the lease_until column of d: only a running request holds one.
func leaseOf(d Deletion) int64 {
	if d.State != DeletionRunning {
		return 0
	}
	return toNanos(d.LeaseUntil)
}

// deletionColumns are the columns scanDeletion reads.
func deletionColumns(d dialect) string {
	return `id, user_id, email, phone, origin, local_only, ` + d.jsonText("dests") + `, state, attempts, last_error, ` +
		d.jsonText("steps") + `, next_at, created_at, updated_at, lease_until`
}

func lookupDeletion(ctx context.Context, d dialect, id int64) (Deletion, error) {
	del, err := scanDeletion(d.queryRow(ctx, `SELECT `+deletionColumns(d)+` FROM deletion WHERE id = ?`, id))
	if d.noRows(err) {
		return Deletion{}, fmt.Errorf("deletion %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Deletion{}, fmt.Errorf("look up deletion %d: %w", id, err)
	}
	return del, nil
}

func listDeletions(ctx context.Context, d dialect, q DeletionQuery) ([]Deletion, error) {
	if q.State != "" && !q.State.Valid() {
		return nil, fmt.Errorf("list deletions: state %q: %w", q.State, ErrInvalid)
	}
	state := d.text(string(q.State))
	rs, err := d.query(ctx, `SELECT `+deletionColumns(d)+` FROM deletion
		WHERE (? = '' OR state = ?) ORDER BY id DESC LIMIT ?`, state, state, deletionLimit(q.Limit))
	if err != nil {
		return nil, fmt.Errorf("list deletions: %w", err)
	}
	out, err := scanAll(rs, scanDeletion)
	if err != nil {
		return nil, fmt.Errorf("list deletions: %w", err)
	}
	return out, nil
}

func dueDeletions(ctx context.Context, d dialect, now time.Time, limit int) ([]Deletion, error) {
	rs, err := d.query(ctx, `SELECT `+deletionColumns(d)+` FROM deletion
		WHERE state IN ('pending', 'running') AND (CASE state WHEN 'running' THEN lease_until ELSE next_at END) <= ?
		ORDER BY id LIMIT ?`, now.UnixNano(), deletionLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("due deletions: %w", err)
	}
	out, err := scanAll(rs, scanDeletion)
	if err != nil {
		return nil, fmt.Errorf("due deletions: %w", err)
	}
	return out, nil
}

// scanDeletion reads a deletionColumns row.
func scanDeletion(r scanner) (Deletion, error) {
	var (
		d                            Deletion
		state, dests, steps          string
		nextAt, createdAt, updatedAt int64
		leaseUntil                   int64
	)
	err := r.Scan(&d.ID, &d.Subject.UserID, &d.Subject.Email, &d.Subject.Phone, &d.Origin, &d.LocalOnly, &dests, &state,
		&d.Attempts, &d.LastError, &steps, &nextAt, &createdAt, &updatedAt, &leaseUntil)
	if err != nil {
		return Deletion{}, err
	}
	return finishDeletion(d, state, []byte(dests), []byte(steps), nextAt, createdAt, updatedAt, leaseUntil)
}
