package auth

import "golang.org/x/sys/unix"

// lowerThreadPriority puts the calling OS thread in the SCHED_IDLE class:
// it runs only on CPU time that no normal thread wants, and a waking
// normal thread preempts it at once. (Nice 19 is not enough: the kernel
// still lets a nice-19 thread finish its slice, a few milliseconds, before
// a woken request thread gets the CPU.)
func lowerThreadPriority() {
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_IDLE}
	if unix.SchedSetAttr(0, &attr, 0) != nil {
		_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), 19)
	}
}
