package deletion

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaycdp/relay/internal/identity"
	"github.com/relaycdp/relay/internal/spec"
	"github.com/relaycdp/relay/internal/store"
)

// Suppressions is the suppression list as delivery checks it: an in-memory
// set of the keyed hashes of suppressed identifiers, loaded from the store
// and refreshed when the store's list changes (another node, or this one,
// suppressed or un-suppressed someone). Checking an event costs nothing
// while the list is empty, and a keyed hash and a map lookup per
// identifier of a kind the list holds otherwise. Safe for concurrent use.
type Suppressions struct {
	store store.SuppressionStore
	log   *slog.Logger
	key   []byte
	pool  sync.Pool // hash.Hash: HMAC-SHA256 with key
	set   atomic.Pointer[suppressionSet]
	mu    sync.Mutex // one reload at a time
	// phones memoises identity.Phone (parsing a number takes tens of
	// microseconds; a user's events repeat their number).
	phoneMu sync.Mutex
	phones  map[[2]string]string
}

// maxPhoneMemo bounds the memo; it is emptied when full.
const maxPhoneMemo = 1 << 16

func (sp *Suppressions) phone(raw, region string) string {
	k := [2]string{raw, region}
	sp.phoneMu.Lock()
	p, ok := sp.phones[k]
	sp.phoneMu.Unlock()
	if ok {
		return p
	}
	p = identity.Phone(raw, region)
	sp.phoneMu.Lock()
	if len(sp.phones) >= maxPhoneMemo || sp.phones == nil {
		sp.phones = make(map[[2]string]string)
	}
	sp.phones[k] = p
	sp.phoneMu.Unlock()
	return p
}

type suppressionSet struct {
	version store.SuppressionVersion
	// byHash maps an identifier's keyed hash to its regulation id.
	byHash map[[sha256.Size]byte]string
	// Which kinds the list holds: an event's phones are only parsed when
	// some phone is suppressed.
	users, emails, phones bool
}

// NewSuppressions loads the list (and the store's key) from s.
func NewSuppressions(ctx context.Context, s store.SuppressionStore, log *slog.Logger) (*Suppressions, error) {
	key, err := s.SuppressionKey(ctx)
	if err != nil {
		return nil, err
	}
	sp := &Suppressions{store: s, log: log.With(slog.String("component", "suppression")), key: key}
	sp.pool.New = func() any { return hmac.New(sha256.New, key) }
	sp.set.Store(&suppressionSet{byHash: map[[sha256.Size]byte]string{}})
	if err := sp.Reload(ctx); err != nil {
		return nil, err
	}
	return sp, nil
}

// Identifier kinds, hashed apart so a userId never matches an email.
const (
	kindUser  = "u:"
	kindEmail = "e:"
	kindPhone = "p:"
)

func (sp *Suppressions) sum(kind, v string) [sha256.Size]byte {
	h := sp.pool.Get().(hash.Hash)
	h.Reset()
	h.Write([]byte(kind))
	h.Write([]byte(v))
	var out [sha256.Size]byte
	h.Sum(out[:0])
	sp.pool.Put(h)
	return out
}

// Hashes are the stored forms of a subject's identifiers ("" when not
// given): keyed hashes of the userId, the lower-cased email and the E.164
// phone (national numbers read in regions).
func (sp *Suppressions) Hashes(s store.DeletionSubject, regions ...string) (userID, email, phone string) {
	enc := func(kind, v string) string {
		if v == "" {
			return ""
		}
		h := sp.sum(kind, v)
		return hex.EncodeToString(h[:])
	}
	return enc(kindUser, s.UserID), enc(kindEmail, identity.Email(s.Email)), enc(kindPhone, identity.Phone(s.Phone, regions...))
}

// Suppression is the stored suppression of a subject.
func (sp *Suppressions) Suppression(s store.DeletionSubject, origin string, regions ...string) store.Suppression {
	u, e, p := sp.Hashes(s, regions...)
	return store.Suppression{Origin: origin, UserID: u, Email: e, Phone: p}
}

// Check returns the regulation that suppresses ev's user, or "". region
// reads national phone numbers (the destination's defaultPhoneCountry).
func (sp *Suppressions) Check(ev *spec.Event, region string) string {
	set := sp.set.Load()
	if len(set.byHash) == 0 {
		return ""
	}
	look := func(kind, v string) string {
		if v == "" {
			return ""
		}
		return set.byHash[sp.sum(kind, v)]
	}
	if set.users && ev.UserID != "" {
		if reg := look(kindUser, ev.UserID); reg != "" {
			return reg
		}
	}
	if !set.emails && !set.phones {
		return ""
	}
	id := identity.Of(ev)
	if set.emails {
		for _, e := range id.Emails {
			if reg := look(kindEmail, identity.Email(e)); reg != "" {
				return reg
			}
		}
	}
	if set.phones {
		for _, p := range id.Phones {
			if reg := look(kindPhone, sp.phone(p, region)); reg != "" {
				return reg
			}
		}
	}
	return ""
}

// Len is how many identifiers are suppressed.
func (sp *Suppressions) Len() int { return len(sp.set.Load().byHash) }

// Reload reads the list again when the store's version changed.
func (sp *Suppressions) Reload(ctx context.Context) error {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	v, err := sp.store.SuppressionVersion(ctx)
	if err != nil {
		return fmt.Errorf("suppression list: %w", err)
	}
	if cur := sp.set.Load(); cur != nil && cur.version == v && (v != store.SuppressionVersion{}) {
		return nil
	}
	next := &suppressionSet{version: v, byHash: make(map[[sha256.Size]byte]string, v.Count*2)}
	for after := int64(0); ; {
		page, err := sp.store.ListSuppressions(ctx, store.SuppressionQuery{After: after, Limit: 10000})
		if err != nil {
			return fmt.Errorf("suppression list: %w", err)
		}
		for _, s := range page {
			next.add(s.UserID, s.Regulation, &next.users)
			next.add(s.Email, s.Regulation, &next.emails)
			next.add(s.Phone, s.Regulation, &next.phones)
		}
		if len(page) < 10000 {
			break
		}
		after = page[len(page)-1].ID
	}
	sp.set.Store(next)
	return nil
}

func (set *suppressionSet) add(hexHash, regulation string, kind *bool) {
	var h [sha256.Size]byte
	if n, err := hex.Decode(h[:], []byte(hexHash)); err != nil || n != len(h) {
		return // empty (not given) or not one of ours
	}
	set.byHash[h] = regulation
	*kind = true
}

// Run refreshes the list every interval until ctx ends; a failed refresh
// keeps the list it has and is logged.
func (sp *Suppressions) Run(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := sp.Reload(ctx); err != nil && ctx.Err() == nil {
			sp.log.Warn("refresh suppression list", slog.Any("err", err))
		}
	}
}
