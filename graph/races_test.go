package graph_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"gatehouse/auth"
	"gatehouse/graph"
)

// Attacks that arrive all at once: each test sends its burst at the same
// instant from real concurrent clients, and checks what was answered and
// what the database holds afterwards.

// burst runs f(i) for i in [0, n) at once and returns the codes of their
// errors ("" for success), counted.
func burst(n int, f func(i int) (*response, error)) map[string]int {
	var mu sync.Mutex
	count := map[string]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			r, err := f(i)
			code := ""
			switch {
			case r != nil && len(r.Errors) > 0:
				code, _ = r.Errors[0].Extensions["code"].(string)
			case err != nil:
				code = "transport: " + err.Error()
			}
			mu.Lock()
			count[code]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	return count
}

// fromProxy lets tests name the client address with X-Forwarded-For.
func fromProxy(_ *auth.Config, o *graph.Options) {
	o.HTTP.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
}

func (e *env) clientAt(ip string) *client {
	c := e.client()
	c.header.Set("X-Forwarded-For", ip)
	return c
}

// 100 wrong passwords for one user sent at the same moment are each paid
// for before bcrypt runs: at most THROTTLE_USER_LIMIT of them are checked,
// the rest are refused, and the right password is refused after them.
func TestAttackConcurrentGuessesArePaidForFirst(t *testing.T) {
	e := newPatientEnv(t)
	e.client().register(t, "target", pw)
	codes := burst(100, func(i int) (*response, error) {
		return e.client().call(loginQuery, map[string]any{"u": "target", "p": fmt.Sprint("guess number ", i)})
	})
	if codes["UNAUTHENTICATED"] > auth.DefaultThrottle.UserLimit || codes["UNAUTHENTICATED"]+codes["TOO_MANY_REQUESTS"] != 100 {
		t.Errorf("100 concurrent guesses answered %v: want at most %d checked, the rest TOO_MANY_REQUESTS",
			codes, auth.DefaultThrottle.UserLimit)
	}
	if got := login(t, e, "target", pw).code(t); got != "TOO_MANY_REQUESTS" {
		t.Errorf("the right password after the burst: %q, want TOO_MANY_REQUESTS", got)
	}
	th, err := e.store.ThrottleByKey(context.Background(), "user:target")
	if err != nil || th.Pending != 0 || th.Lockouts < 1 {
		t.Errorf("the username's throttle after the burst: %+v, %v; want locked, nothing pending", th, err)
	}
	if n := e.sessionCount(); n != 1 {
		t.Errorf("%d sessions stored, want the registration's only", n)
	}
}

// The same burst spread over 100 usernames from one client is held to the
// client's own budget.
func TestAttackConcurrentGuessesFromOneClient(t *testing.T) {
	e := newPatientEnv(t, fromProxy)
	codes := burst(100, func(i int) (*response, error) {
		return e.clientAt("198.51.100.7").call(loginQuery, map[string]any{"u": fmt.Sprint("name", i), "p": "a wrong password"})
	})
	if codes["UNAUTHENTICATED"] > auth.DefaultThrottle.IPLimit || codes["UNAUTHENTICATED"]+codes["TOO_MANY_REQUESTS"] != 100 {
		t.Errorf("100 concurrent guesses from one client answered %v: want at most %d checked, the rest TOO_MANY_REQUESTS",
			codes, auth.DefaultThrottle.IPLimit)
	}
	// Another client is not held back.
	if r := e.clientAt("198.51.100.8").do(t, loginQuery, map[string]any{"u": "name1", "p": "a wrong password"}); r.code(t) != "UNAUTHENTICATED" {
		t.Errorf("another client: %q, want UNAUTHENTICATED", r.code(t))
	}
}

