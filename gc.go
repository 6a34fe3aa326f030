package main

import (
	"io/fs"
	"runtime/debug"

	"gatehouse/internal/cgroup"
)

// gcPercent is the GOGC that gatehouse runs with unless GOGC is set. The
// live heap of the server and the embedded engine is small (about 20 MiB)
// and churns fast, so with Go's default of 100 collections took a large
// share of the CPU: at 400, cmd/bench measured 37% more session checks
// per second on the one-process server, with RSS at 83 MiB instead of 65.
const gcPercent = 400

// cachedGCPercent is the GOGC with the session cache on. The cache's
// entries are then most of the live heap, and they stay: at 400 the heap
// grows to five times them (a full 16 MiB cache took the one process from
// 117 to 244 MiB of RSS beside 10⁵ sessions), while session checks,
// answered from the cache, allocate little, so collections cost little.
const cachedGCPercent = 100

// tuneGC sets GOGC, unless it is set, to gcPercent, or cachedGCPercent
// when the session cache is on; and, unless GOMEMLIMIT is set, a soft
// memory limit at 3/4 of the cgroup's (v2) memory limit: near it the
// collector works harder instead of letting the kernel kill the process.
func tuneGC(getenv func(string) string, root fs.FS, cached bool) {
	if getenv("GOGC") == "" {
		percent := gcPercent
		if cached {
			percent = cachedGCPercent
		}
		debug.SetGCPercent(percent)
	}
	if getenv("GOMEMLIMIT") == "" {
		if limit, ok := cgroup.MemoryMax(root); ok {
			debug.SetMemoryLimit(limit / 4 * 3)
		}
	}
}
