package lowprio

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// attr is the scheduling of thread tid of this process (0: the caller's).
func attr(t *testing.T, tid int) *unix.SchedAttr {
	t.Helper()
	a, err := unix.SchedGetAttr(tid, 0)
	if err != nil {
		t.Fatalf("sched_getattr(%d): %v", tid, err)
	}
	return a
}

// lowered reports whether a thread's scheduling differs from ordinary's,
// an ordinary thread of the process: not a test of the nice value alone,
// since the tests may themselves run under nice.
func lowered(a, ordinary *unix.SchedAttr) bool {
	return a.Nice != ordinary.Nice || a.Runtime != ordinary.Runtime
}

// The work runs at nice 10 (or nicer) with a short slice, so that a request thread
// that wakes takes the CPU from it at once, on a thread that is not the
// caller's.
func TestRunLowersItsOwnThread(t *testing.T) {
	want := max(attr(t, 0).Nice, nice) // never raised: the tests may run under nice
	var got *unix.SchedAttr
	var tid int
	Run(func() {
		tid = unix.Gettid()
		got = attr(t, 0)
	})
	if got.Policy != unix.SCHED_NORMAL || got.Nice != want {
		t.Errorf("inside Run: policy %d, nice %d; want SCHED_NORMAL (%d), nice %d", got.Policy, got.Nice, unix.SCHED_NORMAL, want)
	}
	// Kernels before 6.12 keep their own slice and report it.
	if got.Runtime != uint64(slice) && kernelAtLeast(t, 6, 12) {
		t.Errorf("inside Run: slice %v, want %v", time.Duration(got.Runtime), slice)
	}
	if tid == unix.Gettid() {
		t.Error("Run ran f on the caller's thread")
	}
	if a := attr(t, 0); a.Nice == nice && a.Runtime == uint64(slice) {
		t.Errorf("the caller's thread is lowered after Run: %+v", a)
	}
}

// No lowered thread outlives its work: the Go scheduler never hands one to
// another goroutine.
func TestRunLeavesNoLoweredThread(t *testing.T) {
	ordinary := attr(t, 0)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { Run(func() {}) })
	}
	wg.Wait()
	// Goroutines on whatever threads the scheduler has: none is lowered.
	for range 100 {
		wg.Go(func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			if a := attr(t, 0); lowered(a, ordinary) {
				t.Errorf("a goroutine after Run ran on a lowered thread: %+v", a)
			}
		})
	}
	wg.Wait()
	// And none is left: a thread that exits may linger in /proc for a
	// moment, so look again until it is gone. The main thread is the
	// exception: when Run's goroutine happened to run on it, the runtime
	// cannot end it and parks it for good instead ("wedged"), where it
	// runs nothing again.
	for tries := 0; ; tries++ {
		low := loweredThreads(t, ordinary)
		if len(low) == 0 {
			return
		}
		if tries == 1000 {
			t.Fatalf("threads still lowered after Run returned: %v", low)
		}
		time.Sleep(time.Millisecond)
	}
}

// loweredThreads are the lowered threads of the process but the main
// thread (see above).
func loweredThreads(t *testing.T, ordinary *unix.SchedAttr) []int {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	var low []int
	for _, task := range tasks {
		tid, err := strconv.Atoi(task.Name())
		if err != nil || tid == os.Getpid() {
			continue
		}
		a, err := unix.SchedGetAttr(tid, 0)
		if err == nil && lowered(a, ordinary) {
			low = append(low, tid)
		}
	}
	return low
}

// kernelAtLeast reports whether the running kernel is major.minor or newer.
func kernelAtLeast(t *testing.T, major, minor int) bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	var ma, mi int
	if _, err := fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &ma, &mi); err != nil {
		t.Fatalf("kernel release %q: %v", u.Release, err)
	}
	return ma > major || ma == major && mi >= minor
}
