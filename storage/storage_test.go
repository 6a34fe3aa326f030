package storage_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"gatehouse/internal/dbtest"
	"gatehouse/storage"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC)

func newUser(key string) *storage.User {
	return &storage.User{Key: key, ID: "uid-" + key, Name: key, PasswordHash: "$2a$04$x", CreatedAt: t0}
}

func newSession(id, userID string, expires time.Time) *storage.Session {
	return &storage.Session{
		ID: id, SecretHash: []byte{1, 2, 3}, UserID: userID, UserKey: "k", UserName: "Name",
		UserCreatedAt: t0, Data: "{}", CreatedAt: t0, LastSeenAt: t0, ExpiresAt: expires,
		UserAgent: "ua", IP: "127.0.0.1",
	}
}

func TestUsers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := dbtest.Open(t)

	u := newUser("alice")
	if err := st.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateUser(ctx, newUser("alice")); !errors.Is(err, storage.ErrDuplicate) {
		t.Fatalf("second CreateUser: got %v, want ErrDuplicate", err)
	}
	got, err := st.UserByKey(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(u, got); diff != "" {
		t.Errorf("UserByKey (-want +got):\n%s", diff)
	}
	if _, err := st.UserByKey(ctx, "bob"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("UserByKey(bob): got %v, want ErrNotFound", err)
	}
	if err := st.SetPasswordHash(ctx, "alice", "new"); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.UserByKey(ctx, "alice"); got.PasswordHash != "new" {
		t.Errorf("hash after SetPasswordHash: got %q, want %q", got.PasswordHash, "new")
	}
	if err := st.SetPasswordHash(ctx, "bob", "x"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("SetPasswordHash(bob): got %v, want ErrNotFound", err)
	}
}

func TestConcurrentCreateUserCreatesOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := dbtest.Open(t)

	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			u := newUser("carol")
			u.ID = fmt.Sprint("uid-", i)
			errs <- st.CreateUser(ctx, u)
		})
	}
	wg.Wait()
	close(errs)
	ok, dup := 0, 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, storage.ErrDuplicate):
			dup++
		default:
			t.Errorf("CreateUser: %v", err)
		}
	}
	if ok != 1 || dup != n-1 {
		t.Errorf("got %d created and %d duplicates, want 1 and %d", ok, dup, n-1)
	}
}

func TestSessionLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := dbtest.Open(t)

	s := newSession("s1", "u1", t0.Add(time.Hour))
	s.Data = `{"big":123456789012345678901234567890,"f":1.5,"s":"héllo 👋","nested":{"a":[[1],"x",{}]},"null":null}`
	if err := st.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateSession(ctx, s); !errors.Is(err, storage.ErrDuplicate) {
		t.Errorf("second CreateSession: got %v, want ErrDuplicate", err)
	}
	got, err := st.SessionByID(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s, got); diff != "" {
		t.Errorf("SessionByID (-want +got):\n%s", diff)
	}

	seen, exp := t0.Add(time.Minute), t0.Add(2*time.Hour)
	if err := st.TouchSession(ctx, "s1", seen, exp); err != nil {
		t.Fatal(err)
	}
	got, _ = st.SessionByID(ctx, "s1")
	if !got.LastSeenAt.Equal(seen) || !got.ExpiresAt.Equal(exp) {
		t.Errorf("after touch: lastSeen %v expires %v, want %v %v", got.LastSeenAt, got.ExpiresAt, seen, exp)
	}

	data := `{"theme":"dark"}`
	got, err = st.SetSessionData(ctx, "s1", data)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(data, got.Data); diff != "" {
		t.Errorf("SetSessionData (-want +got):\n%s", diff)
	}
	if err := st.RotateSecret(ctx, "s1", []byte{9}); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.SessionByID(ctx, "s1"); !cmp.Equal(got.SecretHash, []byte{9}) {
		t.Errorf("secret after rotate: got %v", got.SecretHash)
	}

	if ok, err := st.DeleteSession(ctx, "s1"); !ok || err != nil {
		t.Fatalf("DeleteSession: got %v, %v; want true, nil", ok, err)
	}
	if ok, err := st.DeleteSession(ctx, "s1"); ok || err != nil {
		t.Fatalf("second DeleteSession: got %v, %v; want false, nil", ok, err)
	}
	if _, err := st.SessionByID(ctx, "s1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("SessionByID after delete: got %v, want ErrNotFound", err)
	}
	// Writes to a deleted session must not bring it back.
	if err := st.TouchSession(ctx, "s1", seen, exp); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("TouchSession after delete: got %v, want ErrNotFound", err)
	}
	if _, err := st.SetSessionData(ctx, "s1", data); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("SetSessionData after delete: got %v, want ErrNotFound", err)
	}
	if err := st.RotateSecret(ctx, "s1", nil); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("RotateSecret after delete: got %v, want ErrNotFound", err)
	}
	if n, _ := st.CountSessions(ctx); n != 0 {
		t.Errorf("sessions left: %d, want 0", n)
	}
}

