package auth

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"gatehouse/storage"
)

// Live events: every instance tails the stream of notices (storage's
// numbered eventStream) and hands each one to its subscribers of the
// notice's user. A subscriber then reads its own session again, so what it
// delivers is what the database says now: a session that is gone or
// expired gets one last event (REVOKED, EXPIRED or PASSWORD_CHANGED) and
// its subscription ends, whichever instance ended it. A subscriber also
// wakes at its session's expiry, so EXPIRED arrives without any request.

// SessionEvent types, as the schema's SessionEventType names them.
const (
	LiveRevoked         = "REVOKED"
	LiveExpired         = "EXPIRED"
	LivePasswordChanged = "PASSWORD_CHANGED"
	LiveDataUpdated     = "DATA_UPDATED"
	LiveSignedIn        = "SIGNED_IN"
)

// SessionEvent is what a subscriber receives.
type SessionEvent struct {
	Type      string
	At        time.Time
	SessionID string
}

// Limits of live events.
const (
	// MaxSubscriptionsPerSession and MaxSubscriptionsPerClient bound the
	// subscribers one session and one client network may hold in one
	// instance (each costs a goroutine and a look-up per event).
	MaxSubscriptionsPerSession = 5
	MaxSubscriptionsPerClient  = 100
	// pollInterval is how often a tailer with nothing new asks again.
	pollInterval = 100 * time.Millisecond
	// gapCheck is how often a tailer waiting for a notice makes sure it
	// has not been trimmed (or the stream restarted).
	gapCheck = 30 * time.Second
)

// ErrTooManySubscriptions refuses a subscription over a limit.
var ErrTooManySubscriptions = &Error{Code: EThrottled, Message: "too many subscriptions: end one first"}

type live struct {
	mu        sync.Mutex
	byUser    map[string]map[*subscriber]struct{}
	bySession map[string]int
	byClient  map[string]int
}

type subscriber struct {
	sessionID, userID, client string
	secretHash                []byte
	since                     time.Time // notices published before are not news
	notices                   chan *storage.Notice
	resync                    chan struct{}
	// explain holds the last notice that may end the session which
	// notices had no room for: the check it wakes says why with it.
	explain atomic.Pointer[storage.Notice]
}

// Subscribe starts delivering the events of sess (a full session, as the
// caller authenticated it) until ctx ends or the session does; the channel
// is closed then. The last event of a session that ended says why.
func (s *Service) Subscribe(ctx context.Context, sess *storage.Session, c Client) (<-chan SessionEvent, error) {
	sub := &subscriber{
		sessionID: sess.ID, userID: sess.UserID, client: clientNetwork(c.IP), secretHash: sess.SecretHash,
		since:   time.Now().Truncate(time.Millisecond),
		notices: make(chan *storage.Notice, 16), resync: make(chan struct{}, 1),
	}
	if err := s.live.add(sub); err != nil {
		return nil, err
	}
	out := make(chan SessionEvent)
	go s.watch(ctx, sub, out)
	return out, nil
}

func (l *live) add(sub *subscriber) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.bySession[sub.sessionID] >= MaxSubscriptionsPerSession || l.byClient[sub.client] >= MaxSubscriptionsPerClient {
		return ErrTooManySubscriptions
	}
	if l.byUser == nil {
		l.byUser, l.bySession, l.byClient = map[string]map[*subscriber]struct{}{}, map[string]int{}, map[string]int{}
	}
	if l.byUser[sub.userID] == nil {
		l.byUser[sub.userID] = map[*subscriber]struct{}{}
	}
	l.byUser[sub.userID][sub] = struct{}{}
	l.bySession[sub.sessionID]++
	l.byClient[sub.client]++
	return nil
}

func (l *live) remove(sub *subscriber) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.byUser[sub.userID], sub)
	if len(l.byUser[sub.userID]) == 0 {
		delete(l.byUser, sub.userID)
	}
	if l.bySession[sub.sessionID]--; l.bySession[sub.sessionID] == 0 {
		delete(l.bySession, sub.sessionID)
	}
	if l.byClient[sub.client]--; l.byClient[sub.client] == 0 {
		delete(l.byClient, sub.client)
	}
}

