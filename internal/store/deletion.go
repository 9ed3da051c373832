package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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
	return queryAll(ctx, d, "list deletions", scanDeletion, `SELECT `+deletionColumns(d)+` FROM deletion
		WHERE (? = '' OR state = ?) ORDER BY id DESC LIMIT ?`, state, state, deletionLimit(q.Limit))
}

func dueDeletions(ctx context.Context, d dialect, now time.Time, limit int) ([]Deletion, error) {
	return queryAll(ctx, d, "due deletions", scanDeletion, `SELECT `+deletionColumns(d)+` FROM deletion
		WHERE state IN ('pending', 'running') AND (CASE state WHEN 'running' THEN lease_until ELSE next_at END) <= ?
		ORDER BY id LIMIT ?`, now.UnixNano(), deletionLimit(limit))
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

// createDeletions stores ds, each with its suppression, in one
// transaction and sets their ID, State and times.
func createDeletions(ctx context.Context, st writer, ds []Deletion, now time.Time) error {
	for i := range ds {
		if err := checkDeletion(i, &ds[i]); err != nil {
			return fmt.Errorf("create deletions: %w", err)
		}
	}
	ids := make([]int64, len(ds))
	err := st.write(ctx, func(d dialect, w txer) error {
		for i := range ds {
			del := &ds[i]
			dests, _ := json.Marshal(nonNil(del.Dests))
			steps, _ := json.Marshal(nonNilSteps(del.Steps))
			err := w.queryRow(ctx, `INSERT INTO deletion
				(user_id, email, phone, origin, local_only, dests, state, steps, next_at, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, `+d.jsonParam()+`, 'pending', `+d.jsonParam()+`, ?, ?, ?) RETURNING id`,
				d.text(del.Subject.UserID), d.text(del.Subject.Email), d.text(del.Subject.Phone), d.text(del.Origin), del.LocalOnly,
				d.text(string(dests)), d.text(string(steps)), toNanos(del.NextAt), now.UnixNano(), now.UnixNano()).Scan(&ids[i])
			if err != nil {
				return fmt.Errorf("deletion %d: %w", i, err)
			}
			if del.Suppress != nil {
				sp := *del.Suppress
				sp.Regulation = DeletionRegulation(ids[i])
				if _, _, err := insertSuppression(ctx, d, w, sp, now); err != nil {
					return fmt.Errorf("deletion %d: suppression: %w", i, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create %d deletions: %w", len(ds), err)
	}
	for i := range ds {
		ds[i].ID, ds[i].State, ds[i].CreatedAt, ds[i].UpdatedAt = ids[i], DeletionPending, now, now
	}
	return nil
}

// updateDeletion writes del's state, forgetting its subject once done.
func updateDeletion(ctx context.Context, st writer, del Deletion, now time.Time) error {
	if !del.State.Valid() {
		return fmt.Errorf("update deletion %d: state %q: %w", del.ID, del.State, ErrInvalid)
	}
	subj := del.Subject
	if del.State == DeletionDone {
		subj = subj.Redacted()
	}
	steps, _ := json.Marshal(nonNilSteps(del.Steps))
	var n int64
	err := st.write(ctx, func(d dialect, w txer) error {
		var err error
		n, err = w.exec(ctx, `UPDATE deletion SET user_id = ?, email = ?, phone = ?, state = ?, attempts = ?,
			last_error = ?, steps = `+d.jsonParam()+`, next_at = ?, updated_at = ?, lease_until = ? WHERE id = ?`,
			d.text(subj.UserID), d.text(subj.Email), d.text(subj.Phone), d.text(string(del.State)), del.Attempts,
			d.text(truncate(del.LastError, MaxDetail)), d.text(string(steps)), toNanos(del.NextAt), now.UnixNano(), leaseOf(del), del.ID)
		return err
	})
	if err != nil {
		return fmt.Errorf("update deletion %d: %w", del.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("update deletion %d: %w", del.ID, ErrNotFound)
	}
	return nil
}

func extendDeletionLease(ctx context.Context, st writer, id int64, until time.Time) error {
	err := st.write(ctx, func(_ dialect, w txer) error {
		_, err := w.exec(ctx, `UPDATE deletion SET lease_until = ? WHERE id = ? AND state = 'running'`, until.UnixNano(), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("extend the lease of deletion %d: %w", id, err)
	}
	return nil
}

// forgetUser deletes the subject's delivery log rows and dead letters
// (those match picks) and blanks its audit entries, in one transaction.
func forgetUser(ctx context.Context, st writer, subj DeletionSubject, messageIDs []string, match func(DeadLetter) bool) (Forgotten, error) {
	var out Forgotten
	if subj.Empty() && len(messageIDs) == 0 {
		return out, fmt.Errorf("forget user: no identifier and no messageId: %w", ErrInvalid)
	}
	err := st.write(ctx, func(d dialect, w txer) error {
		out = Forgotten{}
		user, email, phone, ids := d.text(subj.UserID), d.text(strings.ToLower(subj.Email)), d.text(subj.Phone), d.listArg(nonNil(messageIDs))
		var err error
		out.LogRows, err = w.exec(ctx, `DELETE FROM delivery_log WHERE (? != '' AND user_id = ?) OR (? != '' AND email = ?)
			OR (? != '' AND phone = ?) OR `+d.inList("message_id"), user, user, email, email, phone, phone, ids)
		if err != nil {
			return fmt.Errorf("delivery log: %w", err)
		}
		out.AuditEntries, err = w.exec(ctx, `UPDATE audit_log SET user_id = '', email = '' WHERE (? != '' AND user_id = ?)
			OR (? != '' AND email = ?) OR `+d.inList("message_id"), user, user, email, email, ids)
		if err != nil {
			return fmt.Errorf("audit log: %w", err)
		}
		if match == nil {
			return nil
		}
		gone, err := matchingDeadLetters(ctx, w, match)
		if err != nil || len(gone) == 0 {
			return err
		}
		out.DeadLetters, err = w.exec(ctx, `DELETE FROM dead_letter WHERE `+d.inList("id"), d.listArg(gone))
		if err != nil {
			return fmt.Errorf("dead letters: %w", err)
		}
		return nil
	})
	if err != nil {
		return Forgotten{}, fmt.Errorf("forget user: %w", err)
	}
	return out, nil
}

// matchingDeadLetters pages through every dead letter for the ids match
// picks.
func matchingDeadLetters(ctx context.Context, w txer, match func(DeadLetter) bool) ([]int64, error) {
	var gone []int64
	for after := int64(0); ; {
		rs, err := w.query(ctx, `SELECT `+deadColumns+` FROM dead_letter WHERE id > ? ORDER BY id LIMIT 500`, after)
		if err != nil {
			return nil, fmt.Errorf("dead letters: %w", err)
		}
		page, err := scanAll(rs, scanDead)
		if err != nil {
			return nil, fmt.Errorf("dead letters: %w", err)
		}
		for _, d := range page {
			if match(d) {
				gone = append(gone, d.ID)
			}
		}
		if len(page) < 500 {
			return gone, nil
		}
		after = page[len(page)-1].ID
	}
}

// finishDeletion decodes the JSON and time columns both stores share.
func finishDeletion(d Deletion, state string, dests, steps []byte, nextAt, createdAt, updatedAt, leaseUntil int64) (Deletion, error) {
	d.State = DeletionState(state)
	if err := json.Unmarshal(dests, &d.Dests); err != nil {
		return Deletion{}, fmt.Errorf("deletion %d: dests: %w", d.ID, err)
	}
	if err := json.Unmarshal(steps, &d.Steps); err != nil {
		return Deletion{}, fmt.Errorf("deletion %d: steps: %w", d.ID, err)
	}
	if len(d.Dests) == 0 {
		d.Dests = nil
	}
	if len(d.Steps) == 0 {
		d.Steps = nil
	}
	d.NextAt, d.CreatedAt, d.UpdatedAt = fromNanos(nextAt), fromNanos(createdAt), fromNanos(updatedAt)
	d.LeaseUntil = fromNanos(leaseUntil)
	return d, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilSteps(s []DeletionStep) []DeletionStep {
	if s == nil {
		return []DeletionStep{}
	}
	return s
}
