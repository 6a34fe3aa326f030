package auth

import (
	"testing"
	"time"
)

// Each slot's wait is observed: zero when a slot is free, the time spent
// in line otherwise. (The bench bounds login latency by this wait.)
func TestHasherObservesItsWait(t *testing.T) {
	waits := make(chan time.Duration, 2)
	h := newHasher(1, time.Minute, func(d time.Duration) { waits <- d })
	ctx := t.Context()
	if err := h.acquire(ctx); err != nil {
		t.Fatal(err)
	}
	if d := <-waits; d != 0 {
		t.Errorf("wait for a free slot = %v, want 0", d)
	}
	const held = 50 * time.Millisecond
	go func() {
		time.Sleep(held)
		h.release()
	}()
	if err := h.acquire(ctx); err != nil {
		t.Fatal(err)
	}
	h.release()
	if d := <-waits; d < held {
		t.Errorf("wait behind a slot held %v = %v, want at least that", held, d)
	}
}
