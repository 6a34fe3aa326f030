package graph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"gatehouse/auth"
	"gatehouse/graph"
	"gatehouse/graph/model"
	"gatehouse/internal/dbtest"
	"gatehouse/storage"
)

// call is client.do for goroutines other than the test's: failures come
// back as errors instead of ending the test.
func (c *client) call(query string, vars map[string]any) (*response, error) {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, err := http.NewRequest(http.MethodPost, c.e.url+"/query", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range c.header {
		req.Header[k] = v
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	r := &response{status: res.StatusCode, header: res.Header}
	if err := json.Unmarshal(raw, r); err != nil {
		return nil, fmt.Errorf("status %d, body %q: %w", res.StatusCode, raw, err)
	}
	if len(r.Errors) > 0 {
		return r, fmt.Errorf("%s: errors %+v", firstLine(query), r.Errors)
	}
	return r, nil
}

// callInto is call that decodes the data into out.
func (c *client) callInto(query string, vars map[string]any, out any) error {
	r, err := c.call(query, vars)
	if err != nil {
		return err
	}
	return json.Unmarshal(r.Data, out)
}

// newPatientEnv is newEnv with database calls allowed a minute and the
// bcrypt queue three minutes instead of seconds. Under the race detector
// bcrypt and the embedded SQLite run some twenty times slower, bcrypt runs
// at low priority (beside two busy loops it gets a tenth of a core), and a
// burst of logins on two cores takes far longer than five seconds to
// drain; the tests using it are about what concurrent requests get, not
// how fast (the soak test and the benchmark measure latency).
func newPatientEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	uri, _ := dbtest.URI(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := storage.Open(ctx, uri, dbtest.Open(t).DatabaseName(), dbtest.Options(t, storage.Options{Timeout: time.Minute}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	// Logins wait their turn for bcrypt as long as it takes: overload
	// refusal has a test of its own (TestAttackLoginFloodIsBounded).
	return newEnvOn(t, st, append([]envOption{func(c *auth.Config, _ *graph.Options) { c.BcryptWait = 3 * time.Minute }}, opts...)...)
}

// 100 logins of one user at once each open their own session: distinct
// ids and tokens, each one valid, all of them stored.
//
// Not parallel: the burst saturates both cores for seconds, and the other
// tests' database calls keep their five-second deadline.
func TestConcurrentLoginsOfOneUser(t *testing.T) {
	e := newPatientEnv(t, func(c *auth.Config, _ *graph.Options) { c.MaxSessions = 1000 })
	e.client().register(t, "pat", pw)

	const n = 100
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		tokens = map[string]bool{}
		ids    = map[string]bool{}
	)
	for range n {
		wg.Go(func() {
			var out struct{ Login authPayload }
			if err := e.client().callInto(loginQuery, map[string]any{"u": "pat", "p": pw}, &out); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			tokens[out.Login.Token], ids[out.Login.Session.ID] = true, true
		})
	}
	wg.Wait()
	if len(tokens) != n || len(ids) != n {
		t.Fatalf("%d logins gave %d distinct tokens and %d distinct session ids", n, len(tokens), len(ids))
	}
	for tok := range tokens {
		wg.Go(func() {
			c := e.client()
			c.token = tok
			var out struct{ Me *model.User }
			if err := c.callInto(`{ me { username } }`, nil, &out); err != nil {
				t.Error(err)
			} else if out.Me == nil || out.Me.Username != "pat" {
				t.Errorf("a login's token signs in as %+v, want pat", out.Me)
			}
		})
	}
	wg.Wait()
	if got := e.sessionCount(); got != n+1 {
		t.Errorf("%d sessions stored, want %d (the registration's and one per login)", got, n+1)
	}
}

// A session being read while it is deleted: once deleteSession has
// returned, no read that starts afterwards returns the session, whether it
// asks for the current session with the deleted token or for the session by
// id from another of the user's sessions.
func TestDeleteSessionWhileReadingIt(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.client().register(t, "rob", pw)

	for round := range 10 {
		target, other := e.client(), e.client()
		id := target.login(t, "rob", pw).Session.ID
		other.login(t, "rob", pw)

		type read struct {
			start time.Time
			found bool
		}
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			reads   []read
			deleted time.Time // when deleteSession returned; zero before
			started = make(chan struct{}, 100)
		)
		readers := []struct {
			c     *client
			query string
			vars  map[string]any
		}{
			{target, `{ session { id } }`, nil},
			{other, `query($id: ID) { session(id: $id) { id } }`, map[string]any{"id": id}},
		}
		for i := range 4 {
			r := readers[i%2]
			wg.Go(func() {
				after := 0 // reads started after the delete returned
				for i := 0; i < 500 && after < 3; i++ {
					mu.Lock()
					if !deleted.IsZero() {
						after++
					}
					mu.Unlock()
					start := time.Now()
					var out struct{ Session *model.Session }
					if err := r.c.callInto(r.query, r.vars, &out); err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					reads = append(reads, read{start, out.Session != nil})
					mu.Unlock()
					notify(started)
				}
			})
		}
		for range 4 { // the reads are under way
			<-started
		}
		deleter, query := other, `mutation($id: ID) { deleteSession(id: $id) }`
		if round%2 == 1 {
			deleter, query = target, `mutation { deleteSession }` // logout
		}
		var out struct{ DeleteSession bool }
		if err := deleter.callInto(query, map[string]any{"id": id}, &out); err != nil || !out.DeleteSession {
			t.Fatalf("round %d: deleteSession: %v, %v", round, out.DeleteSession, err)
		}
		mu.Lock()
		deleted = time.Now()
		mu.Unlock()
		wg.Wait()

		after := 0
		for _, r := range reads {
			if r.start.After(deleted) {
				after++
				if r.found {
					t.Errorf("round %d: a read that started %v after deleteSession returned found the session", round, r.start.Sub(deleted))
				}
			}
		}
		if after == 0 {
			t.Fatalf("round %d: no read started after the delete", round)
		}
	}
}

// notify signals on c without blocking.
func notify(c chan<- struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Concurrent updateSessionData calls on one session: each returns exactly
// what it wrote, and the session ends up holding one of the values whole,
// never a mix of two.
func TestConcurrentUpdateSessionData(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client()
	c.register(t, "uma", pw)

	value := func(i int) map[string]any {
		return map[string]any{
			"writer": float64(i), "pad": strings.Repeat(fmt.Sprint(i), 2000),
			"nested": map[string]any{"writer": float64(i), "list": []any{float64(i), fmt.Sprint(i)}},
		}
	}
	const n = 20
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var out struct{ UpdateSessionData sessionWithData }
			err := c.callInto(`mutation($d: JSONObject!) { updateSessionData(data: $d) { data } }`, map[string]any{"d": value(i)}, &out)
			if err != nil {
				t.Error(err)
			} else if diff := cmp.Diff(value(i), out.UpdateSessionData.Data); diff != "" {
				t.Errorf("writer %d got back another value (-wrote +got):\n%s", i, diff)
			}
		})
	}
	wg.Wait()

	var out struct{ Session sessionWithData }
	c.ok(t, `{ session { data } }`, nil, &out)
	w, ok := out.Session.Data["writer"].(float64)
	if !ok {
		t.Fatalf("data after the updates: %v", out.Session.Data)
	}
	if diff := cmp.Diff(value(int(w)), out.Session.Data); diff != "" {
		t.Errorf("data is not writer %v's value whole (-want +got):\n%s", w, diff)
	}
}

