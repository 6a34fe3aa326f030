package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"gatehouse/auth"
	"gatehouse/internal/embedded"
)

// Targets of issue 17: session checks beside sustained updateSessionData
// keep the login flood's bound, and the engine's WAL stays within its limit.
const (
	dataWriters  = 4    // clients sending updateSessionData as fast as they can
	dataSize     = 4000 // bytes of each update's data
	walLimit     = embedded.DefaultWALLimit
	walSampleGap = 20 * time.Millisecond
)

// walCheck is the session scenario beside data writes, and the WAL meanwhile.
type walCheck struct {
	base, row      *row
	writes         *loadResult
	maxWAL, endWAL int64 // -1: not measured (MONGODB_URI)
}

// underDataWrites measures the session scenario at c twice: alone, then
// while dataWriters clients replace their sessions' data (dataSize bytes)
// as fast as they can, sampling the engine's WAL all along.
func (b *bench) underDataWrites(ctx context.Context, res *results, pop *population) error {
	c := 8
	if err := freshen(ctx, b.store, pop, res.touchInterval); err != nil {
		return err
	}
	sessionOp := b.gqlOp(sessionQuery, bearers(pop.all.tokens), sessionWant, nil)
	base, err := b.load(ctx, res, "session (beside: nothing)", c, b.cfg.span, sessionOp)
	if err != nil {
		return err
	}
	var tokens []string
	for range dataWriters {
		now := time.Now().UTC().Truncate(time.Millisecond)
		tok := auth.NewToken()
		if _, err := b.store.CreateSession(ctx, newSession(pop.users[1], tok, now, now.Add(sessionTTL))); err != nil {
			return err
		}
		tokens = append(tokens, tok.String())
	}
	bodies := make([][]byte, 64)
	for i := range bodies {
		bodies[i] = gqlBody(`mutation($d: JSONObject!) { updateSessionData(data: $d) { id } }`,
			map[string]any{"d": map[string]any{"n": i, "blob": strings.Repeat(string(rune('a'+i%26)), dataSize)}})
	}
	auths := bearers(tokens)
	gql := b.gql
	writeOp := func(ctx context.Context, w, i int) error {
		return gql.post(ctx, bodies[i%len(bodies)], auths[w%len(auths)], []byte(`{"data":{"updateSessionData":`), nil)
	}

	wc := &walCheck{base: base, maxWAL: -1, endWAL: -1}
	wal := ""
	if b.data != "" {
		wal = filepath.Join(b.data, b.db+".sqlite-wal")
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	sample := func() {
		if wal == "" {
			return
		}
		var s int64
		if fi, err := os.Stat(wal); err == nil {
			s = fi.Size()
		}
		wc.maxWAL = max(wc.maxWAL, s)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			sample()
			select {
			case <-stop:
				return
			case <-time.After(walSampleGap):
			}
		}
	}()
	written := make(chan *loadResult, 1)
	go func() {
		written <- drive(ctx, dataWriters, window{warmup: b.cfg.warmup, span: b.cfg.span, max: b.cfg.maxRequests}, writeOp)
	}()
	wc.row, err = b.load(ctx, res, "session + data writes", c, b.cfg.span, sessionOp)
	wc.writes = <-written // the writers stop with the span too; the sampler once they have
	close(stop)
	wg.Wait()
	if err != nil {
		return err
	}
	if wal != "" {
		wc.endWAL = 0
		if fi, err := os.Stat(wal); err == nil {
			wc.endWAL = fi.Size()
		}
	}
	wc.row.flood = wc.writes
	wc.row.vs = fmt.Sprintf("p99 %.2f× without; writes: %.0f/s of %d B by %d clients, %d errors; WAL max %s, at the end %s (limit %s)",
		ratioOf(wc.row.res.pct(.99).Seconds(), base.res.pct(.99).Seconds()), wc.writes.rate(), dataSize, dataWriters,
		wc.writes.errors, sizeMiB(wc.maxWAL), sizeMiB(wc.endWAL), sizeMiB(walLimit))
	res.wal = wc
	return nil
}

// sizeMiB is a size in MiB, or "n/a" for -1.
func sizeMiB(n int64) string {
	if n < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
