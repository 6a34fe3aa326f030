// Package lowprio runs CPU-heavy work on an OS thread that the kernel
// schedules behind the process's other threads, so that the work takes
// the CPU time they leave instead of delaying them.
package lowprio

import (
	"runtime"
	"sync"
)

// Run calls f on a new OS thread of its own, at low priority (see lower),
// and returns when f does. The thread exits with f: its priority never
// reaches another goroutine. Starting a thread costs tens of
// microseconds, nothing next to the work this is for.
//
// A lowered thread still holds one of the Go scheduler's Ps while the
// kernel keeps it waiting, so while any Run is in progress the process has
// twice its default Ps (GOMAXPROCS, or the CPU quota): up to as many runs
// as it had Ps hold theirs without taking one from the other goroutines.
// Extra Ps are not free (with more Ps than cores, a session check cost
// more CPU), so they go when the last run ends.
func Run(f func()) {
	reserve()
	defer release()
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Never unlocked: a goroutine that ends while locked takes its
		// thread with it.
		runtime.LockOSThread()
		lower()
		f()
	}()
	<-done
}

// runs counts the Runs in progress.
var runs struct {
	sync.Mutex
	n int
}

// reserve doubles GOMAXPROCS when the first run starts. It changes it
// only while no lowered thread runs: changing it stops the world, which
// would wait for a thread the kernel keeps off the CPU.
func reserve() {
	runs.Lock()
	defer runs.Unlock()
	if runs.n++; runs.n == 1 {
		runtime.GOMAXPROCS(2 * runtime.GOMAXPROCS(0))
	}
}

// release gives GOMAXPROCS back to the runtime when the last run ends; the
// runtime then follows a change of the CPU quota again.
func release() {
	runs.Lock()
	defer runs.Unlock()
	if runs.n--; runs.n == 0 {
		runtime.SetDefaultGOMAXPROCS()
	}
}
