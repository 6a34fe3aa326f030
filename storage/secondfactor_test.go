package storage_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"gatehouse/internal/dbtest"
	"gatehouse/storage"
)

// The second factor's single-use rules rest on these: of many requests
// claiming one step or one recovery code at the same instant, one wins.
func TestConcurrentClaimsHaveOneWinner(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := dbtest.Open(t)
	for name, claim := range map[string]func() error{
		"step":          func() error { return st.ClaimStep(ctx, "secret:59000000", t0.Add(2*time.Minute)) },
		"recovery code": func() error { return st.ClaimRecoveryCode(ctx, "hash-of-a-code") },
	} {
		const n = 100
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { errs[i] = claim() })
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, storage.ErrDuplicate):
				t.Fatalf("%s: %v", name, err)
			}
		}
		if won != 1 {
			t.Errorf("%s claimed by %d of %d, want 1", name, won, n)
		}
	}
	if ok, err := st.StepClaimed(ctx, "secret:59000000"); err != nil || !ok {
		t.Errorf("StepClaimed: %v %v", ok, err)
	}
	if ok, err := st.StepClaimed(ctx, "secret:59000001"); err != nil || ok {
		t.Errorf("StepClaimed of a step no one claimed: %v %v", ok, err)
	}
	if used, err := st.RecoveryCodesUsed(ctx, []string{"hash-of-a-code", "another"}); err != nil || used != 1 {
		t.Errorf("RecoveryCodesUsed: %d %v, want 1", used, err)
	}
	if n, err := st.DeleteExpiredClaims(ctx, t0.Add(3*time.Minute)); err != nil || n != 1 {
		t.Errorf("DeleteExpiredClaims: %d %v, want 1", n, err)
	}
	if err := st.ClaimStep(ctx, "secret:59000000", t0); err != nil {
		t.Errorf("a swept step cannot be claimed again: %v", err)
	}
}

// Of concurrent confirmations of one enrollment, one turns it on.
func TestConcurrentEnableTOTPEnablesOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := dbtest.Open(t)
	if err := st.CreateUser(ctx, newUser("carol")); err != nil {
		t.Fatal(err)
	}
	if err := st.BeginTOTP(ctx, "carol", "enroll-1", []byte("sealed")); err != nil {
		t.Fatal(err)
	}
	const n = 20
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = st.EnableTOTP(ctx, "carol", "enroll-1", []byte("sealed"), []string{string(rune('a' + i))}, "cred")
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		if err == nil {
			won++
		} else if !errors.Is(err, storage.ErrNotFound) {
			t.Fatal(err)
		}
	}
	u, err := st.UserByKey(ctx, "carol")
	if err != nil || won != 1 || u.TOTPID != "enroll-1" || u.TOTPPendingID != "" || len(u.RecoveryCodes) != 1 {
		t.Fatalf("%d of %d enabled it; user %+v (%v)", won, n, u, err)
	}
	for i := range n { // of concurrent replacements of the codes, one wins
		wg.Go(func() {
			errs[i] = st.SetRecoveryCodes(ctx, "carol", "enroll-1", u.RecoveryCodes, []string{"new", string(rune('a' + i))})
		})
	}
	wg.Wait()
	if won = count(errs, nil); won != 1 {
		t.Fatalf("%d of %d replaced the same recovery codes (%v)", won, n, errs)
	}
	if err := st.BeginTOTP(ctx, "carol", "enroll-2", []byte("x")); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("BeginTOTP with TOTP on: %v, want ErrNotFound", err)
	}
	if err := st.DisableTOTP(ctx, "carol", "enroll-2", "cred2"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("DisableTOTP of another id: %v, want ErrNotFound", err)
	}
	if err := st.DisableTOTP(ctx, "carol", "enroll-1", "cred2"); err != nil {
		t.Fatal(err)
	}
	if u, _ = st.UserByKey(ctx, "carol"); u.TOTPID != "" || u.TOTPSecret != nil || u.RecoveryCodes != nil || u.CredentialID != "cred2" {
		t.Errorf("after DisableTOTP: %+v", u)
	}
}

// A lock whose holder stopped is taken over once it expires, by one of
// the requests that find it expired.
func TestExpiredLockIsTakenOverOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := dbtest.Open(t)
	if err := st.ClaimLock(ctx, "verifying:s1", t0.Add(30*time.Second), t0); err != nil {
		t.Fatal(err)
	}
	if err := st.ClaimLock(ctx, "verifying:s1", t0.Add(40*time.Second), t0.Add(10*time.Second)); !errors.Is(err, storage.ErrDuplicate) {
		t.Fatalf("a running lock was taken: %v", err)
	}
	const n = 20
	errs := make([]error, n)
	var wg sync.WaitGroup
	later := t0.Add(time.Minute)
	for i := range n {
		wg.Go(func() { errs[i] = st.ClaimLock(ctx, "verifying:s1", later.Add(30*time.Second), later) })
	}
	wg.Wait()
	if won := count(errs, nil); won != 1 {
		t.Fatalf("an expired lock taken over by %d of %d (%v)", won, n, errs)
	}
}

// Ending a pending session over the cap spares one completed meanwhile.
func TestDeletePendingSessionSparesACompletedOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := dbtest.Open(t)
	pending := newSession("pending-1", "u1", t0.Add(time.Hour))
	pending.Pending = true
	if _, err := st.CreateSession(ctx, pending); err != nil {
		t.Fatal(err)
	}
	if err := st.CompleteSecondFactor(ctx, pending, []byte{9}, []string{"PASSWORD", "TOTP"}, t0, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if ok, err := st.DeletePendingSession(ctx, "pending-1", "u1"); err != nil || ok {
		t.Fatalf("DeletePendingSession of a completed session: %v %v", ok, err)
	}
	if ids, _ := st.SessionIDsOfUser(ctx, "u1"); len(ids) != 1 {
		t.Fatalf("the completed session was delisted: %v", ids)
	}
	other := newSession("pending-2", "u1", t0.Add(time.Hour))
	other.Pending = true
	if _, err := st.CreateSession(ctx, other); err != nil {
		t.Fatal(err)
	}
	if ok, err := st.DeletePendingSession(ctx, "pending-2", "u1"); err != nil || !ok {
		t.Fatalf("DeletePendingSession of a pending session: %v %v", ok, err)
	}
	if ids, _ := st.SessionIDsOfUser(ctx, "u1"); len(ids) != 1 || ids[0] != "pending-1" {
		t.Fatalf("after ending the pending one: %v", ids)
	}
}

func count(errs []error, want error) int {
	n := 0
	for _, err := range errs {
		if err == want {
			n++
		}
	}
	return n
}
