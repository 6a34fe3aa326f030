package auth

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// hasher runs bcrypt with bounded parallelism. bcrypt is the most
// expensive thing a client can make the server do, so at most slots hashes
// run at once; a request that cannot get a slot within wait is refused with
// ErrBusy instead of piling up and starving session validation.
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
	onPool(func() { ok = bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil })
	return ok, nil
}

// hash returns a new bcrypt hash of password at cost.
func (h *hasher) hash(ctx context.Context, password string, cost int) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	var out string
	var err error
	onPool(func() { out, err = HashPassword(password, cost) })
	return out, err
}

// The bcrypt pool: one worker per CPU, each on an OS thread of its own in
// the SCHED_IDLE class, with GOMAXPROCS raised by as many while it works.
//
// Without it, hashes run on the goroutines of the requests, and a login
// flood holds every P of the Go scheduler: a session check then waits for
// the 10 ms preemption slices at every step, and its p99 grows tens of
// times. With it, hashing holds only the Ps added for it, and the kernel
// gives the CPU to the request threads first. (Measured by cmd/bench:
// session p99 under a login flood went from 34x to about 2x at c=1 with
// nice 19, and to 1.3-1.9x with SCHED_IDLE, logins per second unchanged.)
//
// The extra Ps are not free: with more Ps than cores, the scheduler wakes
// and parks threads more often, and a session check cost 12-18% more CPU
// (cmd/bench, GOMAXPROCS 4 against 2 on 2 cores). So they are added when
// a hash starts and removed once the pool has been idle for poolQuiet
// (short: until then every request pays for them). Both changes stop the
// world briefly, and both happen while no worker runs: a stop never waits
// for a thread that the kernel keeps off the CPU.
var pool struct {
	once sync.Once
	jobs chan func()

	mu     sync.Mutex
	busy   int         // hashes running or waiting for a worker
	base   int         // GOMAXPROCS before it was raised; 0 when not raised
	settle *time.Timer // lowers GOMAXPROCS once the pool is quiet
}

// poolQuiet is how long the pool stays idle before its Ps are removed:
// long next to the gaps between the hashes of a queue, short next to a
// hash (a stop of the world costs tens of microseconds).
var poolQuiet = 200 * time.Millisecond

func onPool(f func()) {
	pool.once.Do(startPool)
	poolEnter()
	defer poolLeave()
	done := make(chan struct{})
	pool.jobs <- func() { defer close(done); f() }
	<-done
}

func poolEnter() {
	pool.mu.Lock()
	defer pool.mu.Unlock()
	pool.busy++
	if pool.settle != nil {
		pool.settle.Stop()
		pool.settle = nil
	}
	if pool.base == 0 {
		pool.base = runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + cpus)
	}
}

func poolLeave() {
	pool.mu.Lock()
	defer pool.mu.Unlock()
	if pool.busy--; pool.busy == 0 {
		pool.settle = time.AfterFunc(poolQuiet, poolSettle)
	}
}

func poolSettle() {
	pool.mu.Lock()
	defer pool.mu.Unlock()
	if pool.busy == 0 && pool.base != 0 {
		runtime.GOMAXPROCS(pool.base)
		pool.base = 0
	}
}

// cpus is the CPU time the process may use, in cores: GOMAXPROCS as the
// runtime sets it at start, which follows the CPU quota of a container
// (runtime.NumCPU does not: 32 hashes at once in a 2-CPU container would
// spend its quota in moments, and the kernel would then stall every
// thread of the process, not just the hashes).
var cpus = runtime.GOMAXPROCS(0)

func startPool() {
	pool.jobs = make(chan func())
	for range cpus {
		go func() {
			runtime.LockOSThread() // for good: the thread keeps its priority
			lowerThreadPriority()
			for f := range pool.jobs {
				f()
			}
		}()
	}
}

// Queue returns how many requests wait for a bcrypt slot now.
func (s *Service) Queue() int64 { return s.hasher.waiting.Load() }
