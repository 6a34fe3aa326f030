package storage_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/internal/dbtest"
	"gatehouse/storage"
)

func TestCreateUserClaimsNames(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := dbtest.Open(t)

	if err := st.CreateUser(ctx, newUser("alice"), "alice", "zzz"); err != nil {
		t.Fatal(err)
	}
	if owner, err := st.NameOwner(ctx, "zzz"); err != nil || owner != "alice" {
		t.Errorf("NameOwner(zzz) = %q, %v; want alice", owner, err)
	}
	// A look-alike: another key, a name alice owns.
	if err := st.CreateUser(ctx, newUser("alice2"), "alice"); !errors.Is(err, storage.ErrDuplicate) {
		t.Errorf("CreateUser(alice2) claiming alice: %v, want ErrDuplicate", err)
	}
	if _, err := st.UserByKey(ctx, "alice2"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("alice2 was created: %v", err)
	}
	// erin claims "erin", then fails on "zzz": the user is not created,
	// and "erin" stays erin's.
	if err := st.CreateUser(ctx, newUser("erin"), "zzz", "erin"); !errors.Is(err, storage.ErrDuplicate) {
		t.Errorf("CreateUser(erin) claiming zzz: %v, want ErrDuplicate", err)
	}
	if owner, err := st.NameOwner(ctx, "erin"); err != nil || owner != "erin" {
		t.Errorf("NameOwner(erin) = %q, %v; want erin", owner, err)
	}
	// Nobody else can have it; erin still can.
	if err := st.CreateUser(ctx, newUser("frank"), "erin"); !errors.Is(err, storage.ErrDuplicate) {
		t.Errorf("CreateUser(frank) claiming erin: %v, want ErrDuplicate", err)
	}
	if err := st.CreateUser(ctx, newUser("erin"), "erin"); err != nil {
		t.Errorf("CreateUser(erin) again: %v", err)
	}
	if _, err := st.NameOwner(ctx, "nobody"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("NameOwner(nobody): %v, want ErrNotFound", err)
	}
}

// Of 50 concurrent creations of different keys that share a look-alike
// name, on the real engine, exactly one succeeds, whatever other names
// each claims and in whatever order they are given.
func TestConcurrentLookalikeClaimsOneWins(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := dbtest.Open(t)

	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			key := fmt.Sprint("alice-", i)
			names := []string{"alice", key}
			switch i % 3 {
			case 1:
				names = []string{key, "alice"}
			case 2:
				names = []string{"alice", "aiice", key} // shared by a third of them
			}
			<-start
			errs <- st.CreateUser(ctx, newUser(key), names...)
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	won := 0
	for err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, storage.ErrDuplicate):
			t.Errorf("CreateUser: %v", err)
		}
	}
	if won != 1 {
		t.Errorf("%d creations succeeded, want 1", won)
	}
	if c, err := st.CountUsers(ctx); err != nil || c != 1 {
		t.Errorf("users: %d, %v; want 1", c, err)
	}
}

// The claims of existing users are made once: users created without
// claims get theirs (in batches), look-alikes among them are reported, not
// fatal, and a second run reads only the marker.
func TestClaimNamesOfUsers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := dbtest.Open(t)

	const n = 600 // more than one batch
	for i := range n {
		if err := st.CreateUser(ctx, newUser(fmt.Sprint("user", i))); err != nil {
			t.Fatal(err)
		}
	}
	for _, key := range []string{"alice", "ALICE"} { // "look-alikes" by the names function below
		if err := st.CreateUser(ctx, newUser(key)); err != nil {
			t.Fatal(err)
		}
	}
	// bob registered with a claim already (by the new code, beside the
	// old): the backfill finds it owned by bob, which is no collision.
	if err := st.CreateUser(ctx, newUser("bob"), "bob"); err != nil {
		t.Fatal(err)
	}
	calls := 0
	names := func(u *storage.User) []string {
		calls++
		return []string{strings.ToLower(u.Key), u.Key}
	}
	var collisions []string
	collided := func(u *storage.User, name, owner string) {
		collisions = append(collisions, fmt.Sprintf("%s: %s owned by %s", u.Key, name, owner))
	}
	begin := time.Now()
	if err := st.ClaimNamesOfUsers(ctx, "v1", names, collided); err != nil {
		t.Fatal(err)
	}
	t.Logf("claimed the names of %d users in %v", n+3, time.Since(begin))
	if calls != n+3 {
		t.Errorf("names called %d times, want %d", calls, n+3)
	}
	if len(collisions) != 1 || !strings.HasSuffix(collisions[0], ": alice owned by "+otherOf(collisions[0])) {
		t.Errorf("collisions: %q, want one on alice", collisions)
	}
	for _, name := range []string{"user0", fmt.Sprint("user", n-1), "alice", "ALICE", "bob"} {
		if _, err := st.NameOwner(ctx, name); err != nil {
			t.Errorf("NameOwner(%s): %v", name, err)
		}
	}
	if err := st.CreateUser(ctx, newUser("user0x"), "user0"); !errors.Is(err, storage.ErrDuplicate) {
		t.Errorf("CreateUser claiming user0: %v, want ErrDuplicate", err)
	}

	calls, collisions = 0, nil
	if err := st.ClaimNamesOfUsers(ctx, "v1", names, collided); err != nil {
		t.Fatal(err)
	}
	if calls != 0 || collisions != nil {
		t.Errorf("second run: %d calls, collisions %q; want none", calls, collisions)
	}
	// A new version claims again, idempotently: the same collision, and
	// nothing else.
	if err := st.ClaimNamesOfUsers(ctx, "v2", names, collided); err != nil {
		t.Fatal(err)
	}
	if calls != n+3 || len(collisions) != 1 {
		t.Errorf("new version: %d calls, collisions %q; want %d and one", calls, collisions, n+3)
	}
}

// otherOf returns, of "alice" and "ALICE", the one a collision line does
// not start with.
func otherOf(collision string) string {
	if strings.HasPrefix(collision, "alice:") {
		return "ALICE"
	}
	return "alice"
}
