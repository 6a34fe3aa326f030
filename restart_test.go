package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gatehouse/auth"
	"gatehouse/internal/embedded"
	"gatehouse/storage"
)

// heldRequest is an HTTP request the server has started handling and waits
// on: its headers asked for "Expect: 100-continue", the server answered
// "100 Continue" (the handler is reading the body), and the body is not sent
// yet. It proves a request is in flight at a given moment.
type heldRequest struct {
	conn net.Conn
	r    *bufio.Reader
	body string
}

func holdRequest(t *testing.T, url, query string) *heldRequest {
	t.Helper()
	addr := strings.TrimPrefix(url, "http://")
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	body, _ := json.Marshal(map[string]any{"query": query})
	h := &heldRequest{conn: conn, r: bufio.NewReader(conn), body: string(body)}
	fmt.Fprintf(conn, "POST /query HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", addr, len(body))
	res, err := http.ReadResponse(h.r, nil)
	if err != nil || res.StatusCode != http.StatusContinue {
		t.Fatalf("held request: want 100 Continue, got %v, %v", res, err)
	}
	return h
}

// finish sends the body and returns the final answer.
func (h *heldRequest) finish() (*gqlResult, error) {
	if _, err := io.WriteString(h.conn, h.body); err != nil {
		return nil, err
	}
	res, err := http.ReadResponse(h.r, nil)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	out := &gqlResult{Status: res.StatusCode}
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		return nil, fmt.Errorf("status %d: %w", res.StatusCode, err)
	}
	return out, nil
}

// procEnv is the environment of a gatehouse child process on its own data
// directory.
func procEnv(t *testing.T) map[string]string {
	return map[string]string{
		"HOST": "127.0.0.1", "PORT": "0", "DATA_DIR": t.TempDir(), "BCRYPT_COST": "4",
		"COOKIE_SECURE": "false", "SHUTDOWN_TIMEOUT": "5s", "SWEEP_INTERVAL": "100ms",
	}
}

// freshClient makes one request per connection, so that a request refused
// at shutdown is told apart from a reused connection the server closed.
func freshClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
}

