package graph_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"gatehouse/graph/model"
	"gatehouse/storage"
)

// Sessions idle longer than the TTL expire: the session resolver deletes
// them when it finds them, and nothing honours them.
func TestIdleSessionExpires(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client()
	reg := c.register(t, "ida", pw)

	e.clock.Advance(time.Hour - time.Millisecond)
	if c.me(t) != "ida" {
		t.Fatal("session expired before its TTL")
	}
	// That use was due for a touch: expiry slid to now + TTL.
	e.clock.Advance(time.Hour - time.Millisecond)
	if c.me(t) != "ida" {
		t.Fatal("a used session did not slide its expiry")
	}

	e.clock.Advance(time.Hour)
	var out struct{ Session *model.Session }
	c.ok(t, `{ session { id } }`, nil, &out)
	if out.Session != nil {
		t.Errorf("expired session returned: %+v", out.Session)
	}
	if _, err := e.store.SessionByID(context.Background(), reg.Session.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("expired session still in the database: %v", err)
	}
	if r := c.do(t, `{ sessions { id } }`, nil); r.code(t) != "UNAUTHENTICATED" {
		t.Error("an expired session was honoured")
	}
}

// session(id) checks expiry itself: another of the user's sessions that
// has expired is deleted there and answers null.
func TestSessionByIDDeletesExpired(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	old, fresh := e.client(), e.client()
	stale := old.register(t, "joe", pw)
	e.clock.Advance(50 * time.Minute)
	fresh.login(t, "joe", pw)
	e.clock.Advance(20 * time.Minute) // old is 70 minutes idle; fresh 20

	var out struct {
		Session  *model.Session
		Sessions []model.Session
	}
	fresh.ok(t, `query($id: ID) { session(id: $id) { id } }`, map[string]any{"id": stale.Session.ID}, &out)
	if out.Session != nil {
		t.Errorf("expired session returned: %+v", out.Session)
	}
	if _, err := e.store.SessionByID(context.Background(), stale.Session.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("expired session not deleted: %v", err)
	}
	fresh.ok(t, `{ sessions { id } }`, nil, &out)
	if len(out.Sessions) != 1 {
		t.Errorf("sessions: got %d, want only the live one", len(out.Sessions))
	}
}

// However busy, a session dies SESSION_MAX_AGE after it was created.
func TestMaxAgeCapsSlidingExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client()
	reg := c.register(t, "max", pw)
	cap := reg.Session.CreatedAt.Add(24 * time.Hour)
	for e.clock.Now().Before(cap.Add(-50 * time.Minute)) {
		e.clock.Advance(50 * time.Minute)
		if c.me(t) != "max" {
			t.Fatalf("session died at %v, before its cap %v", e.clock.Now(), cap)
		}
	}
	var out struct{ Session model.Session }
	c.ok(t, `{ session { expiresAt } }`, nil, &out)
	if !out.Session.ExpiresAt.Equal(cap) {
		t.Errorf("expiresAt near the cap: got %v, want %v", out.Session.ExpiresAt, cap)
	}
	e.clock.Advance(cap.Sub(e.clock.Now()))
	if c.me(t) != "" {
		t.Error("session outlived SESSION_MAX_AGE")
	}
}

// Reads stay reads: uses within the touch interval write nothing.
func TestTouchIsRateLimited(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client()
	reg := c.register(t, "tom", pw)
	lastSeen := func() time.Time {
		s, err := e.store.SessionByID(context.Background(), reg.Session.ID)
		if err != nil {
			t.Fatal(err)
		}
		return s.LastSeenAt
	}
	created := lastSeen()
	for range 5 {
		e.clock.Advance(10 * time.Second)
		c.me(t)
	}
	if got := lastSeen(); !got.Equal(created) {
		t.Errorf("lastSeenAt written within the touch interval: %v", got)
	}
	e.clock.Advance(15 * time.Second) // 65 s since creation
	c.me(t)
	if got, want := lastSeen(), e.clock.Now(); !got.Equal(want) {
		t.Errorf("lastSeenAt after the interval: got %v, want %v", got, want)
	}
}

func TestSweeperDeletesExpiredSessions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.client().register(t, "sam", pw) // expires at 13:00
	e.clock.Advance(61 * time.Minute) // 13:01
	e.client().login(t, "sam", pw)    // a live one, that stays
	// Expired sessions are swept once the span of time they were filed
	// under has ended: at most 512 s after the expiry, with a TTL of 1h.
	e.clock.Advance(10 * time.Minute)

	n, err := e.svc.Sweep(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("Sweep: got %d, %v; want 1, nil", n, err)
	}
	if got := e.sessionCount(); got != 1 {
		t.Errorf("sessions left: %d, want 1", got)
	}
}
