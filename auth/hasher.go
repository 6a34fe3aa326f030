package auth

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"

	"gatehouse/internal/lowprio"
)

// hasher runs bcrypt with bounded parallelism. bcrypt is the most
// expensive thing a client can make the server do, so at most slots hashes
// run at once; a request that cannot get a slot within wait is refused with
// ErrBusy instead of piling up and starving session validation.
//
// Each hash runs through lowprio.Run, on a thread of its own that the
// kernel puts behind the request threads: a login flood then takes only
// the CPU time that session checks leave. lowprio gives the runtime as
// many extra Ps as it has while hashes run, so the default of one slot
// per P keeps them all off the requests' Ps.
type hasher struct {
	slots  chan struct{}
	wait   time.Duration
	waited func(time.Duration) // observes how long each slot took to get
	timing timing

	// Counters for tests and metrics.
	compares atomic.Int64 // comparisons done
	waiting  atomic.Int64 // requests in line now
}

func newHasher(slots int, wait time.Duration, waited func(time.Duration)) *hasher {
	return &hasher{slots: make(chan struct{}, max(slots, 1)), wait: wait, waited: waited}
}

func (h *hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		h.waited(0)
		return nil
	default:
	}
	h.waiting.Add(1)
	defer h.waiting.Add(-1)
	start := time.Now()
	t := time.NewTimer(h.wait)
	defer t.Stop()
	select {
	case h.slots <- struct{}{}:
		h.waited(time.Since(start))
		return nil
	case <-t.C:
		return ErrBusy
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *hasher) release() { <-h.slots }

// compare reports whether password is the one hash was made from, and how
// long the comparison took once it had a slot.
func (h *hasher) compare(ctx context.Context, hash, password string) (ok bool, took time.Duration, err error) {
	if err := h.acquire(ctx); err != nil {
		return false, 0, err
	}
	defer h.release()
	h.compares.Add(1)
	start := time.Now()
	lowprio.Run(func() {
		ok = bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
	})
	took = time.Since(start)
	h.timing.observe(hashCost(hash), took)
	return ok, took, nil
}

// padFailure sleeps after a failed comparison that took took, until it has
// taken as long as a comparison at the slowest cost seen usually does: a
// hash made at a lower cost than the others must not answer faster.
func (h *hasher) padFailure(ctx context.Context, took time.Duration) {
	wait := h.timing.slowest() - took
	if wait <= 0 {
		return
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// timing keeps the usual duration of a comparison at each bcrypt cost: a
// moving average, which follows the machine's load.
type timing struct {
	mu      sync.Mutex
	typical map[int]time.Duration
}

func (t *timing) observe(cost int, d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.typical == nil {
		t.typical = map[int]time.Duration{}
	}
	if prev, ok := t.typical[cost]; ok {
		d = prev + (d-prev)/8
	}
	t.typical[cost] = d
}

func (t *timing) slowest() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	var top time.Duration
	for _, d := range t.typical {
		top = max(top, d)
	}
	return top
}

// hash returns a new bcrypt hash of password at cost.
func (h *hasher) hash(ctx context.Context, password string, cost int) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	var hash string
	var err error
	lowprio.Run(func() { hash, err = HashPassword(password, cost) })
	return hash, err
}

// Queue returns how many requests wait for a bcrypt slot now.
func (s *Service) Queue() int64 { return s.hasher.waiting.Load() }
