package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gatehouse/internal/faultproxy"
)

// faultRequests are requests that each need the database: a caller's
// session, a login, a registration and a data update.
func faultRequests(token string, i int) []struct{ token, query string } {
	return []struct{ token, query string }{
		{token, `{ me { username } }`},
		{token, `{ session { id data } }`},
		{token, `mutation { updateSessionData(data: {n: 1}) { id } }`},
		{"", `mutation { login(username: "dora", password: "correct horse") { token } }`},
		{"", fmt.Sprintf(`mutation { register(username: "new%d", password: "correct horse") { token } }`, i)},
	}
}

// failAll sends every fault request for each token at once, and checks that
// each answers INTERNAL_SERVER_ERROR within limit.
func failAll(t *testing.T, c *http.Client, url string, tokens []string, round int, limit time.Duration) {
	t.Helper()
	var wg sync.WaitGroup
	for i, tok := range tokens {
		for _, r := range faultRequests(tok, round*100+i) {
			wg.Go(func() {
				start := time.Now()
				res, err := post(c, url, r.token, r.query, nil)
				took := time.Since(start)
				switch {
				case err != nil:
					t.Errorf("%s: %v after %v", r.query, err, took)
				case res.code() != "INTERNAL_SERVER_ERROR" || res.Errors[0].Message != "internal server error":
					t.Errorf("%s: got %+v, want a masked INTERNAL_SERVER_ERROR", r.query, res)
				case took > limit:
					t.Errorf("%s: answered after %v, want within %v", r.query, took, limit)
				}
			})
		}
	}
	wg.Wait()
}

// failMargin is how much longer than its failing database operation's
// DB_TIMEOUT a request may take to answer: the rest is CPU time, and on a
// shared two-core machine with two busy loops beside these race-built tests
// a burst of 20 to 30 failing requests spent up to 4.1 s in it (a
// registration whose bcrypt hash waited for a core). It allows twice that.
// The failures the tests guard against (waiting for the driver's 30 s server
// selection, waiting out a slow database, queueing behind other requests'
// deadlines) take at least 20 DB_TIMEOUTs, which the tests keep far past
// DB_TIMEOUT + failMargin.
const failMargin = 8 * time.Second

// readyz returns the status of /readyz (0 if there is no answer) and how
// long it took.
func readyz(t *testing.T, c *http.Client, url string) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	res, err := c.Get(url + "/readyz")
	if err != nil {
		t.Errorf("readyz: %v", err)
		return 0, time.Since(start)
	}
	res.Body.Close()
	return res.StatusCode, time.Since(start)
}

