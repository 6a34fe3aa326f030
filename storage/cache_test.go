package storage_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"gatehouse/internal/dbtest"
	"gatehouse/storage"
)

// TestCachedSessionFollowsEveryWrite: after each kind of write to a
// session that is cached, the next read returns what the database holds.
func TestCachedSessionFollowsEveryWrite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := dbtest.Open(t)
	far := t0.Add(24 * time.Hour)
	writes := []struct {
		name    string
		pending bool
		write   func(sess *storage.Session) error
	}{
		{"touch", false, func(s *storage.Session) error { return st.TouchSession(ctx, s, t0.Add(time.Hour), far.Add(time.Hour)) }},
		{"rotate secret", false, func(s *storage.Session) error { return st.RotateSecret(ctx, s.ID, []byte{9, 9}, t0.Add(time.Minute)) }},
		{"set data", false, func(s *storage.Session) error {
			_, err := st.SetSessionData(ctx, s.ID, `{"theme":"dark"}`)
			return err
		}},
		{"complete second factor", true, func(s *storage.Session) error {
			return st.CompleteSecondFactor(ctx, s, []byte{7}, []string{"password", "totp"}, t0.Add(time.Minute), far)
		}},
		{"delete", false, func(s *storage.Session) error {
			_, err := st.DeleteSession(ctx, s.ID, s.UserID)
			return err
		}},
		{"delete pending", true, func(s *storage.Session) error {
			_, err := st.DeletePendingSession(ctx, s.ID, s.UserID)
			return err
		}},
		{"delete the user's others", false, func(s *storage.Session) error {
			_, err := st.DeleteSessionsOfUser(ctx, s.UserID, "")
			return err
		}},
		{"sweep", false, func(s *storage.Session) error {
			_, err := st.DeleteExpiredSessions(ctx, far.Add(48*time.Hour), nil)
			return err
		}},
	}
	for i, w := range writes {
		sess := newSession(fmt.Sprintf("s%d", i), fmt.Sprintf("u%d", i), far)
		sess.Pending = w.pending
		if _, err := st.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
		for range 2 { // a fill, then a hit
			if _, err := st.SessionByID(ctx, sess.ID); err != nil {
				t.Fatal(err)
			}
		}
		before := st.CacheStats()
		if _, err := st.SessionByID(ctx, sess.ID); err != nil {
			t.Fatal(err)
		}
		if hits := st.CacheStats().Hits - before.Hits; hits != 1 {
			t.Fatalf("%s: a read of a session read before made %d cache hits, want 1", w.name, hits)
		}
		if err := w.write(sess); err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		got, gerr := st.SessionByID(ctx, sess.ID)
		want, werr := st.FindSession(ctx, sess.ID)
		if !errors.Is(gerr, werr) || !errors.Is(werr, gerr) {
			t.Errorf("%s: read after it: error %v, the database's %v", w.name, gerr, werr)
		} else if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: read after it (-database +read):\n%s", w.name, diff)
		}
	}
}

// TestCacheNeverServesStale races reads of one session against a stream
// of acknowledged writes to it, with every read's cache fill delayed so
// that writes land between reads and their fills: no read may return data
// older than the last write acknowledged before it began, nor the session
// once its deletion was acknowledged.
func TestCacheNeverServesStale(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := dbtest.Open(t)
	st.BeforeFill(func() { time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond) })
	sess := newSession("stale", "u", t0.Add(24*time.Hour))
	if _, err := st.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	var acked atomic.Int64 // the last write acknowledged; -1: the deletion
	var stale atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				before := acked.Load()
				got, err := st.SessionByID(ctx, sess.ID)
				switch {
				case errors.Is(err, storage.ErrNotFound):
				case err != nil:
					t.Error(err)
					return
				case before < 0:
					if stale.Add(1) <= 3 {
						t.Errorf("read the session after its deletion was acknowledged")
					}
				default:
					var d struct{ N int64 }
					if err := json.Unmarshal([]byte(got.Data), &d); err != nil {
						t.Error(err)
						return
					}
					if d.N < before && stale.Add(1) <= 3 {
						t.Errorf("read data %d after write %d was acknowledged", d.N, before)
					}
				}
			}
		})
	}
	for n := int64(1); n <= 150; n++ {
		if _, err := st.SetSessionData(ctx, sess.ID, fmt.Sprintf(`{"N":%d}`, n)); err != nil {
			t.Fatal(err)
		}
		acked.Store(n)
		time.Sleep(time.Duration(rand.IntN(1000)) * time.Microsecond)
	}
	if _, err := st.DeleteSession(ctx, sess.ID, sess.UserID); err != nil {
		t.Fatal(err)
	}
	acked.Store(-1)
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	if hits := st.CacheStats().Hits; hits == 0 {
		t.Errorf("no read was served from the cache: the test proves nothing")
	}
	if n := stale.Load(); n > 0 {
		t.Errorf("%d stale reads", n)
	}
}