func TestSessionsOfUser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := dbtest.Open(t)

	for i, id := range []string{"a", "b", "c"} {
		s := newSession(id, "u1", t0.Add(time.Hour))
		s.CreatedAt = t0.Add(time.Duration(i) * time.Second)
		if err := st.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.CreateSession(ctx, newSession("other", "u2", t0.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	list, err := st.SessionsOfUser(ctx, "u1", 10)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"c", "b", "a"}, ids(list)); diff != "" {
		t.Errorf("SessionsOfUser order (-want +got):\n%s", diff)
	}
	if list, _ := st.SessionsOfUser(ctx, "u1", 2); len(list) != 2 {
		t.Errorf("limit 2: got %d sessions", len(list))
	}

	n, err := st.DeleteSessionsOfUser(ctx, "u1", "b")
	if err != nil || n != 2 {
		t.Fatalf("DeleteSessionsOfUser keeping b: got %d, %v; want 2, nil", n, err)
	}
	list, _ = st.SessionsOfUser(ctx, "u1", 10)
	if diff := cmp.Diff([]string{"b"}, ids(list)); diff != "" {
		t.Errorf("left after delete (-want +got):\n%s", diff)
	}
	if _, err := st.SessionByID(ctx, "other"); err != nil {
		t.Errorf("another user's session was touched: %v", err)
	}
}

func TestDeleteExpiredSessions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := dbtest.Open(t)

	for i, id := range []string{"old1", "old2", "edge", "live"} {
		exp := t0.Add(time.Duration(i-2) * time.Minute) // -2m, -1m, 0, +1m
		if err := st.CreateSession(ctx, newSession(id, "u", exp)); err != nil {
			t.Fatal(err)
		}
	}
	// Two sweepers at once (two instances) delete each document once.
	var wg sync.WaitGroup
	counts := make([]int64, 2)
	for i := range counts {
		wg.Go(func() {
			n, err := st.DeleteExpiredSessions(ctx, t0)
			if err != nil {
				t.Errorf("sweeper %d: %v", i, err)
			}
			counts[i] = n
		})
	}
	wg.Wait()
	if total := counts[0] + counts[1]; total != 3 {
		t.Errorf("deleted %v, want 3 in total", counts)
	}
	list, _ := st.SessionsOfUser(ctx, "u", 10)
	if diff := cmp.Diff([]string{"live"}, ids(list)); diff != "" {
		t.Errorf("left (-want +got):\n%s", diff)
	}
}

