package lowprio

import (
	"runtime"
	"sync"
	"testing"
)

// While work runs, the runtime has twice its default Ps, so that a lowered
// thread that waits for the CPU does not hold a P the other goroutines
// need; the last run to end gives GOMAXPROCS back to the runtime's default.
func TestRunDoublesProcsWhileItWorks(t *testing.T) {
	runtime.SetDefaultGOMAXPROCS()
	def := runtime.GOMAXPROCS(0)

	var during int
	Run(func() { during = runtime.GOMAXPROCS(0) })
	if during != 2*def {
		t.Errorf("GOMAXPROCS during Run = %d, want %d", during, 2*def)
	}
	if got := runtime.GOMAXPROCS(0); got != def {
		t.Errorf("GOMAXPROCS after Run = %d, want the default %d", got, def)
	}

	// Overlapping runs: raised until the last one ends, never raised twice.
	first, release := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		Run(func() {
			close(first)
			<-release
		})
	})
	<-first
	Run(func() { during = runtime.GOMAXPROCS(0) })
	if during != 2*def {
		t.Errorf("GOMAXPROCS during a second, overlapping Run = %d, want %d", during, 2*def)
	}
	if got := runtime.GOMAXPROCS(0); got != 2*def {
		t.Errorf("GOMAXPROCS while the first run still works = %d, want %d", got, 2*def)
	}
	close(release)
	wg.Wait()
	if got := runtime.GOMAXPROCS(0); got != def {
		t.Errorf("GOMAXPROCS after both = %d, want the default %d", got, def)
	}
}