// TestFailedWriteLeavesTheSessionUncached: a write that failed may still
// land, so after it the session is read from the database, not cached;
// a write that succeeded holds back only the reads that overlapped it.
func TestFailedWriteLeavesTheSessionUncached(t *testing.T) {
	t.Parallel()
	c := storage.NewCache(1 << 20)
	for _, failed := range []bool{false, true} {
		sess := newSession(fmt.Sprintf("failed-%v", failed), "u", t0)
		c.Fill(sess)
		c.Wrote(sess.ID, failed)
		if _, ok := c.Get(sess.ID); ok {
			t.Errorf("failed=%v: the session is still cached after a write", failed)
		}
		c.Fill(sess) // a read that began after the write
		if _, ok := c.Get(sess.ID); ok == failed {
			t.Errorf("failed=%v: a read after the write filled the cache: %v, want %v", failed, ok, !failed)
		}
	}
}

// TestWriteOfAClientThatLeftIsDone: a write that moves a session's secret
// or ends it runs all the same when its caller has gone (a client that
// hung up), so that no client can leave such a write in doubt.
func TestWriteOfAClientThatLeftIsDone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := dbtest.Open(t)
	sess := newSession("left", "u", t0.Add(24*time.Hour))
	if _, err := st.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if err := st.RotateSecret(gone, sess.ID, []byte{4, 2}, t0); err != nil {
		t.Fatalf("secret rotation: %v, want it done", err)
	}
	if got, err := st.FindSession(ctx, sess.ID); err != nil || string(got.SecretHash) != string([]byte{4, 2}) {
		t.Fatalf("after the rotation: %+v, %v", got, err)
	}
	if _, err := st.DeleteSession(gone, sess.ID, sess.UserID); err != nil {
		t.Fatalf("delete: %v, want it done", err)
	}
	if _, err := st.FindSession(ctx, sess.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("after the delete: %v, want ErrNotFound", err)
	}
	if ids, err := st.SessionIDsOfUser(ctx, sess.UserID); err != nil || len(ids) != 0 {
		t.Errorf("the user's list after the delete: %v, %v; want empty", ids, err)
	}
}

// TestCacheStaysWithinItsBudget: a cache full of sessions evicts the least
// recently used, and its bytes stay within its budget.
func TestCacheStaysWithinItsBudget(t *testing.T) {
	t.Parallel()
	one := storage.CostOf(newSession("s0000", "u", t0))
	c := storage.NewCache(100 * one)
	for i := range 1000 {
		c.Fill(newSession(fmt.Sprintf("s%04d", i), "u", t0))
		if i == 500 {
			if _, ok := c.Get("s0450"); !ok { // used: kept past the others
				t.Fatal("s0450 is not cached")
			}
		}
	}
	st := c.Stats()
	if st.Entries != 100 || st.Bytes > 100*one {
		t.Errorf("after 1000 fills: %d entries of %d bytes, want 100 within %d", st.Entries, st.Bytes, 100*one)
	}
	for _, id := range []string{"s0999", "s0900"} {
		if _, ok := c.Get(id); !ok {
			t.Errorf("%s, among the last 100 filled, is not cached", id)
		}
	}
	for _, id := range []string{"s0000", "s0450", "s0899"} {
		if _, ok := c.Get(id); ok {
			t.Errorf("%s is still cached", id)
		}
	}
	big := newSession("big", "u", t0)
	big.Data = `{"x":"` + strings.Repeat("x", int(100*one)) + `"}`
	c.Fill(big)
	if _, ok := c.Get("big"); ok {
		t.Errorf("a session larger than the budget was cached")
	}
}

// TestCacheCostIsHonest: what the cache counts for an entry is at least
// what the entry takes on the heap, so its budget bounds its memory.
func TestCacheCostIsHonest(t *testing.T) {
	const n = 20_000
	ua := "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	c := storage.NewCache(1 << 40)
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	var counted int64
	for i := range n {
		s := newSession(fmt.Sprintf("%022d", i), fmt.Sprintf("%022d", i%100), t0)
		s.SecretHash = make([]byte, 32)
		s.UserKey, s.UserName = fmt.Sprintf("user%06d", i%100), fmt.Sprintf("User%06d", i%100)
		s.UserAgent, s.IP = strings.Clone(ua), fmt.Sprintf("10.0.%d.%d", i/256%256, i%256)
		s.Factors = []string{"password"}
		c.Fill(s)
		counted += storage.CostOf(s)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	took := int64(ms.HeapAlloc) - int64(before)
	if st := c.Stats(); st.Entries != n || st.Bytes != counted {
		t.Fatalf("cache holds %d entries of %d bytes, want %d of %d", st.Entries, st.Bytes, n, counted)
	}
	t.Logf("%d entries: %d bytes on the heap (%d each), %d counted (%d each)", n, took, took/n, counted, counted/n)
	if took > counted {
		t.Errorf("the entries take %d bytes on the heap, more than the %d the cache counts", took, counted)
	}
	runtime.KeepAlive(c)
}
