package lowprio

import (
	"time"

	"golang.org/x/sys/unix"
)

// nice and slice are the calling thread's scheduling after lower.
//
// At nice 10 a thread weighs 110 against a normal thread's 1024: while the
// process's request threads want the CPU, they get about nine tenths of
// it. A short slice (honoured since Linux 6.12, ignored before) makes the
// kernel protect a running low thread for 0.1 ms instead of the default
// 0.75 ms or more, so a request thread that wakes gets a core at once.
//
// Lower would starve the work where gatehouse shares its CPU cgroup with
// other busy processes (a CI machine, a developer's laptop, a host without
// a cgroup per service): beside two busy loops a hash took 73 times its
// time at nice 19, and 365 times in SCHED_IDLE, which yields even more;
// at nice 10, 10 to 11 times. In cmd/bench, nice 10,
// 15 and 19 kept session checks under a login flood equally fast
// (bench/scheduling.md).
const (
	nice  = 10
	slice = 100 * time.Microsecond
)

// lower moves the calling thread to nice (or leaves it nicer, if the
// process runs nicer already: it never raises a priority) and slice. An
// unprivileged thread cannot raise its priority again, which is why Run
// uses a thread of its own.
func lower() {
	n := int32(nice)
	if cur, err := unix.SchedGetAttr(0, 0); err == nil && cur.Nice > n {
		n = cur.Nice
	}
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_NORMAL, Nice: n, Runtime: uint64(slice)}
	if unix.SchedSetAttr(0, &attr, 0) != nil {
		_ = unix.Setpriority(unix.PRIO_PROCESS, 0, int(n)) // the calling thread
	}
}
