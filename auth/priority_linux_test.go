package auth

import (
	"testing"

	"golang.org/x/sys/unix"
)

// Hashes run in the SCHED_IDLE class, so that any request thread that
// wakes up takes the CPU from them at once.
func TestHashesRunAtIdlePriority(t *testing.T) {
	var policy uint32
	var err error
	onPool(func() {
		var attr *unix.SchedAttr
		if attr, err = unix.SchedGetAttr(0, 0); err == nil {
			policy = attr.Policy
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if policy != unix.SCHED_IDLE {
		t.Errorf("bcrypt pool thread policy = %d, want SCHED_IDLE (%d)", policy, unix.SCHED_IDLE)
	}
}