// SIGTERM in the middle of a stream of requests: the request in flight
// completes, new connections are refused, the drain ends within
// SHUTDOWN_TIMEOUT and the process exits 0. Restarted on the same DATA_DIR, every user and every
// session the clients were given is there, and an expired session is gone.
func TestSIGTERMDrainsAndRestartKeepsSessions(t *testing.T) {
	t.Parallel()
	env := procEnv(t)
	const shutdownTimeout = 5 * time.Second // SHUTDOWN_TIMEOUT in procEnv
	// That the drain finished within SHUTDOWN_TIMEOUT, the exit code (0
	// only if it did) and the log's "stopped" say. Then the process closes
	// the database and exits, which takes time of its own: beside two busy
	// loops it exited 5.46 s after SIGTERM, with exit code 0.
	const exitMargin = 5 * time.Second
	p := startProc(t, env)
	c := freshClient()
	users := []string{"tess", "theo", "tina"}
	var (
		mu     sync.Mutex
		tokens []string // every session the server gave a client
	)
	for _, u := range users {
		r, err := post(c, p.url, "", registerMutation, map[string]any{"u": u, "p": password})
		if err != nil || r.token("register") == "" {
			t.Fatalf("register %s: %+v, %v", u, r, err)
		}
		tokens = append(tokens, r.token("register"))
	}

	// The stream: each worker logs in, reads and writes its session, and
	// again, until told to stop. Every answer must be complete and
	// correct; a request may only fail by getting no answer at all.
	var (
		stop            = make(chan struct{})
		wg              sync.WaitGroup
		answered        int
		refused         int
		logins          int
		loginsSucceeded = make(chan struct{}, 100)
	)
	for w := range 4 {
		wg.Go(func() {
			for i := 0; i < 500; i++ {
				select {
				case <-stop:
					return
				default:
				}
				user := users[w%len(users)]
				r, err := post(c, p.url, "", loginMutation, map[string]any{"u": user, "p": password, "d": map[string]any{"w": w, "i": i}})
				if errors.Is(err, errBrokenAnswer) {
					t.Errorf("login: %v", err)
				}
				if err != nil {
					mu.Lock()
					refused++
					mu.Unlock()
					continue
				}
				tok := r.token("login")
				mu.Lock()
				answered++
				if tok == "" {
					t.Errorf("login answered without a session: %+v", r)
				} else {
					tokens = append(tokens, tok)
					logins++
				}
				mu.Unlock()
				if tok == "" {
					continue
				}
				notify(loginsSucceeded)
				for _, q := range []string{`{ me { username } }`, `mutation { updateSessionData(data: {seen: true}) { id } }`} {
					r, err := post(c, p.url, tok, q, nil)
					if errors.Is(err, errBrokenAnswer) {
						t.Errorf("%s: %v", q, err)
					}
					mu.Lock()
					if err != nil {
						refused++
					} else {
						answered++
						if len(r.Errors) > 0 || r.Status != http.StatusOK {
							t.Errorf("%s: %d %+v", q, r.Status, r.Errors)
						}
					}
					mu.Unlock()
				}
			}
		})
	}
	for range 12 { // the stream is flowing
		select {
		case <-loginsSucceeded:
		case <-time.After(30 * time.Second):
			t.Fatal("the stream of logins does not flow")
		}
	}

	held := holdRequest(t, p.url, `mutation { login(username: "tess", password: "correct horse") { token } }`)
	sigterm := time.Now()
	p.signal(syscall.SIGTERM)
	waitFor(t, 5*time.Second, "new connections are refused", func() bool {
		conn, err := net.DialTimeout("tcp", strings.TrimPrefix(p.url, "http://"), time.Second)
		if err == nil {
			conn.Close()
		}
		return err != nil
	})
	r, err := held.finish()
	if err != nil || r.Status != http.StatusOK || r.token("login") == "" {
		t.Fatalf("the request in flight at SIGTERM: %+v, %v", r, err)
	}
	mu.Lock()
	tokens = append(tokens, r.token("login"))
	mu.Unlock()

	state := p.wait(shutdownTimeout + exitMargin)
	exited := time.Since(sigterm)
	if exited > shutdownTimeout+exitMargin {
		t.Errorf("exited %v after SIGTERM, want within SHUTDOWN_TIMEOUT %v and %v to stop", exited, shutdownTimeout, exitMargin)
	}
	if state.ExitCode() != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0; output:\n%s", state.ExitCode(), p.out)
	}
	if out := p.out.String(); !strings.Contains(out, "shutting down") || !strings.Contains(out, "msg=stopped") {
		t.Errorf("no orderly shutdown in the log:\n%s", out)
	}
	close(stop)
	wg.Wait()
	t.Logf("stream: %d answered (%d logins), %d refused; exited %v after SIGTERM", answered, logins, refused, exited)

	// An expired session, written while the server is down, as an earlier
	// run would have left it.
	expired := seedExpiredSession(t, env["DATA_DIR"], "theo")

	p = startProc(t, env)
	waitFor(t, 10*time.Second, "the sweeper deletes the expired session", func() bool {
		return regexp.MustCompile(`msg="swept expired sessions" count=1\b`).MatchString(p.out.String())
	})
	c2 := &http.Client{Timeout: 30 * time.Second}
	defer c2.CloseIdleConnections()
	for i, tok := range tokens {
		r, err := post(c2, p.url, tok, `{ me { username } }`, nil)
		if err != nil || r.field("me") == nil {
			t.Errorf("session %d of %d after restart: %+v, %v", i, len(tokens), r, err)
		}
	}
	if r, err := post(c2, p.url, expired, `{ me { username } }`, nil); err != nil || r.Data["me"] != nil {
		t.Errorf("the expired session after restart: %+v, %v", r, err)
	}
	for _, u := range users {
		if r, err := post(c2, p.url, "", loginMutation, map[string]any{"u": u, "p": password}); err != nil || r.token("login") == "" {
			t.Errorf("login %s after restart: %+v, %v", u, r, err)
		}
	}
	p.signal(syscall.SIGTERM)
	if state := p.wait(shutdownTimeout + exitMargin); state.ExitCode() != 0 {
		t.Errorf("second run: exit code %d", state.ExitCode())
	}

	// Nothing else is stored: exactly the sessions clients were given,
	// and the logins just made. A request dropped half-way would have left
	// a session no client holds.
	st, closeDB := openDataDir(t, env["DATA_DIR"])
	defer closeDB()
	n, err := st.CountSessions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(len(tokens) + len(users)); n != want {
		t.Errorf("%d sessions stored, want %d: the ones clients hold", n, want)
	}
	if _, err := st.SessionByID(context.Background(), expired[:strings.IndexByte(expired, '.')]); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the expired session is still stored: %v", err)
	}
}

// openDataDir opens the gatehouse database in dir with the embedded engine,
// while no server runs on it.
func openDataDir(t *testing.T, dir string) (*storage.Store, func()) {
	t.Helper()
	e, err := embedded.Start(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := storage.Open(ctx, e.URI(), "gatehouse", storage.Options{Dialer: e.Dialer()})
	if err != nil {
		e.Close()
		t.Fatal(err)
	}
	return st, func() {
		_ = st.Close(context.Background())
		e.Close()
	}
}

// seedExpiredSession stores a session of user that expired an hour ago and
// returns its token.
func seedExpiredSession(t *testing.T, dir, user string) string {
	t.Helper()
	st, closeDB := openDataDir(t, dir)
	defer closeDB()
	ctx := context.Background()
	u, err := st.UserByKey(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	tok, then := auth.NewToken(), time.Now().UTC().Add(-2*time.Hour).Truncate(time.Millisecond)
	_, err = st.CreateSession(ctx, &storage.Session{
		ID: tok.SessionID, SecretHash: tok.Digest(),
		UserID: u.ID, UserKey: u.Key, UserName: u.Name, UserCreatedAt: u.CreatedAt,
		CreatedAt: then, LastSeenAt: then, ExpiresAt: then.Add(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	return tok.String()
}

// notify signals on c without blocking.
func notify(c chan<- struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}
