package auth

import (
	"testing"

	"golang.org/x/sys/unix"
)

// Hashes run in the SCHED_IDLE class, so that any request thread that
// wakes up takes the CPU from them at once.
func TestHashesRunAtIdlePriority(t *testing.T) {
	stayOnPool(t)
	attr, _ := onPool(func() *unix.SchedAttr {
		attr, err := unix.SchedGetAttr(0, 0)
		if err != nil {
			t.Error(err)
		}
		return attr
	})
	if attr != nil && attr.Policy != unix.SCHED_IDLE {
		t.Errorf("bcrypt pool thread policy = %d, want SCHED_IDLE (%d)", attr.Policy, unix.SCHED_IDLE)
	}
}