func TestConcurrentSetSessionDataLastWriteWins(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := dbtest.Open(t)
	if err := st.CreateSession(ctx, newSession("s", "u", t0.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			d := fmt.Sprintf(`{"writer":%d,"a":%[1]d,"b":%[1]d,"c":{"d":%[1]d}}`, i)
			if _, err := st.SetSessionData(ctx, "s", d); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, err := st.SessionByID(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	var w int
	if _, err := fmt.Sscanf(got.Data, `{"writer":%d`, &w); err != nil {
		t.Fatalf("data %s: %v", got.Data, err)
	}
	if want := fmt.Sprintf(`{"writer":%d,"a":%[1]d,"b":%[1]d,"c":{"d":%[1]d}}`, w); got.Data != want {
		t.Errorf("data is a mix of writes: got %s, want %s", got.Data, want)
	}
}

func ids(list []*storage.Session) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = s.ID
	}
	return out
}

func TestCreateSessionsInBulk(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := dbtest.Open(t)
	batch := []*storage.Session{newSession("b1", "u", t0.Add(time.Hour)), newSession("b2", "u", t0.Add(time.Hour))}
	batch[1].Data = ""
	if err := st.CreateSessions(ctx, batch); err != nil {
		t.Fatal(err)
	}
	got, err := st.SessionByID(ctx, "b2")
	if err != nil || got.Data != "{}" {
		t.Fatalf("b2: %+v, %v; want it stored with data {}", got, err)
	}
	if err := st.CreateSessions(ctx, batch[:1]); !errors.Is(err, storage.ErrDuplicate) {
		t.Errorf("inserting b1 again: %v, want ErrDuplicate", err)
	}
	if n, _ := st.CountSessions(ctx); n != 2 {
		t.Errorf("sessions: %d, want 2", n)
	}
}

// A missing document is ErrNotFound itself, whatever looked for it: its
// message says "storage:" once.
func TestNotFoundIsNotWrapped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := dbtest.Open(t)
	for name, lookup := range map[string]func() error{
		"UserByKey":       func() error { _, err := st.UserByKey(ctx, "nobody"); return err },
		"SetPasswordHash": func() error { return st.SetPasswordHash(ctx, "nobody", "h") },
		"SessionByID":     func() error { _, err := st.SessionByID(ctx, "none"); return err },
		"TouchSession":    func() error { return st.TouchSession(ctx, "none", t0, t0) },
		"RotateSecret":    func() error { return st.RotateSecret(ctx, "none", []byte{1}) },
		"SetSessionData":  func() error { _, err := st.SetSessionData(ctx, "none", "{}"); return err },
		"ThrottleByKey":   func() error { _, err := st.ThrottleByKey(ctx, "none"); return err },
	} {
		if err := lookup(); err != storage.ErrNotFound { // the sentinel itself, not wrapped
			t.Errorf("%s: got %v, want storage.ErrNotFound itself", name, err)
		}
	}
}

// Concurrent uses of a session that all read it stale write it once; the
// next write comes a gap later.
func TestTouchSessionOncePer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := dbtest.Open(t)
	if err := st.CreateSession(ctx, newSession("s", "u", t0.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	touch := func(at time.Time) (int, error) {
		var mu sync.Mutex
		var wrote int
		var errs []error
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				due, err := st.TouchSessionOncePer(ctx, "s", at, at.Add(time.Hour), time.Minute)
				mu.Lock()
				defer mu.Unlock()
				if due {
					wrote++
				}
				errs = append(errs, err)
			})
		}
		wg.Wait()
		return wrote, errors.Join(errs...)
	}
	for _, tc := range []struct {
		at    time.Time
		wrote int
	}{
		{t0.Add(time.Minute), 1},
		{t0.Add(time.Minute + 59*time.Second), 0},
		{t0.Add(2 * time.Minute), 1},
	} {
		wrote, err := touch(tc.at)
		if err != nil {
			t.Fatal(err)
		}
		if wrote != tc.wrote {
			t.Errorf("at %v: %d writes, want %d", tc.at.Sub(t0), wrote, tc.wrote)
		}
	}
	got, err := st.SessionByID(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	if !got.LastSeenAt.Equal(t0.Add(2 * time.Minute)) {
		t.Errorf("lastSeenAt %v, want %v", got.LastSeenAt, t0.Add(2*time.Minute))
	}
	if due, err := st.TouchSessionOncePer(ctx, "gone", t0, t0, time.Minute); !due || !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("touching a missing session: %v, %v; want true, ErrNotFound", due, err)
	}
}