// register costs a bcrypt hash and says whether a name is taken: it is
// held to a budget per client, concurrent bursts included, and a client
// locked out of logins cannot probe names through it.
func TestAttackRegisterIsThrottled(t *testing.T) {
	e := newPatientEnv(t, fromProxy)
	limit := auth.DefaultThrottle.RegisterLimit
	e.clientAt("203.0.113.4").register(t, "taken", pw)
	codes := burst(3*limit, func(i int) (*response, error) {
		return e.clientAt("203.0.113.5").call(registerQuery, map[string]any{"u": fmt.Sprint("newbie", i), "p": pw})
	})
	if codes[""] != limit || codes["TOO_MANY_REQUESTS"] != 2*limit {
		t.Errorf("%d concurrent registrations from one client answered %v: want %d created, the rest TOO_MANY_REQUESTS", 3*limit, codes, limit)
	}
	if n, _ := e.store.CountUsers(context.Background()); n != int64(limit)+1 {
		t.Errorf("%d users stored, want %d", n, limit+1)
	}
	// Locked out of logins: no registrations either, not even of a free name.
	for i := range auth.DefaultThrottle.IPLimit {
		e.clientAt("203.0.113.6").do(t, loginQuery, map[string]any{"u": fmt.Sprint("nobody", i), "p": "a wrong password"})
	}
	if got := e.clientAt("203.0.113.6").do(t, registerQuery, map[string]any{"u": "taken", "p": pw}).code(t); got != "TOO_MANY_REQUESTS" {
		t.Errorf("register of a taken name from a locked-out client: %q, want TOO_MANY_REQUESTS", got)
	}
	if got := e.clientAt("203.0.113.7").do(t, registerQuery, map[string]any{"u": "taken", "p": pw}).code(t); got != "BAD_USER_INPUT" {
		t.Errorf("register of a taken name from a fresh client: %q, want BAD_USER_INPUT", got)
	}
}

// A password change wins every race: logins that checked the old password
// and finish around a changePassword never leave a live session behind,
// the old password stops working and the new one works, round after round.
func TestAttackPasswordChangeWinsRaces(t *testing.T) {
	e := newPatientEnv(t, func(c *auth.Config, _ *graph.Options) {
		c.Throttle = auth.DefaultThrottle
		c.Throttle.UserLimit = 1000 // the racing logins are the point, not guesses
	})
	owner := e.client()
	owner.register(t, "racer", "password 0 of the racer")
	const rounds, logins = 20, 8
	for round := range rounds {
		old, next := fmt.Sprintf("password %d of the racer", round), fmt.Sprintf("password %d of the racer", round+1)
		var mu sync.Mutex
		var tokens []string
		var changed *client
		var wg sync.WaitGroup
		for i := range logins + 1 {
			wg.Go(func() {
				if i == logins {
					var out struct{ ChangePassword authPayload }
					if err := owner.callInto(`mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) { token } }`,
						map[string]any{"c": old, "n": next}, &out); err != nil {
						t.Errorf("round %d: changePassword: %v", round, err)
						return
					}
					changed = &client{e: e, http: owner.http, token: out.ChangePassword.Token, header: owner.header}
					return
				}
				var out struct{ Login authPayload }
				if err := e.client().callInto(loginQuery, map[string]any{"u": "racer", "p": old}, &out); err == nil {
					mu.Lock()
					tokens = append(tokens, out.Login.Token)
					mu.Unlock()
				} else if !strings.Contains(err.Error(), "UNAUTHENTICATED") {
					t.Errorf("round %d: a racing login: %v", round, err)
				}
			})
		}
		wg.Wait()
		if changed == nil {
			t.Fatalf("round %d: the password did not change", round)
		}
		owner = changed
		for _, tok := range tokens {
			c := e.client()
			c.token = tok
			if who := c.me(t); who != "" {
				t.Errorf("round %d: a login with the old password left a live session after the change", round)
			}
		}
		if got := login(t, e, "racer", old).code(t); got != "UNAUTHENTICATED" {
			t.Fatalf("round %d: the old password after the change: %q, want UNAUTHENTICATED", round, got)
		}
		if owner.me(t) != "racer" {
			t.Fatalf("round %d: the token changePassword returned does not sign in", round)
		}
	}
	e.client().login(t, "racer", fmt.Sprintf("password %d of the racer", rounds))
}

// One user cannot pile up sessions: past MAX_SESSIONS_PER_USER, each login
// ends the user's oldest sessions.
func TestAttackSessionPileUpIsCapped(t *testing.T) {
	t.Parallel()
	const limit = 5
	e := newEnv(t, func(c *auth.Config, _ *graph.Options) { c.MaxSessions = limit })
	var tokens []string
	tokens = append(tokens, e.client().register(t, "hoarder", pw).Token)
	for range limit + 3 {
		tokens = append(tokens, e.client().login(t, "hoarder", pw).Token)
	}
	if n := e.sessionCount(); n != limit {
		t.Errorf("%d sessions stored, want %d", n, limit)
	}
	for i, tok := range tokens {
		c := e.client()
		c.token = tok
		alive := c.me(t) != ""
		if want := i >= len(tokens)-limit; alive != want {
			t.Errorf("session %d of %d: alive %v, want %v (the oldest end first)", i+1, len(tokens), alive, want)
		}
	}
}
