package graph_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"gatehouse/auth"
	"gatehouse/graph"
	"gatehouse/storage"
)

// One test per attack: each asserts the refusal, its code, and what the
// database holds afterwards.

func retryAfter(t *testing.T, r *response) float64 {
	t.Helper()
	if got := r.code(t); got != "TOO_MANY_REQUESTS" {
		t.Fatalf("code %q (%s), want TOO_MANY_REQUESTS", got, r.Errors[0].Message)
	}
	s, _ := r.Errors[0].Extensions["retryAfter"].(float64)
	return s
}

func login(t *testing.T, e *env, user, password string) *response {
	t.Helper()
	return e.client().do(t, loginQuery, map[string]any{"u": user, "p": password})
}

func TestAttackPasswordGuessingLocksTheUsername(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.client().register(t, "victim", pw)
	ctx := context.Background()

	for i := range 5 {
		if got := login(t, e, "victim", fmt.Sprintf("wrong guess %d", i)).code(t); got != "UNAUTHENTICATED" {
			t.Fatalf("guess %d: code %q, want UNAUTHENTICATED", i, got)
		}
	}
	if s := retryAfter(t, login(t, e, "victim", "wrong guess 6")); s != 30 {
		t.Errorf("first lock: retryAfter %v, want 30", s)
	}
	// The right password is refused too: otherwise the lock would tell
	// the attacker when a guess was right.
	if s := retryAfter(t, login(t, e, "VICTIM", pw)); s != 30 {
		t.Errorf("right password while locked: retryAfter %v, want 30", s)
	}
	// After the lock, one more failure locks again, twice as long.
	e.clock.Advance(31 * time.Second)
	login(t, e, "victim", "wrong guess 7")
	if s := retryAfter(t, login(t, e, "victim", pw)); s != 60 {
		t.Errorf("second lock: retryAfter %v, want 60", s)
	}
	th, err := e.store.ThrottleByKey(ctx, "user:victim")
	if err != nil || th.Lockouts != 2 {
		t.Fatalf("throttle: %+v, %v; want 2 lockouts", th, err)
	}
	// Each failure after a lock locks again for twice as long, up to the cap.
	var delays []float64
	for wait := 60.0; len(delays) < 6; {
		e.clock.Advance(time.Duration(wait+1) * time.Second)
		if got := login(t, e, "victim", "wrong again").code(t); got != "UNAUTHENTICATED" {
			t.Fatalf("after the lock ended: %q", got)
		}
		wait = retryAfter(t, login(t, e, "victim", pw))
		delays = append(delays, wait)
	}
	if got, want := fmt.Sprint(delays), "[120 240 480 900 900 900]"; got != want {
		t.Errorf("lock delays: %s, want %s", got, want)
	}
	// Once the lock ends the owner gets in, and success resets the count.
	e.clock.Advance(15*time.Minute + time.Second)
	e.client().login(t, "victim", pw)
	if th, err := e.store.ThrottleByKey(ctx, "user:victim"); err != nil || th.Failures != 0 || th.Lockouts != 0 || th.Pending != 0 {
		t.Errorf("throttle after a successful login: %+v, %v; want its failures and lockouts forgotten", th, err)
	}
	if n := e.sessionCount(); n != 2 {
		t.Errorf("sessions: %d, want 2 (register and the one good login)", n)
	}
}

// An unknown username is throttled exactly like a known one, so the
// throttle does not reveal which usernames exist.
func TestAttackThrottleDoesNotRevealUsernames(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.client().register(t, "known", pw)
	answers := map[string][]string{}
	for _, user := range []string{"known", "unknown"} {
		for i := range 7 {
			r := login(t, e, user, fmt.Sprintf("wrong guess %d", i))
			answers[user] = append(answers[user], fmt.Sprint(r.code(t), r.Errors[0].Message, r.Errors[0].Extensions["retryAfter"]))
		}
	}
	if fmt.Sprint(answers["known"]) != fmt.Sprint(answers["unknown"]) {
		t.Errorf("answers differ:\nknown:   %v\nunknown: %v", answers["known"], answers["unknown"])
	}
}

// One client network gets a larger budget across all usernames.
func TestAttackOneAddressGuessingManyUsernames(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *auth.Config, _ *graph.Options) {
		c.Throttle = auth.DefaultThrottle
		c.Throttle.IPLimit = 8
	})
	e.client().register(t, "target", pw)
	for i := range 8 {
		if got := login(t, e, fmt.Sprint("user", i), "wrong password").code(t); got != "UNAUTHENTICATED" {
			t.Fatalf("attempt %d: %q", i, got)
		}
	}
	retryAfter(t, login(t, e, "target", pw)) // the address is locked for every name
	if _, err := e.store.ThrottleByKey(context.Background(), "net:127.0.0.1"); err != nil {
		t.Errorf("no throttle for the address: %v", err)
	}
}

// Aliases, fragments and batching must not multiply guesses: a second
// credential field refuses the whole operation before any hashing.
func TestAttackAliasesCannotMultiplyGuesses(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.client().register(t, "alias", pw)
	for _, q := range []string{
		`mutation { a: login(username: "alias", password: "guess one1") { token } b: login(username: "alias", password: "guess two2") { token } }`,
		`mutation { login(username: "alias", password: "guess one1") { token } register(username: "other", password: "guess two2") { token } }`,
		`mutation { ...F } fragment F on Mutation { a: login(username: "alias", password: "guess one1") { token } b: login(username: "alias", password: "guess two2") { token } }`,
		`mutation { ... on Mutation { a: login(username: "alias", password: "guess one1") { token } } b: changePassword(currentPassword: "x", newPassword: "yyyyyyyy") { token } }`,
	} {
		r := e.client().do(t, q, nil)
		if got := r.code(t); got != "BAD_USER_INPUT" {
			t.Errorf("%s: code %q, want BAD_USER_INPUT", q[:40], got)
		}
	}
	if _, err := e.store.ThrottleByKey(context.Background(), "user:alias"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a refused operation counted guesses: %v", err)
	}
	if _, err := e.store.UserByKey(context.Background(), "other"); err == nil {
		t.Error("a refused operation registered a user")
	}
}

// A flood of logins cannot take every CPU: excess logins wait briefly,
// then get TOO_MANY_REQUESTS, and session checks keep being answered.
func TestAttackLoginFloodIsBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *auth.Config, _ *graph.Options) {
		c.BcryptCost = 10 // tens of milliseconds per hash
		c.BcryptSlots = 1
		c.BcryptWait = 20 * time.Millisecond
	})
	user := e.client()
	user.register(t, "flood", pw)

	const n = 12
	codes := make(chan string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r := login(t, e, fmt.Sprint("flood", i), "wrong password")
			codes <- r.code(t)
		})
	}
	// Meanwhile, validation does not queue behind bcrypt.
	for range 5 {
		if user.me(t) != "flood" {
			t.Error("me failed during the flood")
		}
	}
	wg.Wait()
	close(codes)
	count := map[string]int{}
	for c := range codes {
		count[c]++
	}
	if count["TOO_MANY_REQUESTS"] == 0 || count["UNAUTHENTICATED"] == 0 || len(count) != 2 {
		t.Errorf("codes %v: want some logins checked and some refused, nothing else", count)
	}
}
