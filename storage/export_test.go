package storage

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Migrate runs the layout migration again, as a start would.
func (s *Store) Migrate(ctx context.Context) error { return s.migrate(ctx) }

// InsertLegacySession stores sess the way gatehouse stored sessions before
// they were listed per user and filed by expiry, and forgets that the
// database was migrated.
func (s *Store) InsertLegacySession(ctx context.Context, sess *Session) error {
	if _, err := s.sessions.InsertOne(ctx, sessionDoc(*sess)); err != nil {
		return err
	}
	_, err := s.meta.DeleteOne(ctx, bson.D{{Key: "_id", Value: "layout"}})
	return err
}

// SetLayoutVersion records v as the database's layout version, as a
// gatehouse of that version would.
func (s *Store) SetLayoutVersion(ctx context.Context, v int) error {
	_, err := s.meta.UpdateOne(ctx, bson.D{{Key: "_id", Value: "layout"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "version", Value: v}}}})
	return err
}

// InsertNotice writes batch seq as published at at, bypassing Publish.
func (s *Store) InsertNotice(ctx context.Context, seq int64, at time.Time) error {
	_, err := s.notices.InsertOne(ctx, batchDoc{ID: noticeID(seq), At: at, Notices: []Notice{{UserID: "old", Type: "SIGNED_IN", At: at}}})
	return err
}

// LandUncertain makes b's insert at seq land, as the insert of a Publish
// that failed (a timeout) may after all: b is then published again.
func (s *Store) LandUncertain(ctx context.Context, b *Batch, seq int64) error {
	b.uncertain, b.tried = true, seq
	_, err := s.notices.InsertOne(ctx, batchDoc{ID: noticeID(seq), Origin: b.Origin, Key: b.Key, At: time.Now(), Notices: b.Notices})
	return err
}

// ForgetHint makes the writer's own idea of the next number too old to
// trust, as a minute without writing does.
func (s *Store) ForgetHint() {
	s.stream.mu.Lock()
	defer s.stream.mu.Unlock()
	s.stream.at = time.Time{}
}

// FindSession reads session id from the database, past the cache.
func (s *Store) FindSession(ctx context.Context, id string) (*Session, error) {
	return s.findSession(ctx, id)
}

// BeforeFill makes f run between every database read of a session and the
// cache fill that follows it.
func (s *Store) BeforeFill(f func()) { s.cache.beforeFill = f }

// Cache is a session cache on its own, without a store.
type Cache struct{ c *sessionCache }

// NewCache returns a cache of budget bytes.
func NewCache(budget int64) Cache { return Cache{newSessionCache(budget)} }

// Get returns a copy of session id if it is cached.
func (c Cache) Get(id string) (*Session, bool) {
	sess, _, ok := c.c.get(id)
	return sess, ok
}

// Fill caches sess, as a read of it with no write meanwhile would.
func (c Cache) Fill(sess *Session) {
	_, ticket, _ := c.c.get(sess.ID)
	c.c.fill(sess, ticket)
}

// Wrote records a write to session id that returned, failed or not.
func (c Cache) Wrote(id string, failed bool) { c.c.wrote(id, failed) }

// Stats returns the cache's counts.
func (c Cache) Stats() CacheStats { return c.c.snapshot() }

// CostOf is the cache's estimate of what caching sess takes.
func CostOf(sess *Session) int64 { return costOf(sess) }
