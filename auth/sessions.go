package auth

import (
	"context"
	"errors"
	"time"

	"gatehouse/storage"
)

// sweepTimeout bounds one sweep.
const sweepTimeout = 2 * time.Minute

// slide returns the expiry of a session created at created and used at now.
func (s *Service) slide(created, now time.Time) time.Time {
	return earlier(now.Add(s.cfg.TTL), created.Add(s.cfg.MaxAge))
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// ExpiresAt returns when sess stops being honoured under the current
// policy: its stored expiry, or its creation plus MaxAge if that is sooner
// (so lowering SESSION_MAX_AGE takes effect at once).
func (s *Service) ExpiresAt(sess *storage.Session) time.Time {
	return earlier(sess.ExpiresAt, sess.CreatedAt.Add(s.cfg.MaxAge))
}

// expired reports whether sess is past its expiry now.
func (s *Service) expired(sess *storage.Session) bool {
	return !s.cfg.Now().Before(s.ExpiresAt(sess))
}

// deleteExpired deletes sess if it has expired and reports whether it had.
// Callers treat an expired session exactly like a missing one.
func (s *Service) deleteExpired(ctx context.Context, sess *storage.Session) (bool, error) {
	if !s.expired(sess) {
		return false, nil
	}
	deleted, err := s.store.DeleteSession(ctx, sess.ID, sess.UserID)
	if deleted {
		s.meter().SessionsEnded(1, "expired")
		s.recordAt(ctx, s.ExpiresAt(sess), EventSessionExpired, sess.UserID, sess.ID)
	}
	return true, err
}

// authenticate returns the live session a token opens, or nil when it opens
// none (malformed, unknown, wrong secret, expired). Expired sessions are
// deleted on sight. A session that is due is touched: its expiry slides.
// The error is for database failures only.
func (s *Service) authenticate(ctx context.Context, token string) (*storage.Session, error) {
	id, digest, ok := parseToken(token)
	if !ok {
		s.meter().Lookup("malformed")
		return nil, nil
	}
	sess, err := s.store.SessionByID(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		s.meter().Lookup("unknown")
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	// A wrong secret leaves the session alone: knowing a session's public
	// id must not be enough to end it.
	if !digestsEqual(sess.SecretHash, digest[:]) {
		s.meter().Lookup("bad_secret")
		return nil, nil
	}
	if expired, err := s.deleteExpired(ctx, sess); expired || err != nil {
		s.meter().Lookup("expired")
		return nil, err
	}
	s.meter().Lookup("ok")
	s.touch(ctx, sess)
	return sess, nil
}

// touchInterval is how stale lastSeenAt may get before a use writes it:
// a minute, or TTL/2 when that is shorter, so reads stay reads.
func (s *Service) touchInterval() time.Duration { return min(time.Minute, s.cfg.TTL/2) }

// touch records a use of sess, sliding its expiry, when its last recorded
// use is more than a touch interval old. A pending session does not slide:
// it ends SecondFactorTimeout after the password, however it is used.
func (s *Service) touch(ctx context.Context, sess *storage.Session) {
	now, interval := s.now(), s.touchInterval()
	if sess.Pending || now.Sub(sess.LastSeenAt) < interval {
		return
	}
	exp := s.slide(sess.CreatedAt, now)
	due, err := s.store.TouchSessionOncePer(ctx, sess, now, exp, interval)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		// The session was read and is valid; a failed bookkeeping write
		// must not fail the request.
		s.log.WarnContext(ctx, "touch session failed", "err", err)
		return
	}
	if due {
		sess.LastSeenAt, sess.ExpiresAt = now, exp
	}
}

// Session returns the caller's session with id, or nil if there is none
// that the caller may see: another user's session is indistinguishable
// from a missing one. An expired session is deleted and reported as nil.
func (s *Service) Session(ctx context.Context, caller *storage.Session, id string) (*storage.Session, error) {
	if id == caller.ID {
		return caller, nil
	}
	if !validID(id) {
		return nil, nil
	}
	sess, err := s.store.SessionByID(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if sess.UserID != caller.UserID {
		return nil, nil
	}
	if expired, err := s.deleteExpired(ctx, sess); expired || err != nil {
		return nil, err
	}
	return sess, nil
}

// Sessions returns up to limit live sessions of the caller's user, newest
// first. Expired ones found on the way are deleted.
func (s *Service) Sessions(ctx context.Context, caller *storage.Session, limit int) ([]*storage.Session, error) {
	all, err := s.store.SessionsOfUser(ctx, caller.UserID, limit)
	if err != nil {
		return nil, err
	}
	live := all[:0]
	for _, sess := range all {
		if sess.ID == caller.ID {
			live = append(live, caller) // the freshest copy
			continue
		}
		expired, err := s.deleteExpired(ctx, sess)
		if err != nil {
			return nil, err
		}
		if !expired {
			live = append(live, sess)
		}
	}
	return live, nil
}

// DeleteSession ends the caller's session id and reports whether there was
// one the caller owned.
func (s *Service) DeleteSession(ctx context.Context, caller *storage.Session, id string) (bool, error) {
	sess, err := s.Session(ctx, caller, id)
	if err != nil || sess == nil {
		return false, err
	}
	deleted, err := s.store.DeleteSession(ctx, sess.ID, sess.UserID)
	if deleted {
		reason, typ := "revoked", EventSessionRevoked
		if id == caller.ID {
			reason, typ = "logout", EventSignedOut
		}
		s.meter().SessionsEnded(1, reason)
		if !(sess.Pending && id == caller.ID) { // a sign-in given up was never signed in
			s.record(ctx, typ, sess.UserID, sess.ID)
		}
	}
	return deleted, err
}

// DeleteOtherSessions ends every session of the caller's user but the
// caller's own and returns how many it ended.
func (s *Service) DeleteOtherSessions(ctx context.Context, caller *storage.Session) (int64, error) {
	n, err := s.store.DeleteSessionsOfUser(ctx, caller.UserID, caller.ID)
	s.meter().SessionsEnded(int(n), "others")
	s.record(ctx, EventOtherSessionsRevoked, caller.UserID, caller.ID)
	return n, err
}

// SetData replaces the data of the caller's session.
func (s *Service) SetData(ctx context.Context, caller *storage.Session, data string) (*storage.Session, error) {
	sess, err := s.store.SetSessionData(ctx, caller.ID, data)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, ErrUnauthenticated // deleted under us
	} else if err != nil {
		return nil, err
	}
	s.notifyData(ctx, caller.UserID, caller.ID)
	return sess, nil
}

// Sweep deletes every expired session once and returns how many.
func (s *Service) Sweep(ctx context.Context) (int64, error) {
	// A sweep reads every session that expired since the last one, which
	// after a long pause may take longer than a request's deadline.
	ctx, cancel := context.WithTimeout(ctx, sweepTimeout)
	defer cancel()
	n, err := s.store.DeleteExpiredSessions(ctx, s.now(), func(sess *storage.Session) {
		s.recordAt(ctx, s.ExpiresAt(sess), EventSessionExpired, sess.UserID, sess.ID)
	})
	s.meter().SessionsEnded(int(n), "swept")
	return n, err
}

// RunSweeper calls Sweep every interval until ctx ends. Every instance may
// run one: deletes are idempotent.
func (s *Service) RunSweeper(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := s.Sweep(ctx)
			if _, terr := s.sweepThrottles(ctx); err == nil {
				err = terr
			}
			if _, cerr := s.store.DeleteExpiredClaims(ctx, s.now()); err == nil {
				err = cerr // claims of TOTP steps too old to be presented again
			}
			if _, cerr := s.store.DeleteExpiredChallenges(ctx, s.now()); err == nil {
				err = cerr // passkey ceremonies begun and never finished
			}
			if _, eerr := s.SweepEvents(ctx); err == nil {
				err = eerr // security events past their retention, old notices
			}
			switch {
			case err != nil && ctx.Err() == nil:
				s.log.WarnContext(ctx, "sweep expired sessions failed", "err", err)
			case err != nil: // shutting down
			case n > 0:
				s.log.InfoContext(ctx, "swept expired sessions", "count", n)
			default:
				// At debug level every pass shows, so an operator (and the
				// many-instances test) can see each instance's sweeper run.
				s.log.DebugContext(ctx, "swept expired sessions", "count", n)
			}
		}
	}
}
