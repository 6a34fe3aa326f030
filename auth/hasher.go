package auth

import (
	"context"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// hasher runs bcrypt with bounded parallelism. bcrypt is the most
// expensive thing a client can make the server do, so at most slots hashes
// run at once; a request that cannot get a slot within wait is refused with
// ErrBusy instead of piling up and starving session validation.
type hasher struct {
	slots chan struct{}
	wait  time.Duration

	// Counters for tests and metrics.
	compares atomic.Int64 // comparisons done
	waiting  atomic.Int64 // requests in line now
}

func newHasher(slots int, wait time.Duration) *hasher {
	return &hasher{slots: make(chan struct{}, max(slots, 1)), wait: wait}
}

func (h *hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	default:
	}
	h.waiting.Add(1)
	defer h.waiting.Add(-1)
	t := time.NewTimer(h.wait)
	defer t.Stop()
	select {
	case h.slots <- struct{}{}:
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
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil, nil
}

// hash returns a new bcrypt hash of password at cost.
func (h *hasher) hash(ctx context.Context, password string, cost int) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	return HashPassword(password, cost)
}

// Queue returns how many requests wait for a bcrypt slot now.
func (s *Service) Queue() int64 { return s.hasher.waiting.Load() }
