package auth

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// The clocks that tell starvation apart measure what they say: one
// thread's CPU time, and the whole process's.
func TestCPUClocksFollowThreads(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	parked, release := make(chan int), make(chan struct{})
	defer close(release)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		parked <- gettid()
		<-release
	}()
	other, tid := <-parked, gettid()

	const spin = 50 * time.Millisecond
	self0, other0, process0 := threadCPU(tid), threadCPU(other), processCPU()
	for deadline := time.Now().Add(10 * time.Second); threadCPU(tid)-self0 < spin; {
		if time.Now().After(deadline) {
			t.Fatalf("this thread's clock moved %v in 10 s of spinning, want %v", threadCPU(tid)-self0, spin)
		}
		for i := 0; i < 1e5; i++ {
			_ = i * i
		}
	}
	if d := processCPU() - process0; d < spin {
		t.Errorf("process clock moved %v while one of its threads ran %v", d, spin)
	}
	if d := threadCPU(other) - other0; d > spin/5 {
		t.Errorf("a parked thread's clock moved %v while another thread ran %v", d, spin)
	}
}

// Starvation is the hash's when the rest of the process is idle too; when
// the rest of the process keeps the CPU, the hash waits for it by design.
func TestStarvedByOthers(t *testing.T) {
	const d = 100 * time.Millisecond
	cores := time.Duration(cpus)
	for _, tc := range []struct {
		name     string
		got, all time.Duration
		want     bool
	}{
		{"the hash ran alone", d, d, false},
		{"the hash had half a core", d / 2, d / 2, false},
		{"nothing of ours ran: other processes had the CPU", 0, 0, true},
		{"the hash crawled and the process idled", d / 10, d / 5, true},
		{"our requests had the cores", 0, cores * d, false},
		{"our requests had a third of the cores", d / 10, d/10 + cores*d/3, false},
	} {
		if got := starvedByOthers(d, tc.got, tc.all); got != tc.want {
			t.Errorf("%s (hash %v, process %v of %v): starved by others = %v, want %v", tc.name, tc.got, tc.all, d, got, tc.want)
		}
	}
}

// startHogs runs n busy processes until stop is called or the test ends.
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
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	return stop
}

// A hash that other processes keep off the CPU runs again on the caller's
// goroutine at normal priority, and gives the right answer in a fair
// share of the time instead of almost never (a cost-4 hash once took 4.9 s
// beside two busy loops). The abandoned run ends on idle time later, and
// its worker comes back to the pool.
func TestHashEscalatesWhenOtherProcessesTakeTheCPU(t *testing.T) {
	const cost = 8
	hash, err := HashPassword("correct horse", cost)
	if err != nil {
		t.Fatal(err)
	}
	var escalations atomic.Int64
	h := newHasher(1, time.Minute, func(time.Duration) {}, func() { escalations.Add(1) })
	check := func() time.Duration {
		t.Helper()
		start := time.Now()
		ok, err := h.compare(context.Background(), hash, "correct horse")
		if err != nil || !ok {
			t.Fatalf("compare: %v, %v; want true", ok, err)
		}
		return time.Since(start)
	}
	alone := check() // other tests may load the machine: no escalation count yet

	// The abandoned run ends once the cores are free, and leaves the pool
	// (checked after the busy processes stop: cleanups run last first).
	t.Cleanup(func() { waitPoolIdle(t) })
	stop := startHogs(t, cpus)
	time.Sleep(100 * time.Millisecond) // let them take the cores
	before := escalations.Load()
	took := check()
	stop()
	if n := escalations.Load() - before; n != 1 {
		t.Errorf("escalations beside %d busy processes: %d, want 1", cpus, n)
	}
	// Escalated: a few windows, then the hash at a fair share of a core.
	// Starved: hundreds of times the hash alone (71 s against 194 ms when
	// this test ran with escalation off).
	if limit := (starveWindows+2)*starveWindow + 20*alone; took > limit {
		t.Errorf("hash beside %d busy processes took %v, want within %v (alone: %v)", cpus, took, limit, alone)
	}
	t.Logf("alone %v, beside %d busy processes %v", alone, cpus, took)
}

// waitPoolIdle waits until no pool job runs.
func waitPoolIdle(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		pool.mu.Lock()
		busy := pool.busy
		pool.mu.Unlock()
		if busy == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d pool jobs still running after 30 s", busy)
		}
	}
}
