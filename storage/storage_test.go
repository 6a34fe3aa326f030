package storage_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
	if err := st.SetPassword(ctx, "alice", "new", "cred2"); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.UserByKey(ctx, "alice"); got.PasswordHash != "new" || got.CredentialID != "cred2" {
		t.Errorf("after SetPassword: hash %q credential %q, want %q %q", got.PasswordHash, got.CredentialID, "new", "cred2")
	}
	if err := st.SetPassword(ctx, "bob", "x", "c"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("SetPassword(bob): got %v, want ErrNotFound", err)
	}
	// A rehash replaces only the hash it was made from.
	if ok, err := st.ReplaceHash(ctx, "alice", "stale", "rehashed"); ok || err != nil {
		t.Errorf("ReplaceHash of a stale hash: %v, %v; want false, nil", ok, err)
	}
	if ok, err := st.ReplaceHash(ctx, "alice", "new", "rehashed"); !ok || err != nil {
		t.Errorf("ReplaceHash of the current hash: %v, %v; want true, nil", ok, err)
	}
	if got, _ := st.UserByKey(ctx, "alice"); got.PasswordHash != "rehashed" || got.CredentialID != "cred2" {
		t.Errorf("after ReplaceHash: hash %q credential %q, want %q %q", got.PasswordHash, got.CredentialID, "rehashed", "cred2")
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
	if _, err := st.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateSession(ctx, s); !errors.Is(err, storage.ErrDuplicate) {
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
	if err := st.TouchSession(ctx, s, seen, exp); err != nil {
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
	if err := st.RotateSecret(ctx, "s1", []byte{9}, t0); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.SessionByID(ctx, "s1"); !cmp.Equal(got.SecretHash, []byte{9}) {
		t.Errorf("secret after rotate: got %v", got.SecretHash)
	}

	if ok, err := st.DeleteSession(ctx, "s1", "u1"); !ok || err != nil {
		t.Fatalf("DeleteSession: got %v, %v; want true, nil", ok, err)
	}
	if ids, _ := st.SessionIDsOfUser(ctx, "u1"); len(ids) != 0 {
		t.Errorf("the user still lists %v", ids)
	}
	if ok, err := st.DeleteSession(ctx, "s1", "u1"); ok || err != nil {
		t.Fatalf("second DeleteSession: got %v, %v; want false, nil", ok, err)
	}
	if _, err := st.SessionByID(ctx, "s1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("SessionByID after delete: got %v, want ErrNotFound", err)
	}
	// Writes to a deleted session must not bring it back.
	if err := st.TouchSession(ctx, s, seen, exp); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("TouchSession after delete: got %v, want ErrNotFound", err)
	}
	if _, err := st.SetSessionData(ctx, "s1", data); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("SetSessionData after delete: got %v, want ErrNotFound", err)
	}
	if err := st.RotateSecret(ctx, "s1", nil, t0); !errors.Is(err, storage.ErrNotFound) {
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
		if _, err := st.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.CreateSession(ctx, newSession("other", "u2", t0.Add(time.Hour))); err != nil {
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

// Sessions are swept once the span of time their expiry was filed under
// has ended (512 s for an idle timeout of an hour), and only the ones that
// are still expired then: a session whose expiry slid later stays.
func TestDeleteExpiredSessions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := dbtest.Open(t)
	now := t0.Truncate(512 * time.Second).Add(100 * time.Second)

	add := func(id string, expires time.Duration) *storage.Session {
		s := newSession(id, "u", now.Add(expires))
		s.LastSeenAt = s.ExpiresAt.Add(-time.Hour)
		if _, err := st.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	add("old1", -2*time.Hour)
	add("old2", -time.Hour)
	slid := add("slid", -time.Hour)
	add("just-now", -time.Second)
	add("live", time.Hour)
	if err := st.TouchSession(ctx, slid, now.Add(-time.Hour), now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Two sweepers at once (two instances) delete each document once.
	var wg sync.WaitGroup
	counts := make([]int64, 2)
	for i := range counts {
		wg.Go(func() {
			n, err := st.DeleteExpiredSessions(ctx, now, nil)
			if err != nil {
				t.Errorf("sweeper %d: %v", i, err)
			}
			counts[i] = n
		})
	}
	wg.Wait()
	if total := counts[0] + counts[1]; total != 2 {
		t.Errorf("deleted %v, want 2 in total", counts)
	}
	list, _ := st.SessionsOfUser(ctx, "u", 10)
	if diff := cmp.Diff([]string{"just-now", "live", "slid"}, sorted(ids(list))); diff != "" {
		t.Errorf("left (-want +got):\n%s", diff)
	}
	// Once its span has ended, the session that expired in it goes.
	if n, err := st.DeleteExpiredSessions(ctx, now.Add(512*time.Second), nil); n != 1 || err != nil {
		t.Errorf("the next span's sweep: %d, %v; want 1, nil", n, err)
	}
	if ids, _ := st.SessionIDsOfUser(ctx, "u"); len(ids) != 2 {
		t.Errorf("the user lists %v, want 2 sessions", ids)
	}
}

func sorted(s []string) []string { slices.Sort(s); return s }

func TestConcurrentSetSessionDataLastWriteWins(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := dbtest.Open(t)
	if _, err := st.CreateSession(ctx, newSession("s", "u", t0.Add(time.Hour))); err != nil {
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
		"UserByKey":      func() error { _, err := st.UserByKey(ctx, "nobody"); return err },
		"SetPassword":    func() error { return st.SetPassword(ctx, "nobody", "h", "c") },
		"SessionByID":    func() error { _, err := st.SessionByID(ctx, "none"); return err },
		"TouchSession":   func() error { return st.TouchSession(ctx, newSession("none", "u", t0), t0, t0) },
		"RotateSecret":   func() error { return st.RotateSecret(ctx, "none", []byte{1}, t0) },
		"SetSessionData": func() error { _, err := st.SetSessionData(ctx, "none", "{}"); return err },
		"ThrottleByKey":  func() error { _, err := st.ThrottleByKey(ctx, "none"); return err },
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
	if _, err := st.CreateSession(ctx, newSession("s", "u", t0.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	touch := func(at time.Time) (int, error) {
		var mu sync.Mutex
		var wrote int
		var errs []error
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				due, err := st.TouchSessionOncePer(ctx, newSession("s", "u", t0.Add(time.Hour)), at, at.Add(time.Hour), time.Minute)
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
	if due, err := st.TouchSessionOncePer(ctx, newSession("gone", "u", t0), t0, t0, time.Minute); !due || !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("touching a missing session: %v, %v; want true, ErrNotFound", due, err)
	}
}

// The embedded engine's own updates are read-then-overwrite; through the
// store every one counts. 100 logins of one user at once are all listed,
// and ending the user's sessions ends all of them.
func TestConcurrentSessionsOfOneUserAreAllListed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// The writes to one user's list run one at a time, and under the race
	// detector beside the other tests 100 of them take longer than one
	// operation's default deadline.
	uri, _ := dbtest.URI(t)
	st, err := storage.Open(ctx, uri, dbtest.Open(t).DatabaseName(), dbtest.Options(t, storage.Options{Timeout: time.Minute}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	const n = 100
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, err := st.CreateSession(ctx, newSession(fmt.Sprint("s", i), "u", t0.Add(time.Hour))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if ids, err := st.SessionIDsOfUser(ctx, "u"); len(ids) != n || err != nil {
		t.Fatalf("the user lists %d sessions (%v), want %d", len(ids), err, n)
	}
	if got, err := st.DeleteSessionsOfUser(ctx, "u", ""); got != n || err != nil {
		t.Fatalf("DeleteSessionsOfUser: %d, %v; want %d, nil", got, err, n)
	}
	if left, _ := st.CountSessions(ctx); left != 0 {
		t.Errorf("%d sessions survived the user's logout everywhere", left)
	}
}

// A touch racing a rotation never brings the old secret back.
func TestTouchNeverUndoesARotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := dbtest.Open(t)
	s := newSession("s", "u", t0.Add(time.Hour))
	if _, err := st.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				at := t0.Add(time.Duration(w*1000+i) * time.Millisecond)
				_ = st.TouchSession(ctx, s, at, at.Add(time.Hour))
			}
		})
	}
	for i := range 50 {
		secret := []byte{byte(i)}
		if err := st.RotateSecret(ctx, "s", secret, t0); err != nil {
			t.Fatal(err)
		}
		got, err := st.SessionByID(ctx, "s")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.SecretHash, secret) {
			t.Errorf("rotation %d read back %v: a concurrent touch undid it", i, got.SecretHash)
		}
	}
	close(stop)
	wg.Wait()
}

// Every reservation and failure of a throttle counts, however many arrive
// at once, and a reset never forgets a reservation made since it read.
func TestThrottleCountsEveryAttempt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := dbtest.Open(t)
	const n = 100
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, err := st.ReserveAttempt(ctx, "k", t0); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	th, err := st.ThrottleByKey(ctx, "k")
	if err != nil || th.Pending != n {
		t.Fatalf("after %d reservations: %+v, %v", n, th, err)
	}
	for i := range n {
		wg.Go(func() {
			var err error
			if i%2 == 0 {
				_, err = st.FailAttempt(ctx, "k", t0)
			} else {
				err = st.ReleaseAttempt(ctx, "k", false)
			}
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if th, _ = st.ThrottleByKey(ctx, "k"); th.Pending != 0 || th.Failures != n/2 {
		t.Fatalf("after %d failures and %d releases: pending %d, failures %d", n/2, n/2, th.Pending, th.Failures)
	}
	stale := *th
	if _, err := st.ReserveAttempt(ctx, "k", t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if ok, err := st.ResetThrottle(ctx, &stale); ok || err != nil {
		t.Errorf("reset after a newer reservation: %v, %v; want false, nil", ok, err)
	}
	if th, _ := st.ThrottleByKey(ctx, "k"); th == nil || th.Pending != 1 {
		t.Errorf("the reservation made after the read was forgotten: %+v", th)
	}
}

// A database written before sessions were listed per user and filed by
// expiry gets both at start, so an upgrade signs nobody out and misses no
// session when it logs a user out everywhere or sweeps.
func TestMigrateListsAndFilesOldSessions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := dbtest.Open(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	for i, id := range []string{"a", "b", "expired"} {
		s := newSession(id, "u", now.Add(time.Hour))
		s.CreatedAt = now.Add(time.Duration(i) * time.Second)
		if id == "expired" {
			s.ExpiresAt = now.Add(-3 * time.Hour)
		}
		s.LastSeenAt = s.ExpiresAt.Add(-time.Hour)
		if err := st.InsertLegacySession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 { // idempotent: instances starting together may both run it
		if err := st.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	ids, err := st.SessionIDsOfUser(ctx, "u")
	if diff := cmp.Diff([]string{"a", "b", "expired"}, ids); diff != "" || err != nil {
		t.Fatalf("the user's list (-want +got), %v:\n%s", err, diff)
	}
	if n, err := st.DeleteExpiredSessions(ctx, now, nil); n != 1 || err != nil {
		t.Errorf("sweep after migrating: %d, %v; want 1, nil", n, err)
	}
	if n, err := st.DeleteSessionsOfUser(ctx, "u", ""); n != 2 || err != nil {
		t.Errorf("logout everywhere after migrating: %d, %v; want 2, nil", n, err)
	}
}

// Logins racing logouts everywhere never leave a session alive but
// unlisted, where later logouts everywhere (and password changes) would
// not find it.
func TestLoginsRacingLogoutsLeaveNoSessionUnlisted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := dbtest.Open(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := st.DeleteSessionsOfUser(ctx, "u", ""); err != nil {
					t.Errorf("logout everywhere %d.%d: %v", w, i, err)
					return
				}
			}
		})
	}
	var logins sync.WaitGroup
	for w := range 4 {
		logins.Go(func() {
			for i := range 40 {
				if _, err := st.CreateSession(ctx, newSession(fmt.Sprint("s", w, ".", i), "u", t0.Add(time.Hour))); err != nil {
					t.Errorf("login %d.%d: %v", w, i, err)
				}
			}
		})
	}
	logins.Wait()
	close(stop)
	wg.Wait()
	if _, err := st.DeleteSessionsOfUser(ctx, "u", ""); err != nil {
		t.Fatal(err)
	}
	if n, _ := st.CountSessions(ctx); n != 0 {
		t.Errorf("%d sessions survived a logout everywhere after the race: they were alive but unlisted", n)
	}
}

// Sweepers of several instances at once over the same files: each
// expired session is deleted once, and none of them fails because another
// dropped a file under it.
func TestConcurrentSweepersOverlap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := dbtest.Open(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	var batch []*storage.Session
	for i := range 300 {
		s := newSession(fmt.Sprint("x", i), fmt.Sprint("u", i%7), now.Add(-time.Duration(i%5+1)*time.Hour))
		s.LastSeenAt = s.ExpiresAt.Add(-time.Hour)
		batch = append(batch, s)
	}
	if err := st.CreateSessions(ctx, batch); err != nil {
		t.Fatal(err)
	}
	var total atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 3 {
				n, err := st.DeleteExpiredSessions(ctx, now, nil)
				if err != nil {
					t.Errorf("sweep: %v", err)
				}
				total.Add(n)
			}
		})
	}
	wg.Wait()
	if total.Load() != 300 {
		t.Errorf("the sweepers deleted %d sessions in all, want 300", total.Load())
	}
}

// A database written by a newer gatehouse (a higher layout version) is
// refused, naming both versions, and left as it is.
func TestNewerLayoutIsRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := dbtest.Open(t)
	if err := st.SetLayoutVersion(ctx, storage.LayoutVersion+1); err != nil {
		t.Fatal(err)
	}
	err := st.Migrate(ctx)
	var newer *storage.NewerLayoutError
	if !errors.As(err, &newer) || newer.Version != storage.LayoutVersion+1 ||
		!strings.Contains(err.Error(), fmt.Sprintf("layout version %d, newer than this gatehouse knows (%d)", storage.LayoutVersion+1, storage.LayoutVersion)) {
		t.Fatalf("migrate a newer layout: %v, want a NewerLayoutError naming both versions", err)
	}
	if err := st.SetLayoutVersion(ctx, storage.LayoutVersion); err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Errorf("migrate the current layout: %v", err)
	}
}
