package store

import (
	"context"
	"crypto/rand"
	"fmt"
	"strconv"
	"time"
)

// Suppression keeps a user's future events from being delivered
// (Segment's SUPPRESS_ONLY and SUPPRESS_WITH_DELETE, RudderStack's
// suppress and suppress_with_delete). Its identifiers are keyed hashes made
// with SuppressionKey by the caller (internal/deletion), never the
// identifiers themselves: the list must outlive the deletion of the user's
// data without keeping that data.
type Suppression struct {
	ID int64 // assigned by AddSuppressions
	// Regulation is the id the caller was given (del_7 for a suppression
	// with a deletion); AddSuppressions sets "sup_<ID>" when it is empty.
	Regulation string
	Origin     string // rudderstack, segment, cli, api
	// UserID, Email and Phone are keyed hashes of the normalised
	// identifiers; "" when not given. At least one is set.
	UserID, Email, Phone string
	CreatedAt            time.Time
}

// SuppressionQuery pages through suppressions by id.
type SuppressionQuery struct {
	After  int64 // ids above this (ascending), or below it when Newest and > 0
	Newest bool  // newest first (the console); else oldest first (loading a cache)
	Limit  int   // default 50, at most 10,000
}

// SuppressionVersion changes whenever the list changes: ids only grow, so
// an addition raises MaxID or Count and a removal lowers Count; SumID
// catches a removal and an out-of-order commit (PostgreSQL hands out ids
// before commit) between two reads.
type SuppressionVersion struct{ Count, MaxID, SumID int64 }

// SuppressionStore keeps the suppression list.
type SuppressionStore interface {
	// SuppressionKey returns the secret that keys the identifier hashes,
	// made on first use and shared by every node of the store.
	SuppressionKey(ctx context.Context) ([]byte, error)
	// AddSuppressions stores ss in one transaction and sets their ID,
	// Regulation and CreatedAt.
	AddSuppressions(ctx context.Context, ss []Suppression) error
	ListSuppressions(ctx context.Context, q SuppressionQuery) ([]Suppression, error)
	// RemoveSuppressions deletes the suppressions of a regulation id, and
	// those with any identifier hash in hashes; it returns how many went.
	RemoveSuppressions(ctx context.Context, regulation string, hashes []string) (int64, error)
	SuppressionVersion(ctx context.Context) (SuppressionVersion, error)
}

// SuppressionRegulation is the regulation id of a suppression made alone.
func SuppressionRegulation(id int64) string { return "sup_" + strconv.FormatInt(id, 10) }

func checkSuppression(i int, s *Suppression) error {
	if s.UserID == "" && s.Email == "" && s.Phone == "" {
		return fmt.Errorf("suppression %d: one of the userId, email or phone hashes is required: %w", i, ErrInvalid)
	}
	for _, v := range []string{s.UserID, s.Email, s.Phone, s.Regulation, s.Origin} {
		if len(v) > 256 {
			return fmt.Errorf("suppression %d: a field longer than 256 bytes: %w", i, ErrInvalid)
		}
	}
	return nil
}

func suppressionLimit(n int) int {
	if n <= 0 {
		return 50
	}
	return min(n, 10000)
}

// suppressionKeySize is the HMAC-SHA256 key's length.
const suppressionKeySize = 32

// nonEmpty drops empty hashes, which would match every row without that
// identifier.
func nonEmpty(hashes []string) []string {
	var out []string
	for _, h := range hashes {
		if h != "" {
			out = append(out, h)
		}
	}
	return out
}

const suppressionColumns = `id, regulation, origin, user_id, email, phone, created_at`

func listSuppressions(ctx context.Context, d dialect, q SuppressionQuery) ([]Suppression, error) {
	query, args := `SELECT `+suppressionColumns+` FROM suppression WHERE id > ? ORDER BY id LIMIT ?`, []any{q.After, suppressionLimit(q.Limit)}
	if q.Newest {
		query = `SELECT ` + suppressionColumns + ` FROM suppression WHERE (? <= 0 OR id < ?) ORDER BY id DESC LIMIT ?`
		args = []any{q.After, q.After, suppressionLimit(q.Limit)}
	}
	return queryAll(ctx, d, "list suppressions", scanSuppression, query, args...)
}

func scanSuppression(r scanner) (Suppression, error) {
	var (
		sp      Suppression
		created int64
	)
	if err := r.Scan(&sp.ID, &sp.Regulation, &sp.Origin, &sp.UserID, &sp.Email, &sp.Phone, &created); err != nil {
		return Suppression{}, err
	}
	sp.CreatedAt = fromNanos(created)
	return sp, nil
}

