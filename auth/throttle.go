package auth

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"time"

	"gatehouse/storage"
)

// ThrottleConfig bounds password guessing. Checks are counted per username
// (known or not, so the throttle reveals nothing) and per client network,
// in the database, so every instance shares the counts.
type ThrottleConfig struct {
	// UserLimit failures for one username within Window lock it.
	UserLimit int
	// IPLimit failures from one client network within Window lock it.
	IPLimit int
	// RegisterLimit registrations from one client network within Window
	// lock its registrations.
	RegisterLimit int
	// Window is how long failures are remembered after the last one.
	Window time.Duration
	// BaseDelay is the first lock's length; each further lock doubles it,
	// up to MaxDelay.
	BaseDelay time.Duration
	MaxDelay  time.Duration
}

// DefaultThrottle is the policy used when Config.Throttle is zero.
var DefaultThrottle = ThrottleConfig{
	UserLimit: 5, IPLimit: 50, RegisterLimit: 10, Window: 15 * time.Minute,
	BaseDelay: 30 * time.Second, MaxDelay: 15 * time.Minute,
}

// A credential check is paid for before it is made: it reserves one
// attempt under each of its keys, in one atomic write per key, and the
// reservation counts against the key's limit like a failure until the
// outcome is known. So however many checks arrive at once, at most the
// limit's worth get to bcrypt; a right password gives its reservation
// back, a wrong one keeps it as a failure.
//
// A key's budget is open while pending + failures < limit and no lock
// runs. The failure that reaches the limit locks the key for BaseDelay,
// doubling with each further lock up to MaxDelay, and leaves one attempt
// for after the lock: its failure locks again, for longer. A window
// without any check forgets the key.

// Checks over a key's budget that are only held back by pending ones (as
// when many logins of one user with the right password arrive at once)
// wait their turn rather than fail: in this process on a local gate per
// key, and behind other instances by trying again now and then, both up
// to BcryptWait.

// reservation is the attempts one credential check holds.
type reservation struct {
	s    *Service
	keys []reserved
}

type reserved struct {
	key   string
	limit int
}

// throttleKeys returns the keys a password check for user key from client
// is counted under.
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

// reservePasswordCheck reserves a check of user key's password from c, or
// refuses with a *ThrottledError.
func (s *Service) reservePasswordCheck(ctx context.Context, userKey string, c Client) (*reservation, error) {
	user, network := throttleKeys(userKey, c)
	tc := s.cfg.Throttle
	return s.reserve(ctx, reserved{user, tc.UserLimit}, reserved{network, tc.IPLimit})
}

// reserveRegistration reserves a registration from c: it counts under the
// client's own registration budget, and a client locked out of logins is
// refused here too (register would be an oracle of names otherwise).
func (s *Service) reserveRegistration(ctx context.Context, c Client) (*reservation, error) {
	_, network := throttleKeys("", c)
	if err := s.checkLock(ctx, network); err != nil {
		return nil, err
	}
	return s.reserve(ctx, reserved{"register:" + clientNetwork(c.IP), s.cfg.Throttle.RegisterLimit})
}

// reserve reserves one attempt under every key, in order, or none.
func (s *Service) reserve(ctx context.Context, keys ...reserved) (*reservation, error) {
	r := &reservation{s: s}
	for _, k := range keys {
		if err := s.reserveOne(ctx, k); err != nil {
			r.release(ctx, false)
			return nil, err
		}
		r.keys = append(r.keys, k)
	}
	return r, nil
}

func (s *Service) reserveOne(ctx context.Context, k reserved) (err error) {
	// Waiting is bounded; the database calls keep their own deadline.
	wait, cancel := context.WithTimeout(ctx, s.cfg.BcryptWait)
	defer cancel()
	if err := s.gates.enter(wait, k.key, k.limit); err != nil {
		return busy(err)
	}
	defer func() {
		if err != nil {
			s.gates.leave(k.key)
		}
	}()
	for retry := time.Duration(0); ; retry = min(2*retry+10*time.Millisecond, 200*time.Millisecond) {
		if err := sleep(wait, retry); err != nil {
			return busy(err)
		}
		if err := s.checkLock(ctx, k.key); err != nil {
			return err
		}
		t, err := s.store.ReserveAttempt(ctx, k.key, s.now())
		if err != nil {
			return err
		}
		locked := t.LockedUntil.After(s.cfg.Now()) // since checkLock read it (another instance)
		if !locked && t.Pending+t.Failures <= k.limit {
			return nil
		}
		// Over the budget: give the attempt back.
		if err := s.store.ReleaseAttempt(ctx, k.key, false); err != nil {
			return err
		}
		if locked || t.Failures >= k.limit {
			return &ThrottledError{RetryAfter: max(time.Second, t.LockedUntil.Sub(s.cfg.Now()))}
		}
		// Held by checks in flight on other instances; they end within a
		// bcrypt comparison.
	}
}