// Concurrent registrations of one username, in every spelling that
// normalises to it, create exactly one user: one succeeds, the others are
// told the name is taken, and only the winner's password signs in.
func TestConcurrentRegisterCreatesOneUser(t *testing.T) {
	t.Parallel()
	e := newPatientEnv(t, func(c *auth.Config, _ *graph.Options) {
		c.Throttle = auth.DefaultThrottle
		c.Throttle.UserLimit = 100 // 19 wrong passwords below are the point, not guesses
		c.Throttle.RegisterLimit = 100
	})
	spellings := []string{"quinn", "QUINN", "Quinn", " quinn ", "ｑｕｉｎｎ"}
	const n = 20
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []int
	)
	password := func(i int) string { return fmt.Sprintf("password number %d", i) }
	for i := range n {
		wg.Go(func() {
			r, err := e.client().call(registerQuery, map[string]any{"u": spellings[i%len(spellings)], "p": password(i)})
			if err == nil {
				mu.Lock()
				winners = append(winners, i)
				mu.Unlock()
				return
			}
			if r == nil || len(r.Errors) != 1 || r.Errors[0].Extensions["code"] != "BAD_USER_INPUT" || !strings.Contains(r.Errors[0].Message, "taken") {
				t.Errorf("a losing registration: %v", err)
			}
		})
	}
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("%d registrations of one name succeeded, want 1", len(winners))
	}
	for i := range n {
		r := e.client().do(t, loginQuery, map[string]any{"u": "quinn", "p": password(i)})
		if ok := len(r.Errors) == 0; ok != (i == winners[0]) {
			t.Errorf("login with registration %d's password: errors %+v (winner %d)", i, r.Errors, winners[0])
		}
	}
	if got := e.sessionCount(); got != 2 {
		t.Errorf("%d sessions stored, want 2 (the winner's registration and its login)", got)
	}
}
