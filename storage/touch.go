package storage

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// TouchSessionOncePer is TouchSession for a use of a session whose
// lastSeenAt, as the caller read it, is more than gap old. Requests that
// read the session before the last touch landed see it stale too and
// would each write it again; this Store writes it at most once per gap,
// for the first of them. It reports whether it was this call's turn to
// write, and the write's error (ErrNotFound if the session is gone).
func (s *Store) TouchSessionOncePer(ctx context.Context, sess *Session, seen, expires time.Time, gap time.Duration) (bool, error) {
	// A conditional update would decide this in the database, but the
	// embedded engine scans the collection for any filter but _id.
	if !s.touched.claim(sess.ID, seen, gap) {
		return false, nil
	}
	return true, s.TouchSession(ctx, sess, seen, expires)
}

// touches remembers when this Store last touched each session.
type touches struct {
	at     sync.Map     // session id → time.Time of the last touch written
	pruned atomic.Int64 // when entries were last dropped, in Unix nanoseconds
}

// claim reports whether a touch of session id at now is due: none was
// written less than gap before. If it is, now is recorded as the last.
func (t *touches) claim(id string, now time.Time, gap time.Duration) bool {
	t.prune(now, gap)
	prev, loaded := t.at.LoadOrStore(id, now)
	if !loaded {
		return true
	}
	return now.Sub(prev.(time.Time)) >= gap && t.at.CompareAndSwap(id, prev, now)
}

// prune drops, at most once per gap, the touches that no longer hold
// anything back, so the map stays as small as the set of sessions used
// within the last gap or two.
func (t *touches) prune(now time.Time, gap time.Duration) {
	last := t.pruned.Load()
	if now.UnixNano()-last < int64(gap) || !t.pruned.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	cutoff := now.Add(-gap)
	t.at.Range(func(id, at any) bool {
		if at.(time.Time).Before(cutoff) {
			t.at.CompareAndDelete(id, at)
		}
		return true
	})
}
