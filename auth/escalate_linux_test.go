package auth

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// spinCPU runs on the calling thread until it has used d of CPU time.
func spinCPU(t *testing.T, d time.Duration) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := gettid()
	start, ok := threadCPU(tid)
	for deadline := time.Now().Add(time.Minute); ; {
		now, ok2 := threadCPU(tid)
		if !ok || !ok2 {
			t.Error("cannot read this thread's CPU clock")
			return
		}
		if now-start >= d {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("a minute of spinning used %v of CPU, want %v", now-start, d)
			return
		}
		for i := 0; i < 1e5; i++ {
			_ = i * i
		}
	}
}

// The clocks that tell starvation apart measure what they say: one
// thread's CPU time, read from another thread, and the whole process's.
func TestCPUClocksFollowThreads(t *testing.T) {
	parked, release := make(chan int), make(chan struct{})
	defer close(release)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		parked <- gettid()
		<-release
	}()
	spinning, done := make(chan int), make(chan struct{})
	const spin = 50 * time.Millisecond
	go func() {
		defer close(done)
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		spinning <- gettid()
		spinCPU(t, spin)
	}()
	idle, busy := <-parked, <-spinning
	idle0, _ := threadCPU(idle)
	process0, _ := processCPU()
	busy0, ok := threadCPU(busy)
	if !ok {
		t.Fatal("cannot read another thread's CPU clock")
	}
	<-done
	busy1, _ := threadCPU(busy)
	// The spinner measured its own clock from the start of its goroutine;
	// read from here, a little of that may precede busy0.
	if d := busy1 - busy0; d < spin/2 {
		t.Errorf("a thread that spun %v of CPU: its clock read from another thread moved %v", spin, d)
	}
	if d, _ := processCPU(); d-process0 < spin/2 {
		t.Errorf("process clock moved %v while one of its threads spun %v", d-process0, spin)
	}
	if d, _ := threadCPU(idle); d-idle0 > spin/5 {
		t.Errorf("a parked thread's clock moved %v while another thread spun %v", d-idle0, spin)
	}
	if _, ok := threadCPU(os.Getppid()); ok {
		t.Error("the clock of another process's thread reads fine")
	}
}

// Starvation is the hash's when the rest of the process is idle too; when
// the rest of the process keeps the CPU it may use, the hash waits for it.
func TestStarvedByOthers(t *testing.T) {
	const d = 100 * time.Millisecond
	for _, tc := range []struct {
		name     string
		got, all time.Duration
		cores    float64
		want     bool
	}{
		{"the hash ran alone", d, d, 2, false},
		{"the hash had half a core", d / 2, d / 2, 2, false},
		{"nothing of ours ran: other processes had the CPU", 0, 0, 2, true},
		{"the hash crawled and the process idled", d / 10, d / 5, 2, true},
		{"our requests had the cores", 0, 2 * d, 2, false},
		{"our requests had a third of the cores", d / 10, d/10 + 2*d/3, 2, false},
		{"a quota of half a core, used by our requests", 0, d / 2, 0.5, false},
		{"a quota of half a core, unused", 0, d / 50, 0.5, true},
	} {
		if got := starvedByOthers(d, tc.got, tc.all, tc.cores); got != tc.want {
			t.Errorf("%s (hash %v, process %v of %v on %v cores): starved by others = %v, want %v",
				tc.name, tc.got, tc.all, d, tc.cores, got, tc.want)
		}
	}
}

// A run that gets no CPU on the pool (here: blocked, as a starved thread
// would be) while the process idles escalates after starveWindows
// windows: the caller runs f itself. The abandoned run's worker comes back
// to the pool when it ends.
func TestOnPoolEscalatesAStarvedRun(t *testing.T) {
	waitPoolIdle(t)
	var calls atomic.Int32
	release := make(chan struct{})
	start := time.Now()
	n, escalated := onPool(func() int32 {
		n := calls.Add(1)
		if n == 1 {
			<-release
		}
		return n
	})
	took := time.Since(start)
	close(release)
	if !escalated || n != 2 {
		t.Errorf("onPool = call %d, escalated %v; want call 2 (the caller's), escalated", n, escalated)
	}
	if min := starveWindows * starveWindow; took < min {
		t.Errorf("escalated after %v, before %d windows of %v", took, starveWindows, starveWindow)
	}
	waitPoolIdle(t)
}

