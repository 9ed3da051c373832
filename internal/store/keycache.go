package store

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"time"
)

// keyCache holds every active write key in memory, so the gateway's check on
// each request is a map lookup. It is dropped by invalidate (after this
// process changes keys) and reloaded after ttl (to see other processes'
// changes). Keys are indexed by their SHA-256, so the map's timing does not
// depend on how much of a guessed key is right and the cache holds no key in
// clear.
type keyCache struct {
	ttl  time.Duration
	now  func() time.Time
	load func(ctx context.Context) (map[[32]byte]string, error)

	mu       sync.RWMutex
	keys     map[[32]byte]string // key hash → source; nil when not loaded
	loadedAt time.Time
}

func newKeyCache(ttl time.Duration, now func() time.Time, load func(ctx context.Context) (map[[32]byte]string, error)) *keyCache {
	return &keyCache{ttl: ttl, now: now, load: load}
}

// resolve returns key's source and whether the key is active.
func (c *keyCache) resolve(ctx context.Context, key string) (string, bool, error) {
	h := sha256.Sum256([]byte(key))
	c.mu.RLock()
	if c.fresh() {
		src, ok := c.keys[h]
		c.mu.RUnlock()
		return src, ok, nil
	}
	c.mu.RUnlock()

	// Load under the write lock: concurrent misses wait for one load, and
	// an invalidate cannot slip between the load and its installation.
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.fresh() {
		keys, err := c.load(ctx)
		if err != nil {
			return "", false, fmt.Errorf("load write keys: %w", err)
		}
		c.keys, c.loadedAt = keys, c.now()
	}
	src, ok := c.keys[h]
	return src, ok, nil
}

// fresh reports whether the loaded keys may be used; c.mu must be held.
func (c *keyCache) fresh() bool {
	return c.keys != nil && c.now().Sub(c.loadedAt) < c.ttl
}

// invalidate drops the cache; call it after committing a key change.
func (c *keyCache) invalidate() {
	c.mu.Lock()
	c.keys = nil
	c.mu.Unlock()
}

// loaded reports whether the cache holds keys (for tests).
func (c *keyCache) loaded() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.keys != nil
}
