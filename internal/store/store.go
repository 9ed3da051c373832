package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Sentinel errors. Implementations wrap them with the detail (which field,
// which id), so callers test with errors.Is.
var (
	// ErrNotFound: the source, key, dead letter, log entry or settings do not
	// exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: a source or write key with that name already exists.
	ErrExists = errors.New("already exists")
	// ErrVersionConflict: PutDestSettings was given a version that is not
	// the stored one (someone else saved first).
	ErrVersionConflict = errors.New("version conflict")
	// ErrInvalid: the input breaks a rule of the store (empty messageId,
	// unknown status, payload that is not JSON, …).
	ErrInvalid = errors.New("invalid input")
	// ErrUnknownWriteKey: the write key does not exist or was revoked.
	ErrUnknownWriteKey = errors.New("unknown or revoked write key")
	// ErrSchemaTooNew: the database was migrated by a newer Relay.
	ErrSchemaTooNew = errors.New("database schema is newer than this binary")
)

// Status is an event's fate at one destination.
type Status string

// Statuses, and their precedence when entries for one (message, dest)
// arrive out of order (see Rank):
//
//	replayed (0) < queued (1) < retrying (2) < delivered, skipped (3) < rejected, dead (4)
//
// An entry replaces the stored one when its rank is higher, or equal with at
// least as many attempts and a time not earlier. So terminal states win over
// non-terminal ones (a late "retrying" never hides "delivered"), and a
// failure wins over a success recorded for the same event (one event can be
// several Klaviyo operations; if one dies the row must show it). The one
// exception is StatusReplayed, which always applies: it is the operator's
// explicit restart, after which queued → … → delivered applies again
// (dead → replayed → delivered).
const (
	StatusQueued    Status = "queued"    // accepted at ingest and committed to the queue
	StatusRetrying  Status = "retrying"  // an attempt failed and will be retried (Attempts, Detail = last error)
	StatusDelivered Status = "delivered" // Klaviyo accepted it (Detail = response summary)
	StatusSkipped   Status = "skipped"   // deliberately not sent (Detail = reason)
	StatusRejected  Status = "rejected"  // invalid at ingest or unmappable (Detail = reason)
	StatusDead      Status = "dead"      // dead-lettered (Detail = Klaviyo's error)
	StatusReplayed  Status = "replayed"  // re-enqueued by an operator from a dead letter or the log
)

// Statuses lists every status, in rank order.
func Statuses() []Status {
	return []Status{StatusReplayed, StatusQueued, StatusRetrying, StatusDelivered, StatusSkipped, StatusRejected, StatusDead}
}

// Rank is the status's precedence (documented on the constants); -1 for an
// unknown status.
func (s Status) Rank() int {
	switch s {
	case StatusReplayed:
		return 0
	case StatusQueued:
		return 1
	case StatusRetrying:
		return 2
	case StatusDelivered, StatusSkipped:
		return 3
	case StatusRejected, StatusDead:
		return 4
	}
	return -1
}

// Terminal reports whether the status ends the event's life at the
// destination (until a replay).
func (s Status) Terminal() bool { return s.Rank() >= 3 }

// Valid reports whether s is one of the Status constants.
func (s Status) Valid() bool { return s.Rank() >= 0 }

// Limits on stored text, so one huge Klaviyo response cannot bloat the log.
const (
	MaxDetail    = 4 << 10  // LogEntry.Detail is cut to this many bytes
	MaxHistory   = 10       // LogEntry.History keeps this many earlier states
	MaxDeadError = 16 << 10 // DeadLetter.Error is cut to this many bytes
)

// LogEntry is one event's fate at one destination. The log holds one row per
// (MessageID, Dest): the latest state by precedence, plus History.
type LogEntry struct {
	ID        int64  // assigned by the store; stable for the row's life
	MessageID string // required
	Source    string
	Dest      string // empty for events rejected at ingest before routing
	Type      string // track, identify, …
	Event     string // track event name (or page/screen name)
	UserID    string
	Email     string // stored and searched in lower case
	// Phone is the normalised number (identity.Phone), so user deletion
	// finds the rows of users known only by phone. Not shown or searched.
	Phone    string
	Status   Status // required
	Attempts int
	Detail   string    // Klaviyo's response summary, last error or reason; cut to MaxDetail
	Time     time.Time // when this fate happened; the store's clock when zero
	// History holds the states this one replaced, oldest first, at most
	// MaxHistory. Ignored by Record.
	History []Step
}

// Step is an earlier state of a log row. Its Detail is cut to 256
// characters.
type Step struct {
	Status   Status
	Attempts int
	Detail   string
	Time     time.Time
}

// LogQuery selects log rows, newest first.
type LogQuery struct {
	// Text matches messageId, userId or email, exactly or as a prefix
	// (email case-insensitively). Empty matches everything.
	Text   string
	Status Status // empty: any
	Dest   string // empty: any
	Source string // empty: any
	Limit  int    // default 50, at most 1000
	// Before and BeforeID page backwards: pass the last entry's Time and
	// ID to get the next page. Zero Before: from the newest.
	Before   time.Time
	BeforeID int64
}

// Retention bounds the delivery log, replayed dead letters and the audit
// log. Zero fields do not limit. Dead letters that were not replayed are
// never pruned.
type Retention struct {
	LogMaxRows     int64
	LogMaxAge      time.Duration
	ReplayedMaxAge time.Duration // replayed dead letters older than this (by ReplayedAt) go
	AuditMaxAge    time.Duration // audit entries older than this (by Time) go
}

// Pruned counts what Prune deleted.
type Pruned struct {
	LogRows     int64
	DeadLetters int64
	AuditRows   int64
}

// DeadLetter is an event that cannot be delivered to one destination.
type DeadLetter struct {
	ID         int64  // assigned by the store
	MessageID  string // required
	Source     string
	Dest       string // required
	Payload    []byte // the spec.Event as JSON; required
	Error      string // Klaviyo's error detail (or the local reason); cut to MaxDeadError
	Status     int    // Klaviyo's HTTP status; 0 when there was no response
	Code       string // Klaviyo's error code
	Pointer    string // Klaviyo's source.pointer, when it named one
	Attempts   int
	CreatedAt  time.Time // the store's clock when zero
	ReplayedAt time.Time // zero until replayed
}

// DeadLetterQuery selects dead letters, newest first.
type DeadLetterQuery struct {
	Dest            string // empty: any
	Source          string // empty: any
	IncludeReplayed bool
	Limit           int   // default 50, at most 1000
	BeforeID        int64 // page backwards: the last ID of the previous page
}

// ReplaySelector picks dead letters to replay: one ID, or every pending one
// of Dest created at or after Since. One of ID and Dest is required.
type ReplaySelector struct {
	ID    int64
	Dest  string
	Since time.Time
	Limit int // at most this many per call, oldest first; 0: all
}

// Source is a named origin of events with its write keys.
type Source struct {
	Name      string
	WriteKeys []WriteKey // including revoked ones (RevokedAt set), oldest first
}

// WriteKey authenticates ingest requests for one source. Key is a secret.
type WriteKey struct {
	Key       string
	Seeded    bool // from the config file (SeedSources) rather than the console
	CreatedAt time.Time
	RevokedAt time.Time // zero while active
}

// DestSettings are one destination's settings, stored as given (the caller
// validates them; API keys inside are kept in clear for delivery to use).
type DestSettings struct {
	Dest      string
	Settings  json.RawMessage
	Version   int64 // 1 on first save, +1 on each
	UpdatedAt time.Time
}

// AnyVersion makes PutDestSettings save whatever version is stored.
const AnyVersion int64 = -1

// DeliveryLog records events' fates: the gateway (rejections, queued) and
// delivery (everything after). One call is one transaction; pass hundreds.
type DeliveryLog interface {
	// Record upserts one row per (MessageID, Dest) by Status precedence.
	// Entries apply in order. An invalid entry fails the whole call
	// before anything is written, naming its index.
	Record(ctx context.Context, entries []LogEntry) error
}

// LogReader is the console's view of the delivery log.
type LogReader interface {
	QueryLog(ctx context.Context, q LogQuery) ([]LogEntry, error)
	// LookupLog returns the row of (messageID, dest), or ErrNotFound.
	LookupLog(ctx context.Context, messageID, dest string) (LogEntry, error)
	// CountLog counts rows per status, for one destination or all ("").
	CountLog(ctx context.Context, dest string) (map[Status]int64, error)
}

// Pruner enforces Retention; RunPruner calls it periodically.
type Pruner interface {
	Prune(ctx context.Context, r Retention) (Pruned, error)
}

// DeadLetterWriter is delivery's side of dead letters.
type DeadLetterWriter interface {
	// AddDeadLetters stores dls in one transaction and sets their ID.
	// While a dead letter of (MessageID, Dest) is pending (not replayed),
	// adding another updates it (error, attempts) instead of adding a
	// second: re-adding after a crash is harmless.
	AddDeadLetters(ctx context.Context, dls []DeadLetter) error
}

// DeadLetterReader is the console's view of dead letters.
type DeadLetterReader interface {
	ListDeadLetters(ctx context.Context, q DeadLetterQuery) ([]DeadLetter, error)
	// LookupDeadLetter returns one dead letter, or ErrNotFound.
	LookupDeadLetter(ctx context.Context, id int64) (DeadLetter, error)
	// CountDeadLetters counts pending (not replayed) dead letters, for one
	// destination or all ("").
	CountDeadLetters(ctx context.Context, dest string) (int64, error)
}

// Replayer hands dead letters back for re-enqueueing (console, relay replay).
type Replayer interface {
	// TakeForReplay marks the selected pending dead letters replayed, sets
	// their log rows to StatusReplayed, and calls enqueue with them (oldest
	// first) inside the same transaction: if enqueue fails nothing is
	// marked, so a dead letter is never lost between the two stores; a
	// replayed one is never returned again, even to concurrent callers.
	// enqueue is not called when nothing matches. It returns how many were
	// taken. enqueue must not write to this store (it would wait for the
	// transaction it runs in).
	TakeForReplay(ctx context.Context, sel ReplaySelector, enqueue func(context.Context, []DeadLetter) error) (int, error)
}

// KeyResolver is the gateway's write-key check, on every request.
type KeyResolver interface {
	// ResolveWriteKey returns the name of the key's source, or an error
	// wrapping ErrUnknownWriteKey (which never contains the key).
	ResolveWriteKey(ctx context.Context, key string) (string, error)
}

// SourceAdmin manages sources and write keys (console, startup).
type SourceAdmin interface {
	// Sources lists every source by name, with all its keys.
	Sources(ctx context.Context) ([]Source, error)
	// CreateSource adds a source with no keys (ErrExists if present).
	CreateSource(ctx context.Context, name string) (Source, error)
	// CreateWriteKey adds a random key ("wk_" + 32 hex digits) to source.
	CreateWriteKey(ctx context.Context, source string) (WriteKey, error)
	// RevokeWriteKey revokes key for good; revoking twice keeps the first
	// time. ErrNotFound for an unknown key.
	RevokeWriteKey(ctx context.Context, key string) error
	// SeedSources upserts the config file's sources and keys at start. It
	// never touches keys created in the console; a seeded key no longer in
	// the config is revoked; a revoked key stays revoked even if the config
	// still lists it (revocation is permanent, so a leaked key cannot come
	// back with a restart); a key already owned by another source is an
	// error.
	SeedSources(ctx context.Context, sources []Source) error
}

// SettingsStore persists destination settings.
type SettingsStore interface {
	// DestSettings returns dest's settings, or ErrNotFound.
	DestSettings(ctx context.Context, dest string) (DestSettings, error)
	ListDestSettings(ctx context.Context) ([]DestSettings, error)
	// PutDestSettings saves settings (valid JSON) if the stored version is
	// ifVersion (0: none stored yet; AnyVersion: whatever is stored), else
	// ErrVersionConflict. It returns what was saved.
	PutDestSettings(ctx context.Context, dest string, settings json.RawMessage, ifVersion int64) (DestSettings, error)
}

// Store is everything an implementation provides.
type Store interface {
	DeliveryLog
	LogReader
	Pruner
	DeadLetterWriter
	DeadLetterReader
	Replayer
	KeyResolver
	SourceAdmin
	SettingsStore
	DeletionStore
	SuppressionStore
	Close() error
}
