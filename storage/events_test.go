package storage_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"gatehouse/internal/dbtest"
	"gatehouse/storage"
)

const retention = 90 * 24 * time.Hour

func appendEvents(t *testing.T, st *storage.Store, userID string, n int, at time.Time) {
	t.Helper()
	for i := range n {
		e := &storage.Event{UserID: userID, Type: "SIGNED_IN", At: at.Add(time.Duration(i) * time.Millisecond), SessionID: "s", IP: "127.0.0.1"}
		if err := st.AppendEvent(context.Background(), e, retention); err != nil {
			t.Fatal(err)
		}
	}
}

func numbers(events []*storage.Event) []int64 {
	var out []int64
	for _, e := range events {
		out = append(out, e.N)
	}
	return out
}

func seq(from, to int64) []int64 {
	var out []int64
	for n := from; n >= to; n-- {
		out = append(out, n)
	}
	return out
}

// A user's log pages newest first, holds only the user's events, and a
// page stays the same when events are added after it was read.
func TestEventLogPages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := dbtest.Open(t)
	appendEvents(t, st, "alice", 25, t0)
	appendEvents(t, st, "bob", 3, t0)

	page, more, err := st.EventsOfUser(ctx, "alice", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(numbers(page), seq(25, 16)) || !more {
		t.Fatalf("first page %v (more %v), want 25..16 and more", numbers(page), more)
	}
	appendEvents(t, st, "alice", 5, t0.Add(time.Second)) // 26..30 arrive meanwhile
	page, more, err = st.EventsOfUser(ctx, "alice", 16, 10)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(numbers(page), seq(15, 6)) || !more {
		t.Fatalf("second page %v (more %v), want 15..6 and more", numbers(page), more)
	}
	page, more, err = st.EventsOfUser(ctx, "alice", 6, 10)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(numbers(page), seq(5, 1)) || more {
		t.Fatalf("last page %v (more %v), want 5..1 and no more", numbers(page), more)
	}
	for _, e := range page {
		if e.UserID != "alice" || e.Type != "SIGNED_IN" || e.IP != "127.0.0.1" || e.SessionID != "s" || e.At.IsZero() {
			t.Fatalf("event %+v", e)
		}
	}
	if page, _, _ := st.EventsOfUser(ctx, "carol", 0, 10); len(page) != 0 {
		t.Fatalf("a user without events: %v", numbers(page))
	}
}

// Concurrent writers of one user's log get distinct numbers, none lost.
func TestConcurrentEventsAreNumberedOnce(t *testing.T) {
	t.Parallel()
	st := dbtest.Open(t)
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() { appendEvents(t, st, "alice", 1, t0) })
	}
	wg.Wait()
	page, more, err := st.EventsOfUser(context.Background(), "alice", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(numbers(page), seq(40, 1)) || more {
		t.Fatalf("after 40 concurrent events: %v, want 40..1", numbers(page))
	}
}

