package store

import (
	"context"
	"database/sql"

	"github.com/jackc/pgx/v5"
)

// txer is an open write transaction of either store, taking queries with
// ? placeholders, so writes whose SQL is the same are written once. Each
// store still opens and commits its own transactions (SQLite's single
// writer, PostgreSQL's pool).
type txer interface {
	// exec runs a statement and returns how many rows it touched.
	exec(ctx context.Context, q string, args ...any) (int64, error)
	query(ctx context.Context, q string, args ...any) (rows, error)
	queryRow(ctx context.Context, q string, args ...any) scanner
}

// writer is a store that runs fn in one write transaction; d serves its
// SQL forms and text, w the statements (d has no connection of its own).
type writer interface {
	write(ctx context.Context, fn func(d dialect, w txer) error) error
}

type sqliteTx struct{ tx *sql.Tx }

func (t sqliteTx) exec(ctx context.Context, q string, args ...any) (int64, error) {
	res, err := t.tx.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (t sqliteTx) query(ctx context.Context, q string, args ...any) (rows, error) {
	r, err := t.tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{r}, nil
}

func (t sqliteTx) queryRow(ctx context.Context, q string, args ...any) scanner {
	return t.tx.QueryRowContext(ctx, q, args...)
}

type pgTx struct{ tx pgx.Tx }

func (t pgTx) exec(ctx context.Context, q string, args ...any) (int64, error) {
	tag, err := t.tx.Exec(ctx, numbered(q), args...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

func (t pgTx) query(ctx context.Context, q string, args ...any) (rows, error) {
	return t.tx.Query(ctx, numbered(q), args...)
}

func (t pgTx) queryRow(ctx context.Context, q string, args ...any) scanner {
	return t.tx.QueryRow(ctx, numbered(q), args...)
}

// write implements writer with the SQLite store's single writer.
func (s *SQLite) write(ctx context.Context, fn func(d dialect, w txer) error) error {
	return s.inTx(ctx, func(tx *sql.Tx) error { return fn(sqliteDialect{}, sqliteTx{tx}) })
}

// write implements writer.
func (s *Postgres) write(ctx context.Context, fn func(d dialect, w txer) error) error {
	return s.inTx(ctx, func(tx pgx.Tx) error { return fn(pgDialect{}, pgTx{tx}) })
}
