package auth

import (
	"context"
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

// compare reports whether password is the one hash was made from.
func (h *hasher) compare(ctx context.Context, hash, password string) (bool, error) {
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	defer h.release()
	h.compares.Add(1)
	var ok bool
	lowprio.Run(func() {
		ok = bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
	})
	return ok, nil
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
