//go:build !linux

package lowprio

// lower does nothing where threads cannot be reprioritised one by one:
// the work then competes with the rest like any other thread.
func lower() {}