// dispatch hands n to the subscribers it concerns: a data update to its
// session's, anything else to its user's. One too busy to take it checks
// its session again instead (nothing it must deliver is lost: a check
// sees every ending, and keeps the notice that explains one). A resync
// notice makes every subscriber check.
func (l *live) dispatch(n *storage.Notice) {
	if n.Type == noticeResync {
		l.resyncAll()
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for sub := range l.byUser[n.UserID] {
		if n.Type == NoticeDataUpdated && n.SessionID != sub.sessionID {
			continue
		}
		select {
		case sub.notices <- n:
		default:
			if mayEnd(n.Type) {
				sub.explain.Store(n)
			}
			sub.wake()
		}
	}
}

// resyncAll makes every subscriber check its session: after notices were
// missed.
func (l *live) resyncAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, subs := range l.byUser {
		for sub := range subs {
			sub.wake()
		}
	}
}

func (sub *subscriber) wake() {
	select {
	case sub.resync <- struct{}{}:
	default:
	}
}

// Subscriptions returns how many subscribers this instance holds.
func (s *Service) Subscriptions() int {
	s.live.mu.Lock()
	defer s.live.mu.Unlock()
	n := 0
	for _, subs := range s.live.byUser {
		n += len(subs)
	}
	return n
}

// explainGrace is how long a subscriber whose session is gone waits for
// the notice that says why (the stream may bring an earlier notice first),
// before it reports REVOKED.
const explainGrace = 300 * time.Millisecond

// watch delivers sub's events to out until ctx ends or the session does.
func (s *Service) watch(ctx context.Context, sub *subscriber, out chan<- SessionEvent) {
	defer close(out)
	defer s.live.remove(sub)
	timer := time.NewTimer(0) // the first check: the session may have ended already
	defer timer.Stop()
	var unexplained *SessionEvent // the session is gone, and no notice has said why yet
	var grace <-chan time.Time
	for {
		var n *storage.Notice
		select {
		case <-ctx.Done():
			return
		case n = <-sub.notices:
		case <-sub.resync:
			n = sub.explain.Swap(nil)
		case <-timer.C:
		case <-grace:
			select {
			case out <- *unexplained:
			case <-ctx.Done():
			}
			return
		}
		ev, expires, ended := s.check(ctx, sub, n)
		if ended && ev.Type == LiveRevoked && !endsSessionOf(n, sub) {
			if unexplained == nil {
				unexplained, grace = ev, time.After(explainGrace)
			}
			continue
		}
		if ev != nil {
			select {
			case out <- *ev:
			case <-ctx.Done():
				return
			}
		}
		if ended {
			return
		}
		timer.Reset(max(time.Until(expires), 0))
	}
}

// endsSessionOf reports whether notice n tells of something that ends
// sub's session.
func endsSessionOf(n *storage.Notice, sub *subscriber) bool {
	if n == nil {
		return false
	}
	switch n.Type {
	case EventSessionRevoked, EventSignedOut, EventSessionExpired:
		return n.SessionID == sub.sessionID
	case EventOtherSessionsRevoked, EventPasswordChanged, EventSecondFactorEnabled, EventSecondFactorDisabled, EventPasskeyRemoved:
		return true
	}
	return false
}

