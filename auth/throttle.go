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

// throttles are the two counters a credential check is held to, as
// checkThrottle read them (nil where none exists), so that recording the
// outcome needs no second read.
type throttles struct {
	userKey, netKey string
	user, net       *storage.Throttle
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

// checkThrottle reads the counters of a credential check for userKey from
// c and refuses with a *ThrottledError while either is locked. It runs
// before any bcrypt work, so a refused guess costs almost nothing and a
// right password is refused too: the answer must not leak.
func (s *Service) checkThrottle(ctx context.Context, userKey string, c Client) (*throttles, error) {
	t := &throttles{}
	t.userKey, t.netKey = throttleKeys(userKey, c)
	var err error
	if t.user, err = s.throttleByKey(ctx, t.userKey); err != nil {
		return nil, err
	}
	if t.net, err = s.throttleByKey(ctx, t.netKey); err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	var wait time.Duration
	for _, th := range []*storage.Throttle{t.user, t.net} {
		if th != nil {
			wait = max(wait, th.LockedUntil.Sub(now))
		}
	}
	if wait > 0 {
		return nil, &ThrottledError{RetryAfter: wait}
	}
	return t, nil
}

func (s *Service) throttleByKey(ctx context.Context, key string) (*storage.Throttle, error) {
	t, err := s.store.ThrottleByKey(ctx, key)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	return t, err
}

// recordFailures counts a failed credential check under both keys.
func (s *Service) recordFailures(ctx context.Context, t *throttles) error {
	return errors.Join(
		s.recordFailure(ctx, t.userKey, t.user, s.cfg.Throttle.UserLimit),
		s.recordFailure(ctx, t.netKey, t.net, s.cfg.Throttle.IPLimit),
	)
}

// recordFailure counts a failed attempt for key, whose counter was prev,
// and locks it once it reaches limit within the window; while the count
// stays at the limit, each further failure locks again for twice as long,
// up to MaxDelay.
func (s *Service) recordFailure(ctx context.Context, key string, prev *storage.Throttle, limit int) error {
	tc := s.cfg.Throttle
	now := s.now()
	if prev != nil && now.Sub(latest(prev.LastFailureAt, prev.LockedUntil)) > tc.Window {
		// Quiet for a whole window since the last failure or lock: start
		// over. (Counting from the lock's end keeps a capped lock from
		// handing out a fresh budget the moment it ends.)
		if err := s.store.DeleteThrottle(ctx, key); err != nil {
			return err
		}
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

// succeeded forgets the username's failures after a right password; most
// logins have none, and then write nothing.
func (s *Service) succeeded(ctx context.Context, t *throttles) {
	if t.user == nil {
		return
	}
	if err := s.store.DeleteThrottle(ctx, t.userKey); err != nil {
		s.log.WarnContext(ctx, "reset throttle failed", "err", err)
	}
}

// sweepThrottles deletes throttles that have been quiet for a window.
func (s *Service) sweepThrottles(ctx context.Context) (int64, error) {
	now := s.now()
	return s.store.DeleteStaleThrottles(ctx, now.Add(-s.cfg.Throttle.Window), now)
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
