package main

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gatehouse/graph/model"
	"gatehouse/internal/testlog"
	"gatehouse/storage"
)

// startDB runs `gatehouse db` in-process until the test ends and returns
// the URI of its socket.
func startDB(t *testing.T) string {
	t.Helper()
	env := testEnv(t)
	out := &testlog.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"gatehouse", "db"}, func(k string) string { return env[k] }, strings.NewReader(""), out)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gatehouse db: %v", err)
		}
	})
	waitFor(t, 30*time.Second, "gatehouse db listens", func() bool {
		select {
		case err := <-done:
			t.Fatalf("gatehouse db returned %v; output:\n%s", err, out)
		default:
		}
		return strings.Contains(out.String(), "embedded database listening")
	})
	m := regexp.MustCompile(`uri=(mongodb://\S+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no URI in the output of gatehouse db:\n%s", out)
	}
	return m[1]
}

// openShared opens database name of the shared server at uri for the test
// to look into.
func openShared(t *testing.T, uri, name string) *storage.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := storage.Open(ctx, uri, name, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	return st
}

// me returns the username the token signs in as on g, or "" for none.
func me(t *testing.T, g *gatehouse, token string) string {
	t.Helper()
	r, err := post(http.DefaultClient, g.url, token, `{ me { username } }`, nil)
	if err != nil || len(r.Errors) > 0 {
		t.Fatalf("me: %+v, %v", r, err)
	}
	name, _ := r.field("me")["username"].(string)
	return name
}

// signIn runs a register or login mutation on g and returns the token and
// the session's expiry.
func signIn(t *testing.T, g *gatehouse, op, user string) (string, time.Time) {
	t.Helper()
	query := map[string]string{"register": registerMutation, "login": loginMutation}[op]
	r, err := post(http.DefaultClient, g.url, "", query, map[string]any{"u": user, "p": password})
	if err != nil || r.token(op) == "" {
		t.Fatalf("%s %s: %+v, %v", op, user, r, err)
	}
	var p model.AuthPayload
	if err := r.into(op, &p); err != nil || p.Session == nil {
		t.Fatalf("%s %s: payload %+v, %v", op, user, r.Data[op], err)
	}
	return p.Token, p.Session.ExpiresAt
}

var swept = regexp.MustCompile(`level=(\w+) msg="swept expired sessions" count=(\d+)`)

// sweeps returns how many sweeps the instance logged and how many sessions
// they deleted in all.
func (g *gatehouse) sweeps() (passes int, deleted int64) {
	for _, m := range swept.FindAllStringSubmatch(g.out.String(), -1) {
		n, _ := strconv.ParseInt(m[2], 10, 64)
		passes, deleted = passes+1, deleted+n
	}
	return passes, deleted
}

// Three instances on one database (served by `gatehouse db`) behave as one
// server: a session created on any is honoured on all; deleted or expired
// on one, it is refused by the others at once (their session caches are
// off); every instance's sweeper runs, and each expired session is
// deleted exactly once, without errors.
// Throttling counters live in the database too: failures spread over the
// instances add up.
func TestInstancesShareOneDatabase(t *testing.T) {
	t.Parallel()
	uri := startDB(t)
	env := testEnv(t)
	env["MONGODB_URI"], env["TOTP_KEY"] = uri, testTOTPKey
	// Sessions must outlive each subtest's requests, on a busy machine too
	// (with 2 s, beside two busy loops, the first subtest's sessions
	// expired before its last request); the expiry subtest waits it out.
	env["SESSION_TTL"], env["SESSION_MAX_AGE"] = "15s", "1h"
	env["SWEEP_INTERVAL"], env["LOG_LEVEL"] = "100ms", "debug"
	a, b, c := start(t, env), start(t, env), start(t, env)
	all := []*gatehouse{a, b, c}
	if !strings.Contains(a.out.String(), "MONGODB_URI") {
		t.Errorf("startup log does not say it uses MONGODB_URI:\n%s", a.out)
	}
	// Other instances write the sessions: none may cache them.
	if !strings.Contains(a.out.String(), "session cache: off") {
		t.Errorf("startup log does not say the session cache is off:\n%s", a.out)
	}

	t.Run("created on one, honoured on the others", func(t *testing.T) {
		reg, _ := signIn(t, a, "register", "sue")
		login, _ := signIn(t, c, "login", "sue")
		for i, g := range all {
			if got := me(t, g, reg); got != "sue" {
				t.Errorf("instance %d: a's session signs in as %q", i, got)
			}
			if got := me(t, g, login); got != "sue" {
				t.Errorf("instance %d: c's session signs in as %q", i, got)
			}
		}
	})

	t.Run("deleted on one, refused on the others at once", func(t *testing.T) {
		tok, _ := signIn(t, a, "login", "sue")
		for _, g := range all {
			me(t, g, tok) // every instance has used it
		}
		if r, err := post(http.DefaultClient, b.url, tok, `mutation { deleteSession }`, nil); err != nil || r.Data["deleteSession"] != true {
			t.Fatalf("logout on b: %+v, %v", r, err)
		}
		for i, g := range all {
			if got := me(t, g, tok); got != "" {
				t.Errorf("instance %d honours a session b ended, as %q", i, got)
			}
		}
	})

	t.Run("expired on one, refused on the others at once", func(t *testing.T) {
		tok, expires := signIn(t, c, "login", "sue")
		for _, g := range all {
			me(t, g, tok)
		}
		time.Sleep(time.Until(expires)) // the clock has to pass it; nothing to poll
		for i, g := range all {
			if got := me(t, g, tok); got != "" {
				t.Errorf("instance %d honours an expired session as %q", i, got)
			}
		}
	})

	t.Run("failed logins on all instances share one throttle", func(t *testing.T) {
		for i := range 5 { // THROTTLE_USER_LIMIT, spread over the instances
			r, err := post(http.DefaultClient, all[i%3].url, "", `mutation { login(username: "sue", password: "not her password") { token } }`, nil)
			if err != nil || len(r.Errors) != 1 || r.Errors[0].Extensions["code"] != "UNAUTHENTICATED" {
				t.Fatalf("guess %d: %+v, %v", i, r, err)
			}
		}
		for i, g := range all {
			r, err := post(http.DefaultClient, g.url, "", `mutation { login(username: "sue", password: "correct horse") { token } }`, nil)
			if err != nil || len(r.Errors) != 1 || r.Errors[0].Extensions["code"] != "TOO_MANY_REQUESTS" {
				t.Errorf("instance %d after 5 failures spread over three: %+v, %v; want TOO_MANY_REQUESTS", i, r, err)
			}
		}
	})

	t.Run("every instance sweeps, each expired session deleted once", func(t *testing.T) {
		// Three more instances on a database of their own, so that every
		// session there ends by a sweep and the counts add up.
		env := maps.Clone(env)
		env["MONGODB_DATABASE"] = "sweep"
		env["SESSION_TTL"] = "2s" // nothing here needs a session alive
		sweepers := []*gatehouse{start(t, env), start(t, env), start(t, env)}
		st := openShared(t, uri, "sweep")
		signIn(t, sweepers[0], "register", "sam")
		created := 1
		for _, g := range sweepers {
			for range 2 {
				signIn(t, g, "login", "sam")
				created++
			}
		}
		waitFor(t, 15*time.Second, "the sweepers delete every session", func() bool {
			n, err := st.CountSessions(context.Background())
			return err == nil && n == 0
		})
		// A sweep may have deleted the last sessions without having logged
		// it yet (its pass records an event per session, and log lines are
		// batched): wait for the reports to come in, then for every
		// sweeper's next pass, after which no report is pending.
		waitFor(t, 10*time.Second, "the sweepers report every deletion", func() bool {
			var total int64
			for _, g := range sweepers {
				_, deleted := g.sweeps()
				total += deleted
			}
			return total >= int64(created)
		})
		before := make([]int, len(sweepers))
		for i, g := range sweepers {
			before[i], _ = g.sweeps()
		}
		waitFor(t, 10*time.Second, "every sweeper sweeps again", func() bool {
			for i, g := range sweepers {
				if n, _ := g.sweeps(); n <= before[i] {
					return false
				}
			}
			return true
		})
		var total int64
		var report []string
		for i, g := range sweepers {
			passes, deleted := g.sweeps()
			if passes < 5 {
				t.Errorf("instance %d swept %d times in over 2 seconds, every 100ms", i, passes)
			}
			total += deleted
			report = append(report, fmt.Sprintf("instance %d: %d passes, %d deleted", i, passes, deleted))
		}
		if total != int64(created) {
			t.Errorf("the sweepers report %d deletions of %d expired sessions (%s)", total, created, strings.Join(report, "; "))
		}
		for i, g := range append(all, sweepers...) {
			if strings.Contains(g.out.String(), "sweep expired sessions failed") {
				t.Errorf("instance %d: a sweep failed:\n%s", i, g.out)
			}
		}
	})
}
