package storage

import (
	"bytes"
	"container/list"
	"hash/maphash"
	"slices"
	"sync"
	"time"
)

// A sessionCache keeps the sessions a Store has read, so that checking a
// session costs no database round trip. It is only correct where the Store
// is the database's one writer (Options.SessionCache): it learns of a
// change only from the Store's own writes.
//
// Coherence rests on three rules (docs/session-cache.md):
//   - Every write to a session drops its entry when the write returns,
//     before the Store answers: a write that was acknowledged is seen by
//     every later read.
//   - A read fills the cache only if no write to a session of the same
//     stripe returned since the read began (each stripe counts its writes):
//     a read that overlapped a write may have seen the old document, and
//     must not put it back after the write dropped it.
//   - A write that failed may still land (a timeout does not undo it), so
//     its stripe takes no fill for uncertainFor after it.
//
// Expiry needs no rule: it is in the document, and callers check it on
// every read. Entries are evicted least recently used first, to stay
// within a budget of bytes.
type sessionCache struct {
	budget int64 // bytes the entries may take
	seed   maphash.Seed

	mu      sync.Mutex
	used    int64
	entries map[string]*list.Element // of *cached
	lru     list.List                // most recently used first
	stripes [cacheStripes]stripe
	stats   CacheStats

	beforeFill func() // tests: widens the gap between a read and its fill
}

// cacheStripes is how many stripes the sessions are spread over: a write
// holds back the fills of 1/cacheStripes of the sessions for a moment.
const cacheStripes = 1024

// uncertainFor is how long a failed write's stripe takes no fill. A write
// the driver gave up on may still wait in the engine, for SQLite's lock at
// most (its busy timeout, 10 s: internal/embedded), then land or fail; a
// minute is well past that.
const uncertainFor = time.Minute

// entryOverhead is what an entry costs besides its strings' and slices'
// bytes: the Session, its map entry and list element, rounded up
// (TestCacheCostIsHonest measured about 450 bytes).
const entryOverhead = 512

type cached struct {
	sess *Session
	cost int64
}

type stripe struct {
	writes  uint64    // writes to its sessions that have returned
	blocked time.Time // no fill before then (a failed write)
}

// CacheStats counts what the session cache did.
type CacheStats struct {
	Hits, Misses uint64
	// Entries and Bytes are what it holds now (Bytes as it estimates it).
	Entries int
	Bytes   int64
}

// newSessionCache returns a cache of budget bytes, or nil (no cache) for 0.
func newSessionCache(budget int64) *sessionCache {
	if budget <= 0 {
		return nil
	}
	return &sessionCache{budget: budget, seed: maphash.MakeSeed(), entries: map[string]*list.Element{}}
}

func (c *sessionCache) stripe(id string) *stripe {
	return &c.stripes[maphash.String(c.seed, id)%cacheStripes]
}

// get returns a copy of session id if it is cached. Otherwise it returns
// the ticket that fill wants after the database has been read.
func (c *sessionCache) get(id string) (sess *Session, ticket uint64, ok bool) {
	if c == nil {
		return nil, 0, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[id]; e != nil {
		c.lru.MoveToFront(e)
		c.stats.Hits++
		return clone(e.Value.(*cached).sess), 0, true
	}
	c.stats.Misses++
	return nil, c.stripe(id).writes, false
}

// fill caches a copy of sess, read from the database after get gave
// ticket, unless a write to its stripe returned since.
func (c *sessionCache) fill(sess *Session, ticket uint64) {
	if c == nil {
		return
	}
	if c.beforeFill != nil {
		c.beforeFill()
	}
	cost := costOf(sess)
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.stripe(sess.ID)
	if st.writes != ticket || time.Now().Before(st.blocked) || cost > c.budget || c.entries[sess.ID] != nil {
		return
	}
	c.entries[sess.ID] = c.lru.PushFront(&cached{sess: clone(sess), cost: cost})
	c.used += cost
	for c.used > c.budget {
		c.remove(c.lru.Back())
	}
}

// wrote records that a write to session id returned, with failed telling
// whether it failed (and so may still land).
func (c *sessionCache) wrote(id string, failed bool) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.stripe(id)
	st.writes++
	if failed {
		st.blocked = time.Now().Add(uncertainFor)
	}
	if e := c.entries[id]; e != nil {
		c.remove(e)
	}
}

// clear drops every entry and holds back the fills of reads in flight.
func (c *sessionCache) clear() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.stripes {
		c.stripes[i].writes++
	}
	clear(c.entries)
	c.lru.Init()
	c.used = 0
}

func (c *sessionCache) remove(e *list.Element) {
	x := c.lru.Remove(e).(*cached)
	delete(c.entries, x.sess.ID)
	c.used -= x.cost
}

func (c *sessionCache) snapshot() CacheStats {
	if c == nil {
		return CacheStats{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.stats
	st.Entries, st.Bytes = len(c.entries), c.used
	return st
}

// costOf estimates the bytes that caching sess takes.
func costOf(s *Session) int64 {
	n := entryOverhead + len(s.ID) + len(s.SecretHash) + len(s.UserID) + len(s.UserKey) + len(s.UserName) +
		len(s.Data) + len(s.UserAgent) + len(s.IP) + len(s.PasskeyID)
	for _, f := range s.Factors {
		n += 16 + len(f)
	}
	return int64(n)
}

// clone copies s deeply enough that neither copy's holder can change the
// other's: the cache's entry and its callers' sessions never share memory
// they might write.
func clone(s *Session) *Session {
	c := *s
	c.SecretHash = bytes.Clone(s.SecretHash)
	c.Factors = slices.Clone(s.Factors)
	return &c
}

// CacheStats returns the session cache's counts (zero without a cache).
func (s *Store) CacheStats() CacheStats { return s.cache.snapshot() }