// While the rest of the process keeps the cores busy, a hash that gets no
// CPU waits for it: the server's own load never escalates.
func TestOwnLoadDoesNotEscalate(t *testing.T) {
	waitPoolIdle(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 * cpus { // more than the Ps: every P stays busy
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					for i := 0; i < 1e4; i++ {
						_ = i * i
					}
				}
			}
		})
	}
	defer wg.Wait()
	defer close(stop)
	hold := (starveWindows + 3) * starveWindow
	_, escalated := onPool(func() bool {
		time.Sleep(hold) // no CPU, like a hash the requests keep off it
		return true
	})
	if escalated {
		t.Errorf("a run held %v while the process kept %d goroutines spinning escalated", hold, 2*cpus)
	}
}

// startHogs runs n busy processes until stop is called or the test ends
// (each also exits by itself after a minute, should the test be killed).
func startHogs(t *testing.T, n int) (stop func()) {
	t.Helper()
	var cmds []*exec.Cmd
	stop = func() {
		for _, cmd := range cmds {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		cmds = nil
	}
	t.Cleanup(stop)
	for range n {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), hogEnv+"=1")
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
		if _, err := bufio.NewReader(out).ReadString('\n'); err != nil { // it spins from now on
			t.Fatalf("busy process: %v", err)
		}
	}
	return stop
}

// With one busy process per core beside it, a hash on the pool gets
// almost no CPU (a cost-4 bcrypt once took 4.9 s beside two busy loops).
// It escalates once, and the caller's run gets a fair share of a core.
func TestWorkEscalatesWhenOtherProcessesTakeTheCPU(t *testing.T) {
	waitPoolIdle(t)
	const work = 100 * time.Millisecond   // of CPU time
	t.Cleanup(func() { waitPoolIdle(t) }) // after the busy processes stop
	stop := startHogs(t, cpus)
	start := time.Now()
	_, escalated := onPool(func() bool {
		spinCPU(t, work)
		return true
	})
	took := time.Since(start)
	stop()
	if !escalated {
		t.Errorf("no escalation beside %d busy processes (took %v)", cpus, took)
	}
	// Escalated: starveWindows windows, then the work at a fair share of
	// a core. Starved: hundreds of times the work (71 s for a 194 ms hash
	// when this ran with escalation off).
	if limit := (starveWindows+2)*starveWindow + 20*work; took > limit {
		t.Errorf("%v of CPU work beside %d busy processes took %v, want within %v", work, cpus, took, limit)
	}
}

// A real password check beside busy processes escalates through the
// hasher, is counted, and answers correctly.
func TestHashEscalatesWhenOtherProcessesTakeTheCPU(t *testing.T) {
	waitPoolIdle(t)
	hash, err := HashPassword("correct horse", 6)
	if err != nil {
		t.Fatal(err)
	}
	var escalations atomic.Int64
	h := newHasher(1, time.Minute, func(time.Duration) {}, func() { escalations.Add(1) })
	t.Cleanup(func() { waitPoolIdle(t) })
	stop := startHogs(t, cpus)
	ok, err := h.compare(context.Background(), hash, "correct horse")
	stop()
	if err != nil || !ok {
		t.Errorf("compare beside busy processes: %v, %v; want true", ok, err)
	}
	if n := escalations.Load(); n != 1 {
		t.Errorf("escalations counted: %d, want 1", n)
	}
}

// waitPoolIdle waits until no pool job runs (abandoned runs end once the
// cores are free).
func waitPoolIdle(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		pool.mu.Lock()
		busy := pool.busy
		pool.mu.Unlock()
		if busy == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d pool jobs still running after a minute", busy)
		}
	}
}
