package auth

import (
	"context"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"

	"gatehouse/internal/cgroup"
)

// hasher runs bcrypt with bounded parallelism. bcrypt is the most
// expensive thing a client can make the server do, so at most slots hashes
// run at once; a request that cannot get a slot within wait is refused with
// ErrBusy instead of piling up and starving session validation.
type hasher struct {
	slots     chan struct{}
	wait      time.Duration
	waited    func(time.Duration) // observes how long each slot took to get
	escalated func()              // observes each hash that left the pool (see onPool)

	// Counters for tests and metrics.
	compares atomic.Int64 // comparisons done
	waiting  atomic.Int64 // requests in line now
}

func newHasher(slots int, wait time.Duration, waited func(time.Duration), escalated func()) *hasher {
	return &hasher{slots: make(chan struct{}, max(slots, 1)), wait: wait, waited: waited, escalated: escalated}
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
	ok, escalated := onPool(func() bool {
		return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
	})
	h.note(escalated)
	return ok, nil
}

// hash returns a new bcrypt hash of password at cost.
func (h *hasher) hash(ctx context.Context, password string, cost int) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	type result struct {
		hash string
		err  error
	}
	r, escalated := onPool(func() result {
		hash, err := HashPassword(password, cost)
		return result{hash, err}
	})
	h.note(escalated)
	return r.hash, r.err
}

func (h *hasher) note(escalated bool) {
	if escalated {
		h.escalated()
	}
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
// world briefly, and both happen while no job runs, so that they do not
// wait for a thread that the kernel keeps off the CPU. (The collector's
// stops do wait for a running job: while other processes starve one, its
// pauses grow. The README's Security model says what to do.)
//
// SCHED_IDLE yields to every thread of the machine, not only to ours: when
// other processes keep the cores busy, an idle-class hash gets almost no
// CPU (measured: a cost-4 hash took 4.9 s beside two busy loops, 1000
// times its run alone). Hence onPool's escalation below.
var pool struct {
	once sync.Once
	jobs chan func(tid int)

	mu     sync.Mutex
	busy   int         // jobs not finished, or waiting for a worker
	base   int         // GOMAXPROCS before it was raised; 0 when not raised
	settle *time.Timer // lowers GOMAXPROCS once the pool is quiet
}

// poolQuiet is how long the pool stays idle before its Ps are removed:
// long next to the gaps between the hashes of a queue, short next to a
// hash (a stop of the world costs tens of microseconds).
var poolQuiet = 200 * time.Millisecond

// starveWindow is how often onPool checks whether other processes starve
// its hash, and starveWindows how many windows in a row they must.
var starveWindow = 100 * time.Millisecond

const starveWindows = 3

// onPool runs f on the pool and returns its result. If other processes
// keep the hash off the CPU for starveWindows windows in a row (see
// starvedByOthers), it escalates: it runs f again on the calling
// goroutine, at normal priority, returns that result and reports true. The
// abandoned run goes on using only CPU time that nobody else wants, and
// its worker returns to the pool when it ends. (A thread cannot be raised
// back from SCHED_IDLE without CAP_SYS_NICE, so the work moves instead of
// the thread.)
//
// The server's own load does not escalate: while the rest of the process
// keeps a quarter of the CPU it may use busy, hashes wait for it, as the
// pool intends.
func onPool[T any](f func() T) (T, bool) {
	pool.once.Do(startPool)
	poolEnter()
	out := make(chan T, 1)
	var tid atomic.Int64 // the worker's thread once the job runs
	job := func(t int) {
		tid.Store(int64(t))
		r := f()
		poolLeave() // only now: the worker held a P until here
		out <- r
	}
	tick := time.NewTicker(starveWindow)
	defer tick.Stop()
	w := watch{at: time.Now()}
	w.process, _ = processCPU()
	for jobs := pool.jobs; ; {
		select {
		case jobs <- job:
			jobs = nil
		case r := <-out:
			return r, false
		case <-tick.C:
			if !w.starved(int(tid.Load())) {
				continue
			}
			select {
			case r := <-out: // done after all
				return r, false
			default:
			}
			if jobs != nil { // never sent: nothing of it will run
				poolLeave()
			}
			return f(), true
		}
	}
}

// watch follows one hash, window by window.
type watch struct {
	at      time.Time
	process time.Duration // CPU time of the whole process at at
	tid     int           // the hash's thread at at; 0 before it starts
	thread  time.Duration // CPU time of that thread at at
	streak  int           // starved windows in a row until at
}

// starved reports whether other processes have starved the hash, running
// on thread tid (0 while it waits for a worker), for starveWindows windows
// in a row up to now.
func (w *watch) starved(tid int) bool {
	process, ok := processCPU()
	now := watch{at: time.Now(), process: process, tid: tid}
	if ok && tid != 0 {
		now.thread, ok = threadCPU(tid)
	}
	// A window in which the hash started says nothing, nor one whose
	// clocks could not be read (nowhere but Linux can): judge the next one.
	if ok && w.tid == tid && w.process != 0 &&
		starvedByOthers(now.at.Sub(w.at), now.thread-w.thread, now.process-w.process, capacity) {
		now.streak = w.streak + 1
	}
	if !ok {
		now.process = 0 // the next window has no start
	}
	*w = now
	return w.streak >= starveWindows
}

// starvedByOthers decides, for a window of length d in which the hash's
// thread ran for got and the whole process for all (got included), whether
// other processes took the CPU: the hash had less than a quarter of a core
// and the rest of the process less than a quarter of the cores it may use
// (see capacity). When the rest of the process is busy, the hash waits for
// it by design; when it is not, the hash waits for strangers. A database
// on the same machine counts as a stranger: with cmd/bench's engine in a
// process of its own, the server's share fell below a quarter for single
// windows under a login flood (once or twice in a minute, never two in a
// row in four runs), hence several windows in a row.
func starvedByOthers(d, got, all time.Duration, cores float64) bool {
	return got < d/4 && float64(all-got) < float64(d)*cores/4
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

// capacity is the CPU time the process may use, in cores: cpus, or less
// under a cgroup quota (Go rounds a quota up to whole cores, and to 2 at
// least). Under a quota of half a core, a process that uses all it may
// is busy, not starved.
var capacity = func() float64 {
	if q, ok := cgroup.CPUMax(os.DirFS("/")); ok && q < float64(cpus) {
		return q
	}
	return float64(cpus)
}()

func startPool() {
	pool.jobs = make(chan func(int))
	for range cpus {
		go func() {
			runtime.LockOSThread() // for good: the thread keeps its priority
			lowerThreadPriority()
			tid := gettid()
			for job := range pool.jobs {
				job(tid)
			}
		}()
	}
}

// Queue returns how many requests wait for a bcrypt slot now.
func (s *Service) Queue() int64 { return s.hasher.waiting.Load() }
