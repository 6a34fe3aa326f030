package lowprio

import (
	"time"

	"golang.org/x/sys/unix"
)

// nice and slice are the calling thread's scheduling after lower.
//
// At nice 19 a thread weighs 15 against a normal thread's 1024, so the
// kernel gives the process's request threads the CPU first. A short slice
// (honoured since Linux 6.12, ignored before) makes the kernel protect a
// running low thread for 0.1 ms instead of the default 0.75 ms or more, so
// a request thread that wakes gets a core at once.
//
// Why not SCHED_IDLE, which yields even more: it yields to every busy
// thread in the process's CPU cgroup, and where gatehouse shares one with
// other work (a CI machine, a host without a cgroup per service) a hash
// took 1000 times its normal time beside two busy loops. At nice 19 it
// still gets its 1.4% of a core.
const (
	nice  = 19
	slice = 100 * time.Microsecond
)

// lower moves the calling thread to nice and slice. An unprivileged thread
// cannot raise its priority again, which is why Run uses a thread of its
// own.
func lower() {
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_NORMAL, Nice: nice, Runtime: uint64(slice)}
	if unix.SchedSetAttr(0, &attr, 0) != nil {
		_ = unix.Setpriority(unix.PRIO_PROCESS, 0, nice) // the calling thread
	}
}
