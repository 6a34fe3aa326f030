package auth

import (
	"time"

	"golang.org/x/sys/unix"
)

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

func gettid() int { return unix.Gettid() }

// processCPU is the CPU time used by every thread of the process so far;
// ok is false if the clock could not be read.
func processCPU() (time.Duration, bool) {
	return clock(unix.CLOCK_PROCESS_CPUTIME_ID)
}

// threadCPU is the CPU time used by thread tid of this process so far: the
// kernel's clock id for a thread is MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED)
// (include/linux/posix-timers.h). ok is false if the clock could not be
// read (the thread is gone, say).
func threadCPU(tid int) (time.Duration, bool) {
	return clock(int32(^uint32(tid)<<3 | 6))
}

func clock(id int32) (time.Duration, bool) {
	var ts unix.Timespec
	if unix.ClockGettime(id, &ts) != nil {
		return 0, false
	}
	return time.Duration(ts.Nano()), true
}