// busy is the error of a reservation that ran out of time waiting.
func busy(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return ErrBusy
	}
	return err
}

func sleep(ctx context.Context, d time.Duration) error {
	if d == 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// gates let at most a key's limit of its checks through at once in this
// process.
type gates struct {
	mu    sync.Mutex
	gates map[string]*gate
}

type gate struct {
	slots chan struct{}
	refs  int
}

func (g *gates) enter(ctx context.Context, key string, limit int) error {
	g.mu.Lock()
	if g.gates == nil {
		g.gates = map[string]*gate{}
	}
	e := g.gates[key]
	if e == nil {
		e = &gate{slots: make(chan struct{}, max(limit, 1))}
		g.gates[key] = e
	}
	e.refs++
	g.mu.Unlock()
	select {
	case e.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		g.drop(key, e)
		return ctx.Err()
	}
}

func (g *gates) leave(key string) {
	g.mu.Lock()
	e := g.gates[key]
	g.mu.Unlock()
	<-e.slots
	g.drop(key, e)
}

func (g *gates) drop(key string, e *gate) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if e.refs--; e.refs == 0 {
		delete(g.gates, key)
	}
}

// checkLock refuses with a *ThrottledError while key is locked, and forgets
// key if it has been quiet for a window. It writes nothing otherwise, so a
// refused request costs one read.
func (s *Service) checkLock(ctx context.Context, key string) error {
	t, err := s.store.ThrottleByKey(ctx, key)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	now := s.cfg.Now()
	if wait := t.LockedUntil.Sub(now); wait > 0 {
		return &ThrottledError{RetryAfter: wait}
	}
	if now.Sub(latest(t.At, t.LockedUntil)) > s.cfg.Throttle.Window {
		// Quiet for a whole window since the last check or lock: start
		// over. (Counting from the lock's end keeps a capped lock from
		// handing out a fresh budget the moment it ends.) The delete is
		// conditional on nothing having changed, so no reservation made
		// meanwhile is lost.
		if _, err := s.store.ResetThrottle(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

// succeeded gives back the reservation of a check that passed. A right
// password also forgets the username's failures.
func (r *reservation) succeeded(ctx context.Context) { r.release(ctx, true) }

// release gives back the attempts of a check that did not fail (an error
// before any answer, or a right password when forget is true).
func (r *reservation) release(ctx context.Context, forget bool) {
	var wg sync.WaitGroup // the keys at once: a login waits for one write, not two
	for i, k := range r.keys {
		wg.Go(func() {
			// Only the username's failures are forgotten: the client
			// network's count of failures for other names stays.
			if err := r.s.store.ReleaseAttempt(context.WithoutCancel(ctx), k.key, forget && i == 0); err != nil {
				r.s.log.WarnContext(ctx, "release throttle failed", "err", err)
			}
			r.s.gates.leave(k.key)
		})
	}
	wg.Wait()
}

// failed turns the reservation into a failure under every key, locking
// the keys that reach their limit, and reports whether it locked the
// first (for a password check, the username's).
func (r *reservation) failed(ctx context.Context) (lockedFirst bool, _ error) {
	var errs []error
	for i, k := range r.keys {
		locked, err := r.s.fail(context.WithoutCancel(ctx), k)
		lockedFirst = lockedFirst || locked && i == 0
		errs = append(errs, err)
		r.s.gates.leave(k.key)
	}
	return lockedFirst, errors.Join(errs...)
}

// spent keeps the reservation as used (a registration, whatever its
// outcome, counts against the client's registrations).
func (r *reservation) spent(ctx context.Context) error {
	_, err := r.failed(ctx)
	return err
}

// fail counts a failure under k and reports whether it locked k.
func (s *Service) fail(ctx context.Context, k reserved) (bool, error) {
	tc := s.cfg.Throttle
	now := s.now()
	t, err := s.store.FailAttempt(ctx, k.key, now)
	if err != nil || t.Failures < k.limit {
		return false, err
	}
	delay := tc.BaseDelay << min(t.Lockouts, 30)
	if delay > tc.MaxDelay || delay <= 0 {
		delay = tc.MaxDelay
	}
	// One attempt stays for after the lock; its failure locks again.
	return true, s.store.LockThrottle(ctx, k.key, now.Add(delay), k.limit-1)
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