// goroutinesBackTo polls until the process runs at most limit goroutines
// (less extra, for goroutines the test itself accounts for) and returns the
// last count.
func goroutinesBackTo(t *testing.T, c *http.Client, limit int, extra func() int) int {
	t.Helper()
	var n int
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.CloseIdleConnections()
		n = runtime.NumGoroutine() - extra()
		if n <= limit || time.Now().After(deadline) {
			return n
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// goroutineBaseline returns the goroutine count (less extra) once it stops
// falling: idle connections closed, short-lived goroutines ended.
func goroutineBaseline(c *http.Client, extra func() int) int {
	c.CloseIdleConnections()
	low, still := runtime.NumGoroutine()-extra(), 0
	for i := 0; i < 100 && still < 5; i++ {
		time.Sleep(20 * time.Millisecond)
		if n := runtime.NumGoroutine() - extra(); n < low {
			low, still = n, 0
		} else {
			still++
		}
	}
	return low
}

// noExtra is for goroutinesBackTo when nothing needs subtracting.
func noExtra() int { return 0 }

// goroutineSlack is how many goroutines above the baseline the tests
// tolerate: a few come and go whatever the load (the driver's monitor in the
// middle of a check, server connections closing, the pool's connection
// makers). Each round of failing requests sends 20 or more, so a leak of one
// goroutine per request, or even per few requests, exceeds it within the
// rounds.
const goroutineSlack = 25

// The database process dies (SIGKILL) under a running server and later
// comes back on the same files. While it is down every request that needs it
// fails fast and masked, /readyz says 503, and nothing leaks; once it is back
// the same server process serves again, with every earlier session valid.
//
// Not parallel: it counts the goroutines of the whole test process.
func TestDatabaseGoesAwayAndComesBack(t *testing.T) {
	dbEnv := map[string]string{"DATA_DIR": t.TempDir()}
	db := startProc(t, dbEnv, "db")

	const dbTimeout = time.Second
	env := testEnv(t)
	env["MONGODB_URI"], env["TOTP_KEY"] = db.url, testTOTPKey
	env["DB_TIMEOUT"] = dbTimeout.String()
	g := start(t, env)
	c := &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second}
	defer c.CloseIdleConnections()

	var tokens []string
	for i, name := range []string{"dora", "dan", "dee", "del", "dot", "dov"} {
		r, err := post(c, g.url, "", registerMutation, map[string]any{"u": name, "p": password, "d": map[string]any{"i": i}})
		if err != nil || r.token("register") == "" {
			t.Fatalf("register %s: %+v, %v", name, r, err)
		}
		tokens = append(tokens, r.token("register"))
	}
	if code, _ := readyz(t, c, g.url); code != http.StatusOK {
		t.Fatalf("readyz with the database up: %d", code)
	}
	base := goroutineBaseline(c, noExtra)

	db.signal(syscall.SIGKILL)
	db.wait(10 * time.Second)

	// The request's only failing operation is bounded by DB_TIMEOUT; the
	// rest is CPU time (see failMargin). The failure it guards against is
	// a wait for the driver's default 30 s server selection.
	limit := dbTimeout + failMargin
	for round := range 3 {
		var wg sync.WaitGroup
		wg.Go(func() {
			if code, took := readyz(t, c, g.url); code != http.StatusServiceUnavailable || took > limit {
				t.Errorf("readyz with the database down: %d after %v, want 503 within %v", code, took, limit)
			}
		})
		failAll(t, c, g.url, tokens, round, limit)
		wg.Wait()
		if n := goroutinesBackTo(t, c, base+goroutineSlack, noExtra); n > base+goroutineSlack {
			t.Errorf("round %d with the database down: %d goroutines, %d before it went (a leak)", round, n, base)
		}
	}
	if t.Failed() {
		t.Logf("server log:\n%s", g.out)
		return
	}

	startProc(t, dbEnv, "db") // back, on the same files and socket
	waitFor(t, 30*time.Second, "readyz is 200 again", func() bool {
		code, _ := readyz(t, c, g.url)
		return code == http.StatusOK
	})
	for i, tok := range tokens {
		r, err := post(c, g.url, tok, `{ session { data } }`, nil)
		if err != nil || r.field("session") == nil || fmt.Sprint(r.field("session")["data"]) != fmt.Sprint(map[string]any{"i": float64(i)}) {
			t.Errorf("session %d after the database came back: %+v, %v", i, r, err)
		}
	}
	if r, err := post(c, g.url, "", `mutation { login(username: "dora", password: "correct horse") { token } }`, nil); err != nil || r.token("login") == "" {
		t.Errorf("login after the database came back: %+v, %v", r, err)
	}
	if n := goroutinesBackTo(t, c, base+goroutineSlack, noExtra); n > base+goroutineSlack {
		t.Errorf("after recovery: %d goroutines, %d before the outage", n, base)
	}
	if strings.Contains(g.out.String(), "panic") {
		t.Errorf("the server log mentions a panic:\n%s", g.out)
	}
	select {
	case err := <-g.done:
		t.Fatalf("the server stopped during the outage: %v", err)
	default:
	}
}

// With the database answering slower than DB_TIMEOUT (a delaying proxy in
// front of it), requests fail at the deadline instead of queueing, and
// neither goroutines nor database connections pile up. When the database is
// fast again the server recovers by itself.
//
// Not parallel: it counts the goroutines of the whole test process.
func TestSlowDatabase(t *testing.T) {
	dir := t.TempDir()
	startProc(t, map[string]string{"DATA_DIR": dir}, "db")
	proxy, err := faultproxy.Start("unix", filepath.Join(dir, "db.sock"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })

	// Long enough that the database, up and fast, answers within it on a
	// busy machine too (500 ms did not, beside two busy loops).
	const dbTimeout = 2 * time.Second
	env := testEnv(t)
	env["MONGODB_URI"], env["TOTP_KEY"] = "mongodb://"+proxy.Addr()+"/", testTOTPKey
	env["DB_TIMEOUT"] = dbTimeout.String()
	g := start(t, env)
	c := &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second}
	defer c.CloseIdleConnections()

	var tokens []string
	for i := range 4 {
		r, err := post(c, g.url, "", registerMutation, map[string]any{"u": fmt.Sprint("dora", i), "p": password})
		if err != nil || r.token("register") == "" {
			t.Fatalf("register: %+v, %v", r, err)
		}
		tokens = append(tokens, r.token("register"))
	}
	r, err := post(c, g.url, "", registerMutation, map[string]any{"u": "dora", "p": password})
	if err != nil || r.token("register") == "" {
		t.Fatalf("register dora: %+v, %v", r, err)
	}
	// The proxy's goroutines (three per connection) are the test's, not the
	// server's.
	proxyGoroutines := func() int { return 1 + 3*proxy.Stats().Open }
	base := goroutineBaseline(c, proxyGoroutines)
	before := proxy.Stats()
	proxy.ResetPeak()

	// Waiting out the delay, or queueing behind the other requests'
	// deadlines, takes far longer than the limit (see failMargin).
	proxy.SetDelay(20 * dbTimeout)
	limit := dbTimeout + failMargin
	const rounds = 4
	perRound := len(tokens) * len(faultRequests("", 0))
	for round := range rounds {
		failAll(t, c, g.url, tokens, round, limit)
		if n := goroutinesBackTo(t, c, base+goroutineSlack, proxyGoroutines); n > base+goroutineSlack {
			t.Errorf("round %d with a slow database: %d goroutines, %d before (a pile-up)", round, n, base)
		}
	}
	// Connections: a timed-out operation may cost its connection, but the
	// pool must not keep one per failed request open.
	st := proxy.Stats()
	t.Logf("database connections: %d before, peak %d, %d open after %d slow requests; %d opened in all",
		before.Open, st.Peak, st.Open, rounds*perRound, st.Total)
	if st.Peak > perRound+before.Open {
		t.Errorf("peak of %d open database connections for %d concurrent requests (%d open before)", st.Peak, perRound, before.Open)
	}

	// Every session answers again, as its user. A request may still fail
	// while the server reconnects, on a busy machine even after the first
	// has answered: each session is asked until it answers.
	proxy.SetDelay(0)
	answers := make([]*gqlResult, len(tokens))
	waitFor(t, 30*time.Second, "every session is answered again", func() bool {
		for i, tok := range tokens {
			if answers[i] != nil {
				continue
			}
			if r, err := post(c, g.url, tok, `{ me { username } }`, nil); err == nil && len(r.Errors) == 0 {
				answers[i] = r
			}
		}
		return !slices.Contains(answers, nil)
	})
	for i, r := range answers {
		if r.field("me")["username"] != fmt.Sprint("dora", i) {
			t.Errorf("session %d after the database is fast again: %+v", i, r)
		}
	}
	if strings.Contains(g.out.String(), "panic") {
		t.Errorf("the server log mentions a panic:\n%s", g.out)
	}
	if t.Failed() {
		t.Logf("server log:\n%s", g.out)
	}
}
