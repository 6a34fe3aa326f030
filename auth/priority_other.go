//go:build !linux

package auth

import "time"

// Where threads cannot be reniced one by one, the pool still keeps hashing
// off the requests' Ps, and nothing starves it more than any other thread:
// its clocks read nothing, so onPool never escalates.
func lowerThreadPriority() {}

func gettid() int { return 0 }

func processCPU() (time.Duration, bool) { return 0, false }

func threadCPU(int) (time.Duration, bool) { return 0, false }
