package main

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// op performs one request for worker w (0 ≤ w < concurrency); i counts the
// worker's requests. A non-nil error counts as a failed request.
type op func(ctx context.Context, w, i int) error

// window is how long a load runs: a warm-up whose requests are not
// measured, then the measured span. max bounds the number of requests
// whatever the durations, so every loop ends.
type window struct {
	warmup, span time.Duration
	max          int
}

// loadResult is what one closed-loop load measured.
type loadResult struct {
	conc     int
	sent     int             // every request, warm-up included
	errors   int             // failed requests among sent
	firstErr string          // the first failure, for the report
	perSec   float64         // answers per second
	lat      []time.Duration // latencies of the measured requests, sorted
}

// rate is the answers per second.
func (r *loadResult) rate() float64 { return r.perSec }

// pct returns the p-th percentile latency (nearest rank), 0 ≤ p ≤ 1.
func (r *loadResult) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	return r.lat[int(p*float64(len(r.lat)-1)+0.5)]
}

// drive runs do on conc workers, each sending its next request as soon as
// the previous one answers (a closed loop), until the window ends, ctx ends
// or win.max requests have been sent.
//
// A worker's requests are measured from the first one it starts after the
// warm-up, but not its very first (it opens a connection) unless that one
// outlasts the window. A worker starts no request after the window, except
// that one with no measured request yet makes one: a load whose latency
// exceeds the window still measures something, taking longer. The rate is Little's law for a closed
// loop, conc ÷ mean latency of the measured requests (failed ones count as
// busy time, not as answers): for fast requests it equals the answers per
// second in the window, and unlike that count it stays right when a few
// slow requests, started together, all finish outside the window. Every
// failure counts, warm-up included.
func drive(ctx context.Context, conc int, win window, do op) *loadResult {
	return drivePrepared(ctx, conc, win, nil, do)
}

// drivePrepared is drive with prep, if not nil, before each request and
// outside its time: the latencies, and so the rate, are do's alone. A
// failed prep counts as a failed request and stops its worker.
func drivePrepared(ctx context.Context, conc int, win window, prep, do op) *loadResult {
	start := time.Now()
	from := start.Add(win.warmup)
	end := from.Add(win.span)
	var budget atomic.Int64
	budget.Store(int64(win.max))

	type worker struct {
		sent, errors int
		measured     int           // measured requests, failed ones included
		busy         time.Duration // their total latency
		firstErr     error
		lat          []time.Duration // latencies of the measured answers
	}
	ws := make([]worker, conc)
	var wg sync.WaitGroup
	for w := range ws {
		wg.Go(func() {
			me := &ws[w]
			for i := 0; ; i++ {
				t0 := time.Now()
				if !t0.Before(end) && me.measured > 0 || ctx.Err() != nil || budget.Add(-1) < 0 {
					return
				}
				if prep != nil {
					if err := prep(ctx, w, i); err != nil {
						me.sent++
						me.errors++
						if me.firstErr == nil {
							me.firstErr = err
						}
						return
					}
					t0 = time.Now()
				}
				err := do(ctx, w, i)
				t1 := time.Now()
				d := t1.Sub(t0)
				// The first request opens a connection: measured only if it
				// outlasts the window, when a connection is a rounding error.
				measured := i > 0 && !t0.Before(from) || i == 0 && !t1.Before(end)
				me.sent++
				if err != nil {
					me.errors++
					if me.firstErr == nil {
						me.firstErr = err
					}
				}
				if measured {
					me.measured++
					me.busy += d
					if err == nil {
						me.lat = append(me.lat, d)
					}
				}
			}
		})
	}
	wg.Wait()

	r := &loadResult{conc: conc}
	var busy time.Duration
	for _, w := range ws {
		r.sent += w.sent
		r.errors += w.errors
		if w.firstErr != nil && r.firstErr == "" {
			r.firstErr = w.firstErr.Error()
		}
		busy += w.busy
		r.lat = append(r.lat, w.lat...)
	}
	if busy > 0 {
		r.perSec = float64(conc) * float64(len(r.lat)) / busy.Seconds()
	}
	slices.Sort(r.lat)
	return r
}