// Events leave the log once their retention has passed, and only then.
func TestExpiredEventsAreSwept(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := dbtest.Open(t)
	appendEvents(t, st, "alice", 3, t0)
	later := t0.Add(30 * 24 * time.Hour)
	appendEvents(t, st, "alice", 2, later)
	if n, err := st.DeleteExpiredEvents(ctx, t0.Add(retention-time.Hour)); n != 0 || err != nil {
		t.Fatalf("sweep before the retention: %d, %v; want 0", n, err)
	}
	n, err := st.DeleteExpiredEvents(ctx, t0.Add(retention+24*time.Hour))
	if n != 3 || err != nil {
		t.Fatalf("sweep after the retention: %d, %v; want 3", n, err)
	}
	page, more, err := st.EventsOfUser(ctx, "alice", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(numbers(page), seq(5, 4)) || more {
		t.Fatalf("after the sweep: %v (more %v), want 5, 4", numbers(page), more)
	}
}

// At most limit failure events count per user and day.
func TestFailureEventsAreCountedPerDay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := dbtest.Open(t)
	var got []bool
	for range 4 {
		ok, err := st.CountFailureEvent(ctx, "alice", "2026-01-02", 3)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ok)
	}
	ok, err := st.CountFailureEvent(ctx, "alice", "2026-01-03", 3)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []bool{true, true, true, false}) || !ok {
		t.Fatalf("counted %v then %v the next day; want 3 of 4, then a new day's", got, ok)
	}
	// Concurrent failures do not pass the limit together.
	var mu sync.Mutex
	var wg sync.WaitGroup
	counted := 0
	for range 20 {
		wg.Go(func() {
			ok, err := st.CountFailureEvent(ctx, "bob", "2026-01-02", 5)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				counted++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if counted != 5 {
		t.Fatalf("20 concurrent failures counted %d, want 5", counted)
	}
}

// Several writers (two stores stand for two instances) publish batches
// numbered 1..n without gaps or repeats, each holding what was published;
// trimming keeps the newest.
func TestNoticesAreGapless(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	name := dbtest.Name(t)
	a := dbtest.OpenNamed(t, name)
	b := dbtest.OpenNamed(t, name)
	var mu sync.Mutex
	var wg sync.WaitGroup
	var seqs []int64
	for i := range 40 {
		st, origin := a, "a"
		if i%2 == 1 {
			st, origin = b, "b"
		}
		wg.Go(func() {
			notices := make([]storage.Notice, 1+i%3)
			for j := range notices {
				notices[j] = storage.Notice{UserID: fmt.Sprint("user", i), Type: "SIGNED_IN", SessionID: fmt.Sprint(j)}
			}
			b := &storage.Batch{Origin: origin, Key: fmt.Sprint(i), Notices: notices}
			if err := st.Publish(ctx, b); err != nil {
				t.Error(err)
				return
			}
			seq := b.Seq
			mu.Lock()
			seqs = append(seqs, seq)
			mu.Unlock()
			// Tail as an instance does, so that writers learn where the
			// stream ends from their readers too.
			if _, err := st.BatchAt(ctx, seq); err != nil {
				t.Error(err)
			}
			_, _ = st.BatchAt(ctx, seq+1)
		})
	}
	wg.Wait()
	slices.Sort(seqs)
	if want := seq(40, 1); !slices.Equal(seqs, slices.Sorted(slices.Values(want))) {
		t.Fatalf("numbers %v, want 1..40 once each", seqs)
	}
	users := map[string]bool{}
	for n := int64(1); n <= 40; n++ {
		got, err := a.BatchAt(ctx, n)
		if err != nil || len(got.Notices) == 0 {
			t.Fatalf("batch %d: %+v, %v", n, got, err)
		}
		var i int
		if _, err := fmt.Sscanf(got.Notices[0].UserID, "user%d", &i); err != nil || len(got.Notices) != 1+i%3 || got.Origin != "ab"[i%2:i%2+1] {
			t.Fatalf("batch %d: %+v, not what user%d published", n, got, i)
		}
		users[got.Notices[0].UserID] = true
	}
	if len(users) != 40 {
		t.Fatalf("the batches hold %d writers' notices, want 40", len(users))
	}
	// Young notices stay, whatever age is asked for: a writer may still
	// trust a number below them.
	if n, err := a.TrimNotices(ctx, 0); n != 0 || err != nil {
		t.Fatalf("trim of young notices: %d, %v; want 0", n, err)
	}
	if last, err := b.LastNotice(ctx); last != 40 || err != nil {
		t.Fatalf("last notice: %d, %v; want 40", last, err)
	}
}

// Trimming deletes old notices but the newest, so the next number is
// still after it.
func TestTrimKeepsTheNewestNotice(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := dbtest.Open(t)
	old := time.Now().Add(-time.Hour)
	for seq := int64(1); seq <= 5; seq++ {
		if err := st.InsertNotice(ctx, seq, old); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := st.TrimNotices(ctx, 10*time.Minute); n != 4 || err != nil {
		t.Fatalf("trim: %d, %v; want 4 (all but the newest)", n, err)
	}
	if _, err := st.BatchAt(ctx, 5); err != nil {
		t.Fatalf("the newest batch after the trim: %v", err)
	}
	b := &storage.Batch{Origin: "a", Key: "a:1", Notices: []storage.Notice{{UserID: "bob", Type: "SIGNED_IN"}}}
	if err := st.Publish(ctx, b); err != nil || b.Seq != 6 {
		t.Fatalf("publish after the trim: %d, %v; want 6", b.Seq, err)
	}
}

// A batch published again after a failure whose insert was applied after
// all (a timeout while the database stalled) is not written twice; any
// other batch still gets a number of its own.
func TestRetriedBatchIsWrittenOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := dbtest.Open(t)
	notices := []storage.Notice{{UserID: "bob", Type: "SIGNED_IN"}}
	first := &storage.Batch{Origin: "a", Key: "a:1", Notices: notices}
	if err := st.Publish(ctx, first); err != nil || first.Seq != 1 {
		t.Fatalf("first batch: %d, %v", first.Seq, err)
	}
	// The next batch's insert fails as far as the writer knows, and lands.
	retried := &storage.Batch{Origin: "a", Key: "a:2", Notices: notices}
	if err := st.LandUncertain(ctx, retried, 2); err != nil {
		t.Fatal(err)
	}
	// Meanwhile this process's reader has read it, and the writer's own
	// hint has grown old: the reader's says 3.
	if _, err := st.BatchAt(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := st.BatchAt(ctx, 3); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("batch 3: %v, want not found", err)
	}
	st.ForgetHint()
	if err := st.Publish(ctx, retried); err != nil || retried.Seq != 2 {
		t.Fatalf("the retry: %d, %v; want 2, the number its first insert took", retried.Seq, err)
	}
	other := &storage.Batch{Origin: "a", Key: "a:3", Notices: notices}
	if err := st.Publish(ctx, other); err != nil || other.Seq != 3 {
		t.Fatalf("the next batch: %d, %v; want 3", other.Seq, err)
	}
	if last, err := st.LastNotice(ctx); last != 3 || err != nil {
		t.Fatalf("last notice: %d, %v; want 3 (nothing written twice)", last, err)
	}
}
