package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// written is what a crash-test worker sent for one session: every data
// value, in order, and how many of them the server acknowledged.
type written struct {
	user   string
	values []string // canonical JSON; values[0] is the login's
	acked  int
}

// dataValue is a session data object large enough that a torn write would
// show: every field is derived from (w, n).
func dataValue(w, n int) map[string]any {
	return map[string]any{"w": w, "n": n, "pad": strings.Repeat(fmt.Sprintf("%d-%d;", w, n), 200), "list": []any{w, n, []any{n}}}
}

func canonical(v any) string {
	b, _ := json.Marshal(v)
	var m any
	_ = json.Unmarshal(b, &m)
	b, _ = json.Marshal(m)
	return string(b)
}

// SIGKILL during a stream of logins and data updates. On restart every
// login that answered has a valid session whose data is the last value
// acknowledged (or one sent after it), and every stored session holds one
// complete value that some client wrote: nothing half-written.
func TestSIGKILLLosesNoAcknowledgedWrite(t *testing.T) {
	t.Parallel()
	env := procEnv(t)
	p := startProc(t, env)
	c := freshClient()
	const workers = 4
	for w := range workers {
		if r, err := post(c, p.url, "", registerMutation, map[string]any{"u": fmt.Sprint("kim", w), "p": password}); err != nil || r.token("register") == "" {
			t.Fatalf("register: %+v, %v", r, err)
		}
	}

	var (
		mu       sync.Mutex
		sessions = map[string]*written{} // token → what was written
		sent     = map[string]bool{}     // every value sent, answered or not
		acked    = make(chan struct{}, 100)
		wg       sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			user := fmt.Sprint("kim", w)
			n := 0
			next := func() string {
				n++
				v := canonical(dataValue(w, n))
				mu.Lock()
				sent[v] = true
				mu.Unlock()
				return v
			}
			for range 80 { // at most 80 sessions per user: sessions(first: 100) lists them all
				v := next()
				r, err := post(c, p.url, "", loginMutation, map[string]any{"u": user, "p": password, "d": json.RawMessage(v)})
				if err != nil {
					return // killed
				}
				tok := r.token("login")
				if tok == "" {
					t.Errorf("login: %+v", r)
					return
				}
				s := &written{user: user, values: []string{v}, acked: 1}
				mu.Lock()
				sessions[tok] = s
				mu.Unlock()
				notify(acked)
				for range 3 {
					v := next()
					mu.Lock()
					s.values = append(s.values, v)
					mu.Unlock()
					r, err := post(c, p.url, tok, `mutation($d: JSONObject!) { updateSessionData(data: $d) { id } }`, map[string]any{"d": json.RawMessage(v)})
					if err != nil {
						return
					}
					if len(r.Errors) > 0 {
						t.Errorf("updateSessionData: %+v", r.Errors)
						return
					}
					mu.Lock()
					s.acked++
					mu.Unlock()
					notify(acked)
				}
			}
		})
	}
	for range 60 { // writes are flowing
		select {
		case <-acked:
		case <-time.After(30 * time.Second):
			t.Fatal("the stream of writes does not flow")
		}
	}
	p.signal(syscall.SIGKILL)
	if state := p.wait(10 * time.Second); state.ExitCode() != -1 {
		t.Errorf("after SIGKILL: %v", state)
	}
	wg.Wait()

	p = startProc(t, env)
	c2 := &http.Client{Timeout: 30 * time.Second}
	defer c2.CloseIdleConnections()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d sessions answered before the kill, %d values sent", len(sessions), len(sent))
	live := map[string]string{} // user → a token, for listing
	for tok, s := range sessions {
		r, err := post(c2, p.url, tok, `{ session { data user { username } } }`, nil)
		if err != nil || r.field("session") == nil {
			t.Errorf("a session whose login answered is gone after the crash: %+v, %v", r, err)
			continue
		}
		live[s.user] = tok
		got := canonical(r.field("session")["data"])
		// The last acknowledged value, or one sent after it that the
		// server stored without answering.
		if i := indexOf(s.values, got); i < s.acked-1 {
			t.Errorf("session data after the crash is %.60s…, want the last acknowledged value (%d of %d sent) or a later one", got, s.acked, len(s.values))
		}
	}
	for user, tok := range live {
		r, err := post(c2, p.url, tok, `{ sessions(first: 100) { id data user { username } createdAt expiresAt } }`, nil)
		if err != nil || len(r.Errors) > 0 {
			t.Fatalf("sessions of %s: %+v, %v", user, r, err)
		}
		list, _ := r.Data["sessions"].([]any)
		for _, s := range list {
			s := s.(map[string]any)
			d := canonical(s["data"])
			if d != "{}" && !sent[d] { // {}: the registration's session
				t.Errorf("session %v of %s holds data no client wrote: %.80s…", s["id"], user, d)
			}
		}
	}
}
