package store

// postgresMigrations is the PostgreSQL schema, oldest first; it mirrors
// sqliteMigrations. Times are Unix nanoseconds (BIGINT). Text compared by
// range (prefix search) uses the "C" collation, so the byte order that
// prefixEnd assumes is the database's order too. Payloads are BYTEA so they
// come back byte for byte.
func postgresMigrations() []migration {
	return []migration{{
		version: 1,
		name:    "initial",
		sql: `
CREATE TABLE delivery_log (
	id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	message_id TEXT COLLATE "C" NOT NULL,
	dest       TEXT COLLATE "C" NOT NULL,
	source     TEXT COLLATE "C" NOT NULL DEFAULT '',
	type       TEXT    NOT NULL DEFAULT '',
	event      TEXT    NOT NULL DEFAULT '',
	user_id    TEXT COLLATE "C" NOT NULL DEFAULT '',
	email      TEXT COLLATE "C" NOT NULL DEFAULT '',
	status     TEXT    NOT NULL,
	prec       INTEGER NOT NULL,
	attempts   INTEGER NOT NULL DEFAULT 0,
	detail     TEXT    NOT NULL DEFAULT '',
	time       BIGINT  NOT NULL,
	history    JSONB   NOT NULL DEFAULT '[]'
);
CREATE UNIQUE INDEX delivery_log_key ON delivery_log (message_id, dest);
CREATE INDEX delivery_log_time   ON delivery_log (time);
CREATE INDEX delivery_log_user   ON delivery_log (user_id);
CREATE INDEX delivery_log_email  ON delivery_log (email);
CREATE INDEX delivery_log_status ON delivery_log (status, time);

CREATE TABLE dead_letter (
	id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	message_id  TEXT    NOT NULL,
	source      TEXT    NOT NULL DEFAULT '',
	dest        TEXT    NOT NULL,
	payload     BYTEA   NOT NULL,
	error       TEXT    NOT NULL DEFAULT '',
	status      INTEGER NOT NULL DEFAULT 0,
	code        TEXT    NOT NULL DEFAULT '',
	pointer     TEXT    NOT NULL DEFAULT '',
	attempts    INTEGER NOT NULL DEFAULT 0,
	created_at  BIGINT  NOT NULL,
	replayed_at BIGINT
);
CREATE UNIQUE INDEX dead_letter_pending ON dead_letter (message_id, dest) WHERE replayed_at IS NULL;
CREATE INDEX dead_letter_pending_dest ON dead_letter (dest, id) WHERE replayed_at IS NULL;
CREATE INDEX dead_letter_dest ON dead_letter (dest, id);
CREATE INDEX dead_letter_replayed ON dead_letter (replayed_at) WHERE replayed_at IS NOT NULL;

CREATE TABLE source (
	name       TEXT    PRIMARY KEY,
	created_at BIGINT  NOT NULL
);
CREATE TABLE write_key (
	wkey       TEXT    PRIMARY KEY,
	source     TEXT    NOT NULL REFERENCES source (name),
	seeded     BOOLEAN NOT NULL DEFAULT false,
	created_at BIGINT  NOT NULL,
	revoked_at BIGINT
);
CREATE INDEX write_key_source ON write_key (source);

CREATE TABLE dest_settings (
	dest       TEXT    PRIMARY KEY,
	settings   TEXT    NOT NULL,
	version    BIGINT  NOT NULL,
	updated_at BIGINT  NOT NULL
);
`,
	}, {
		version: 2,
		name:    "shared rate limits",
		// One row per (API key hash, endpoint): the state of the limiter
		// every node shares (see RateLimiter).
		sql: `
CREATE TABLE rate_bucket (
	key_hash TEXT   NOT NULL,
	endpoint TEXT   NOT NULL,
	state    JSONB  NOT NULL,
	PRIMARY KEY (key_hash, endpoint)
);
`,
	}, {
		version: 3,
		name:    "audit log",
		// Privacy audit log (audit.go): key names only, never values.
		sql: `
CREATE TABLE audit_log (
	id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	message_id TEXT COLLATE "C" NOT NULL,
	dest       TEXT    NOT NULL,
	source     TEXT    NOT NULL DEFAULT '',
	user_id    TEXT COLLATE "C" NOT NULL DEFAULT '',
	email      TEXT COLLATE "C" NOT NULL DEFAULT '',
	time       BIGINT  NOT NULL,
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
	id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	user_id    TEXT    NOT NULL DEFAULT '',
	email      TEXT    NOT NULL DEFAULT '',
	phone      TEXT    NOT NULL DEFAULT '',
	origin     TEXT    NOT NULL DEFAULT '',
	local_only BOOLEAN NOT NULL DEFAULT false,
	dests      JSONB   NOT NULL DEFAULT '[]', -- array of destination names
	state      TEXT    NOT NULL,
	attempts   BIGINT  NOT NULL DEFAULT 0,
	last_error TEXT    NOT NULL DEFAULT '',
	steps      JSONB   NOT NULL DEFAULT '[]', -- [{name, done, detail}]
	next_at    BIGINT  NOT NULL DEFAULT 0,
	created_at BIGINT  NOT NULL,
	updated_at BIGINT  NOT NULL
);
CREATE INDEX deletion_open ON deletion (state, next_at) WHERE state IN ('pending', 'running');
`,
	}, {
		version: 5,
		name:    "suppressions, deletion leases, phone in the delivery log",
		sql:     pgSuppressionSQL,
	}}
}
