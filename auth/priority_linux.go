package auth

import "syscall"

// lowerThreadPriority gives the calling OS thread the lowest priority
// (nice 19); on Linux, setpriority on a thread id applies to that thread.
func lowerThreadPriority() {
	_ = syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), 19)
}
