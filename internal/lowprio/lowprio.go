// Package lowprio runs CPU-heavy work on an OS thread that the kernel
// schedules behind the process's other threads, so that the work takes
// the CPU time they leave instead of delaying them.
package lowprio

import "runtime"

// Run calls f on a new OS thread of its own, at low priority (see lower),
// and returns when f does. The thread exits with f: its priority never
// reaches another goroutine. Starting a thread costs tens of
// microseconds, nothing next to the work this is for.
func Run(f func()) {
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
