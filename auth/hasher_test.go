package auth

import (
	"runtime"
	"testing"
	"time"
)

// The pool's Ps exist only while it works: with more Ps than cores every
// request pays for extra scheduling, so they go once the pool is quiet.
func TestPoolAddsProcsOnlyWhileHashing(t *testing.T) {
	defer func(d time.Duration) { poolQuiet = d }(poolQuiet)
	poolQuiet = 20 * time.Millisecond
	stayOnPool(t)
	waitProcs := func(want int) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); runtime.GOMAXPROCS(0) != want; {
			if time.Now().After(deadline) {
				t.Fatalf("GOMAXPROCS = %d, want %d", runtime.GOMAXPROCS(0), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	onPool(func() int { return 0 }) // start the pool, then let it settle
	pool.mu.Lock()
	base := pool.base
	pool.mu.Unlock()
	waitProcs(base)

	for range 2 {
		during, _ := onPool(func() int { return runtime.GOMAXPROCS(0) })
		if want := base + cpus; during != want {
			t.Errorf("GOMAXPROCS while hashing = %d, want %d", during, want)
		}
		waitProcs(base)
	}
}

// Each slot's wait is observed: zero when a slot is free, the time spent
// in line otherwise. (The bench bounds login latency by this wait.)
func TestHasherObservesItsWait(t *testing.T) {
	waits := make(chan time.Duration, 2)
	h := newHasher(1, time.Minute, func(d time.Duration) { waits <- d }, func() {})
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

// stayOnPool turns escalation off until the test ends, for tests that
// look at the pool's own threads: a busy machine must not move their work.
func stayOnPool(t *testing.T) {
	d := starveWindow
	starveWindow = time.Hour
	t.Cleanup(func() { starveWindow = d })
}
