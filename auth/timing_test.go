package auth

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"gatehouse/internal/dbtest"
)

func newTestService(t testing.TB, cost int) *Service {
	t.Helper()
	s, err := NewService(dbtest.Open(t), Config{TTL: time.Hour, MaxAge: time.Hour, BcryptCost: cost, AllowSignup: true})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Usernames cannot be enumerated by timing: a login for an unknown user
// does the same work as one for a known user with a wrong password,
// exactly one bcrypt comparison.
func TestLoginDoesTheSameWorkForUnknownUsers(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t, 4)
	if _, _, err := s.Register(ctx, "known", "correct horse", "", Client{IP: "192.0.2.1"}); err != nil {
		t.Fatal(err)
	}
	for _, user := range []string{"known", "unknown"} {
		before := s.hasher.compares.Load()
		_, _, err := s.Login(ctx, user, "wrong password", "", Client{IP: "192.0.2.1"})
		if !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("%s: %v, want ErrInvalidCredentials", user, err)
		}
		if n := s.hasher.compares.Load() - before; n != 1 {
			t.Errorf("%s: %d bcrypt comparisons, want 1", user, n)
		}
	}
}

// BenchmarkLoginTiming compares, in one run, the median time of a failed
// login for an unknown user and for a known user, at the default cost.
// The reported ratio should stay near 1.
func BenchmarkLoginTiming(b *testing.B) {
	ctx := context.Background()
	s := newTestService(b, 10)
	s.cfg.Throttle.UserLimit, s.cfg.Throttle.IPLimit = 1<<30, 1<<30 // measure hashing, not locks
	if _, _, err := s.Register(ctx, "known", "correct horse", "", Client{}); err != nil {
		b.Fatal(err)
	}
	var known, unknown []time.Duration
	for i := 0; b.Loop(); i++ {
		user, into := "known", &known
		if i%2 == 1 {
			user, into = "unknown", &unknown
		}
		start := time.Now()
		if _, _, err := s.Login(ctx, user, "wrong password", "", Client{IP: "192.0.2.7"}); !errors.Is(err, ErrInvalidCredentials) {
			b.Fatal(err)
		}
		*into = append(*into, time.Since(start))
	}
	if len(known) == 0 || len(unknown) == 0 {
		return
	}
	mk, mu := median(known), median(unknown)
	b.ReportMetric(float64(mk.Microseconds()), "known-median-µs")
	b.ReportMetric(float64(mu.Microseconds()), "unknown-median-µs")
	b.ReportMetric(float64(mu)/float64(mk), "unknown/known")
}

func median(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)/2]
}

// A wrong password takes as long whatever the cost its user's hash was
// made at: hashes from before a BCRYPT_COST increase must not answer
// faster than unknown names do.
func TestFailedLoginsTakeAsLongAtEveryCost(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t, 6)
	s.cfg.Throttle.UserLimit, s.cfg.Throttle.IPLimit = 1<<30, 1<<30 // measure hashing, not locks
	if _, _, err := s.Register(ctx, "legacy", "correct horse", "", Client{}); err != nil {
		t.Fatal(err)
	}
	old, err := HashPassword("correct horse", 4) // as a lower BCRYPT_COST made it
	if err != nil {
		t.Fatal(err)
	}
	if err := s.store.SetPassword(ctx, foldKey("legacy"), old, "c"); err != nil {
		t.Fatal(err)
	}
	times := map[string][]time.Duration{}
	for i := range 20 {
		user := []string{"legacy", "unknown"}[i%2]
		start := time.Now()
		if _, _, err := s.Login(ctx, user, "wrong password", "", Client{}); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatal(err)
		}
		if i >= 4 { // the first ones teach the service how long a comparison takes
			times[user] = append(times[user], time.Since(start))
		}
	}
	legacy, unknown := median(times["legacy"]), median(times["unknown"])
	t.Logf("median failed login: legacy hash %v, unknown name %v", legacy, unknown)
	if legacy < unknown/2 {
		t.Errorf("a user with a cost-4 hash answers in %v, an unknown name in %v: timing tells the name exists", legacy, unknown)
	}
}
