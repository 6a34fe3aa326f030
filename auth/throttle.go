package auth

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"gatehouse/storage"
)

// ThrottleConfig bounds password guessing. Failures are counted per
// username (known or not, so the throttle reveals nothing) and per client
// network, in the database, so every instance shares the counts.
type ThrottleConfig struct {
	// UserLimit failures for one username within Window lock it.
	UserLimit int
	// IPLimit failures from one client network within Window lock it.
	IPLimit int
	// Window is how long failures are remembered after the last one.
	Window time.Duration
	// BaseDelay is the first lock's length; each further lock doubles it,
	// up to MaxDelay.
	BaseDelay time.Duration
	MaxDelay  time.Duration
}

// DefaultThrottle is the policy used when Config.Throttle is zero.
var DefaultThrottle = ThrottleConfig{
	UserLimit: 5, IPLimit: 50, Window: 15 * time.Minute, BaseDelay: 30 * time.Second, MaxDelay: 15 * time.Minute,
}

// throttleKeys returns the keys a credential check for user key from
// client is counted under.
func throttleKeys(userKey string, c Client) (user, network string) {
	return "user:" + userKey, "net:" + clientNetwork(c.IP)
}

// clientNetwork is the unit an attacker pays for: one IPv4 address, or an
// IPv6 /64 (one host usually holds a whole /64).
func clientNetwork(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// checkThrottle refuses with a *ThrottledError while any key is locked.
// It runs before any bcrypt work, so a refused guess costs almost nothing
// and a right password is refused too: the answer must not leak.
func (s *Service) checkThrottle(ctx context.Context, keys ...string) error {
	now := s.cfg.Now()
	var wait time.Duration
	for _, k := range keys {
		t, err := s.store.ThrottleByKey(ctx, k)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		} else if err != nil {
			return err
		}
		wait = max(wait, t.LockedUntil.Sub(now))
	}
	if wait > 0 {
		return &ThrottledError{RetryAfter: wait}
	}
	return nil
}

// recordFailure counts a failed attempt for key and locks it once it
// reaches limit within the window; while the count stays at the limit,
// each further failure locks again for twice as long, up to MaxDelay.
func (s *Service) recordFailure(ctx context.Context, key string, limit int) error {
	tc := s.cfg.Throttle
	now := s.now()
	if t, err := s.store.ThrottleByKey(ctx, key); err == nil && now.Sub(latest(t.LastFailureAt, t.LockedUntil)) > tc.Window {
		// Quiet for a whole window since the last failure or lock: start
		// over. (Counting from the lock's end keeps a capped lock from
		// handing out a fresh budget the moment it ends.)
		if err := s.store.DeleteThrottle(ctx, key); err != nil {
			return err
		}
	} else if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	t, err := s.store.AddFailure(ctx, key, now)
	if err != nil {
		return err
	}
	if t.Failures < limit {
		return nil
	}
	delay := tc.BaseDelay << min(t.Lockouts, 30)
	if delay > tc.MaxDelay || delay <= 0 {
		delay = tc.MaxDelay
	}
	_, err = s.store.Lock(ctx, key, now.Add(delay))
	return err
}

// recordFailures counts a failed credential check under both keys.
func (s *Service) recordFailures(ctx context.Context, userKey, netKey string) error {
	return errors.Join(
		s.recordFailure(ctx, userKey, s.cfg.Throttle.UserLimit),
		s.recordFailure(ctx, netKey, s.cfg.Throttle.IPLimit),
	)
}

// SweepThrottles deletes throttles that have been quiet for a window.
func (s *Service) SweepThrottles(ctx context.Context) (int64, error) {
	now := s.now()
	return s.store.DeleteStaleThrottles(ctx, now.Add(-s.cfg.Throttle.Window), now)
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