// check reads sub's session again after notice n (nil: a timer or a
// resync) and returns the event to deliver, if any, when the session
// expires, and whether it has ended.
func (s *Service) check(ctx context.Context, sub *subscriber, n *storage.Notice) (*SessionEvent, time.Time, bool) {
	now := s.now()
	end := func(typ string) (*SessionEvent, time.Time, bool) {
		return &SessionEvent{Type: typ, At: now, SessionID: sub.sessionID}, time.Time{}, true
	}
	sess, err := s.store.SessionByID(ctx, sub.sessionID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		switch {
		case n != nil && n.Type == EventPasswordChanged:
			return end(LivePasswordChanged)
		case n != nil && n.Type == EventSessionExpired && n.SessionID == sub.sessionID:
			return end(LiveExpired)
		}
		return end(LiveRevoked)
	case err != nil:
		if ctx.Err() == nil {
			s.log.WarnContext(ctx, "live events: read session failed", "session", sub.sessionID, "err", err)
		}
		return nil, time.Now().Add(time.Second), false // try again soon
	case s.expired(sess):
		_, _ = s.deleteExpired(ctx, sess)
		return end(LiveExpired)
	case !bytes.Equal(sess.SecretHash, sub.secretHash):
		// The token it was opened with is dead (a password change rotates
		// the changer's own): this subscription's authority ends with it.
		return end(LivePasswordChanged)
	}
	expires := time.Now().Add(s.ExpiresAt(sess).Sub(s.cfg.Now()))
	switch {
	case n == nil || n.At.Before(sub.since): // an ending is news whenever it came; the rest is not
	case n.Type == NoticeDataUpdated && n.SessionID == sub.sessionID:
		return &SessionEvent{Type: LiveDataUpdated, At: n.At, SessionID: sub.sessionID}, expires, false
	case n.Type == EventSignedIn && n.SessionID != sub.sessionID:
		return &SessionEvent{Type: LiveSignedIn, At: n.At, SessionID: n.SessionID}, expires, false
	}
	return nil, expires, false
}

// RunLive tails the stream of notices until ctx ends, handing each to this
// instance's subscribers: a look-up by _id of the next number, at once
// again after each one found, and otherwise when a MongoDB change stream
// says a notice was written (at least every second), or every
// pollInterval where there is none. It logs which at start.
func (s *Service) RunLive(ctx context.Context) {
	wake, watching := s.store.WatchNotices(ctx)
	mode := "polling the event stream by _id every 100ms"
	if watching {
		mode = "a change stream on the event stream, read by _id"
	}
	s.log.InfoContext(ctx, "live events: subscribers are told within a second, on every instance", "mode", mode)
	next, lastGapCheck := int64(0), time.Now()
	for ctx.Err() == nil {
		if next == 0 {
			last, err := s.store.LastNotice(ctx)
			if err != nil {
				s.liveFailed(ctx, err)
				continue
			}
			next = last + 1
		}
		b, err := s.store.BatchAt(ctx, next)
		if err == nil {
			if b.Origin != s.origin { // this instance's own were dispatched as they were queued
				for i := range b.Notices {
					s.live.dispatch(&b.Notices[i])
				}
			}
			next++
			continue
		} else if !errors.Is(err, storage.ErrNotFound) {
			s.liveFailed(ctx, err)
			continue
		}
		if time.Since(lastGapCheck) > gapCheck {
			lastGapCheck = time.Now()
			next = s.checkGap(ctx, next)
		}
		if !watching {
			sleepCtx(ctx, pollInterval)
			continue
		}
		select {
		case _, open := <-wake:
			if !open {
				watching = false
				s.log.WarnContext(ctx, "live events: the change stream ended; polling the event stream by _id every 100ms")
			}
		case <-time.After(time.Second):
		case <-ctx.Done():
		}
	}
}

// checkGap returns the number to wait for after next was not found: next
// itself, normally; after the newest if next was trimmed (this tailer fell
// behind, so every subscriber checks its session) or the stream started
// over (a restored database).
func (s *Service) checkGap(ctx context.Context, next int64) int64 {
	last, err := s.store.LastNotice(ctx)
	switch {
	case err != nil:
		return next
	case last < next-1:
		return last + 1
	case last >= next:
		if _, err := s.store.BatchAt(ctx, next); err == nil {
			return next // written meanwhile
		}
		s.log.WarnContext(ctx, "live events: notices missed; every subscriber checks its session", "from", next, "to", last)
		s.live.resyncAll()
		return last + 1
	}
	return next
}

func (s *Service) liveFailed(ctx context.Context, err error) {
	if ctx.Err() == nil {
		s.log.WarnContext(ctx, "live events: read the stream failed", "err", err)
		sleepCtx(ctx, time.Second)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// SessionForToken returns the live full session token opens, nil if none
// (the token of a pending session included); the error is for database
// failures. It is for transports that carry a token outside the HTTP
// request (a WebSocket's connection_init).
func (s *Service) SessionForToken(ctx context.Context, token string) (*storage.Session, error) {
	sess, err := s.authenticate(ctx, token)
	if err != nil || sess == nil || sess.Pending {
		return nil, err
	}
	return sess, nil
}
