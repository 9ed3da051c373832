package store

// sqliteMigrations is the SQLite schema, oldest first. Times are Unix
// nanoseconds. The PostgreSQL schema mirrors it (BIGINT times, JSONB
// history and payload, the same indexes).
func sqliteMigrations() []migration {
	return []migration{{
		version: 1,
		name:    "initial",
		sql: `
CREATE TABLE delivery_log (
	id         INTEGER PRIMARY KEY,
	message_id TEXT    NOT NULL,
	dest       TEXT    NOT NULL,
	source     TEXT    NOT NULL DEFAULT '',
	type       TEXT    NOT NULL DEFAULT '',
	event      TEXT    NOT NULL DEFAULT '',
	user_id    TEXT    NOT NULL DEFAULT '',
	email      TEXT    NOT NULL DEFAULT '',
	status     TEXT    NOT NULL,
	prec       INTEGER NOT NULL, -- Status.Rank, compared by the upsert
	attempts   INTEGER NOT NULL DEFAULT 0,
	detail     TEXT    NOT NULL DEFAULT '',
	time       INTEGER NOT NULL,
	history    TEXT    NOT NULL DEFAULT '[]' -- JSON [{status, attempts, detail, time}], oldest first
);
CREATE UNIQUE INDEX delivery_log_key ON delivery_log (message_id, dest);
CREATE INDEX delivery_log_time   ON delivery_log (time);
CREATE INDEX delivery_log_user   ON delivery_log (user_id);
CREATE INDEX delivery_log_email  ON delivery_log (email);
CREATE INDEX delivery_log_status ON delivery_log (status, time);

CREATE TABLE dead_letter (
	id          INTEGER PRIMARY KEY,
	message_id  TEXT    NOT NULL,
	source      TEXT    NOT NULL DEFAULT '',
	dest        TEXT    NOT NULL,
	payload     BLOB    NOT NULL,
	error       TEXT    NOT NULL DEFAULT '',
	status      INTEGER NOT NULL DEFAULT 0,
	code        TEXT    NOT NULL DEFAULT '',
	pointer     TEXT    NOT NULL DEFAULT '',
	attempts    INTEGER NOT NULL DEFAULT 0,
	created_at  INTEGER NOT NULL,
	replayed_at INTEGER
);
-- At most one pending dead letter per event and destination.
CREATE UNIQUE INDEX dead_letter_pending ON dead_letter (message_id, dest) WHERE replayed_at IS NULL;
CREATE INDEX dead_letter_pending_dest ON dead_letter (dest, id) WHERE replayed_at IS NULL;
CREATE INDEX dead_letter_dest ON dead_letter (dest, id);
CREATE INDEX dead_letter_replayed ON dead_letter (replayed_at) WHERE replayed_at IS NOT NULL;

CREATE TABLE source (
	name       TEXT    PRIMARY KEY,
	created_at INTEGER NOT NULL
);
CREATE TABLE write_key (
	wkey       TEXT    PRIMARY KEY,
	source     TEXT    NOT NULL REFERENCES source (name),
	seeded     INTEGER NOT NULL DEFAULT 0, -- 1: from the config file
	created_at INTEGER NOT NULL,
	revoked_at INTEGER
);
CREATE INDEX write_key_source ON write_key (source);

CREATE TABLE dest_settings (
	dest       TEXT    PRIMARY KEY,
	settings   TEXT    NOT NULL,
	version    INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);
`,
	}, {
		version: 2,
		name:    "rate buckets",
		sql: `
CREATE TABLE rate_bucket (
	key_hash TEXT NOT NULL,
	endpoint TEXT NOT NULL,
	state    TEXT NOT NULL, -- ratelimit.BucketState as JSON
	PRIMARY KEY (key_hash, endpoint)
);
`,
	}, {
		version: 3,
		name:    "audit log",
		// Privacy audit log (audit.go): key names only, never values.
		sql: `
CREATE TABLE audit_log (
	id         INTEGER PRIMARY KEY,
	message_id TEXT NOT NULL,
	dest       TEXT    NOT NULL,
	source     TEXT    NOT NULL DEFAULT '',
	user_id    TEXT NOT NULL DEFAULT '',
	email      TEXT NOT NULL DEFAULT '',
	time       INTEGER NOT NULL,
	sent       TEXT    NOT NULL, -- JSON array of key paths
	dropped    TEXT    NOT NULL  -- JSON array of key paths
);
CREATE INDEX audit_log_message ON audit_log (message_id);
CREATE INDEX audit_log_user    ON audit_log (user_id);
CREATE INDEX audit_log_email   ON audit_log (email);
CREATE INDEX audit_log_time    ON audit_log (time);
`,
	}, {
		version: 4,
		name:    "user deletions",
		sql: `
CREATE TABLE deletion (
	id         INTEGER PRIMARY KEY,
	user_id    TEXT    NOT NULL DEFAULT '',
	email      TEXT    NOT NULL DEFAULT '',
	phone      TEXT    NOT NULL DEFAULT '',
	origin     TEXT    NOT NULL DEFAULT '',
	local_only INTEGER NOT NULL DEFAULT 0,
	dests      TEXT    NOT NULL DEFAULT '[]', -- JSON array of destination names
	state      TEXT    NOT NULL,
	attempts   INTEGER NOT NULL DEFAULT 0,
	last_error TEXT    NOT NULL DEFAULT '',
	steps      TEXT    NOT NULL DEFAULT '[]', -- JSON [{name, done, detail}]
	next_at    INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);
CREATE INDEX deletion_open ON deletion (state, next_at) WHERE state IN ('pending', 'running');
`,
	}, {
		version: 5,
		name:    "suppressions, deletion leases, phone in the delivery log",
		sql:     sqliteSuppressionSQL,
	}}
}
