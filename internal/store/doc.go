// Package store owns Relay's state apart from the queue: the delivery log
// (each event's latest fate per destination, with a short history), dead
// letters (events that cannot be delivered, kept with Klaviyo's error until
// an operator replays them), sources with their write keys, and destination
// settings.
//
// Consumers declare the small interface they need (the gateway a
// KeyResolver and a DeliveryLog, delivery a DeliveryLog and a
// DeadLetterWriter, the console the readers and admin interfaces); Store
// aggregates them all and is what an implementation provides. *SQLite is the
// embedded implementation. A PostgreSQL implementation follows the same
// shape:
//
//   - versioned migrations recorded in schema_migrations and applied at open;
//   - one delivery_log row per (message_id, dest), written with
//     INSERT … ON CONFLICT (message_id, dest) DO UPDATE … WHERE <precedence>,
//     so the precedence of Status is decided by the database in one
//     statement per entry and never by a read-modify-write in Go;
//   - dead letters with a partial unique index on (message_id, dest) WHERE
//     replayed_at IS NULL, so adding one twice is idempotent, and replay as
//     UPDATE … SET replayed_at … RETURNING inside the transaction that runs
//     the caller's enqueue callback (at-least-once: nothing is marked
//     replayed unless the caller enqueued it);
//   - an in-memory write-key cache, dropped on local changes and reloaded after
//     a TTL so other nodes' revocations take effect.
//
// The storetest package is the conformance suite every implementation runs.
//
// Write keys and the API keys inside destination settings are secrets: the
// store keeps them as given and returns them to the console (which masks
// them), but never puts them in logs or errors; MaskKey is the one way they
// are shown.
package store