// suppressionVersion casts the sum: PostgreSQL sums BIGINTs as NUMERIC.
func suppressionVersion(ctx context.Context, d dialect) (SuppressionVersion, error) {
	var v SuppressionVersion
	err := d.queryRow(ctx, `SELECT COUNT(*), COALESCE(MAX(id), 0), CAST(COALESCE(SUM(id), 0) AS BIGINT) FROM suppression`).
		Scan(&v.Count, &v.MaxID, &v.SumID)
	if err != nil {
		return v, fmt.Errorf("suppression version: %w", err)
	}
	return v, nil
}

const suppressionKeyQuery = `SELECT key FROM suppression_key WHERE id = 1`

// suppressionKey reads the key, or stores a fresh one unless another node
// got there first (its insert wins) and returns the stored key.
func suppressionKey(ctx context.Context, d dialect, st writer) ([]byte, error) {
	var key []byte
	err := d.queryRow(ctx, suppressionKeyQuery).Scan(&key)
	if err == nil {
		return key, nil
	}
	if !d.noRows(err) {
		return nil, fmt.Errorf("suppression key: %w", err)
	}
	fresh := make([]byte, suppressionKeySize)
	_, _ = rand.Read(fresh)
	err = st.write(ctx, func(_ dialect, w txer) error {
		if _, err := w.exec(ctx, `INSERT INTO suppression_key (id, key) VALUES (1, ?) ON CONFLICT (id) DO NOTHING`, fresh); err != nil {
			return err
		}
		return w.queryRow(ctx, suppressionKeyQuery).Scan(&key)
	})
	if err != nil {
		return nil, fmt.Errorf("suppression key: %w", err)
	}
	return key, nil
}

// addSuppressions stores ss in one transaction and sets their ID, Regulation and CreatedAt.
func addSuppressions(ctx context.Context, st writer, ss []Suppression, now time.Time) error {
	for i := range ss {
		if err := checkSuppression(i, &ss[i]); err != nil {
			return fmt.Errorf("add suppressions: %w", err)
		}
	}
	ids := make([]int64, len(ss))
	regs := make([]string, len(ss))
	err := st.write(ctx, func(d dialect, w txer) error {
		for i, sp := range ss {
			var err error
			if ids[i], regs[i], err = insertSuppression(ctx, d, w, sp, now); err != nil {
				return fmt.Errorf("suppression %d: %w", i, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("add %d suppressions: %w", len(ss), err)
	}
	for i := range ss {
		ss[i].ID, ss[i].Regulation, ss[i].CreatedAt = ids[i], regs[i], now
	}
	return nil
}

// insertSuppression inserts sp, naming it sup_<id> when it has no
// regulation id.
func insertSuppression(ctx context.Context, d dialect, w txer, sp Suppression, now time.Time) (int64, string, error) {
	var id int64
	err := w.queryRow(ctx, `INSERT INTO suppression (regulation, origin, user_id, email, phone, created_at)
		VALUES (?, ?, ?, ?, ?, ?) RETURNING id`, d.text(sp.Regulation), d.text(sp.Origin), d.text(sp.UserID), d.text(sp.Email),
		d.text(sp.Phone), now.UnixNano()).Scan(&id)
	if err != nil || sp.Regulation != "" {
		return id, sp.Regulation, err
	}
	reg := SuppressionRegulation(id)
	_, err = w.exec(ctx, `UPDATE suppression SET regulation = ? WHERE id = ?`, reg, id)
	return id, reg, err
}

func removeSuppressions(ctx context.Context, st writer, regulation string, hashes []string) (int64, error) {
	if regulation == "" && len(hashes) == 0 {
		return 0, fmt.Errorf("remove suppressions: no regulation id and no identifier: %w", ErrInvalid)
	}
	hashes = nonEmpty(hashes)
	if regulation == "" && len(hashes) == 0 {
		return 0, nil
	}
	var n int64
	err := st.write(ctx, func(d dialect, w txer) error {
		hs := d.listArg(nonNil(hashes))
		var err error
		n, err = w.exec(ctx, `DELETE FROM suppression WHERE (? != '' AND regulation = ?)
			OR `+d.inList("user_id")+` OR `+d.inList("email")+` OR `+d.inList("phone"),
			d.text(regulation), d.text(regulation), hs, hs, hs)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("remove suppressions: %w", err)
	}
	return n, nil
}
