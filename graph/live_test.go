package graph_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"gatehouse/auth"
	"gatehouse/graph"
	"gatehouse/storage"
)

// wsMessage is a graphql-transport-ws message.
type wsMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// socket is a graphql-transport-ws client: what graphql-ws does in a
// browser, by hand.
type socket struct {
	t    *testing.T
	conn *websocket.Conn
	in   chan wsMessage
	done chan error // the read loop's end: how the server closed
}

// dialWS opens a WebSocket to e's /query with header, offering
// graphql-transport-ws; the HTTP response is returned on failure.
func (e *env) dialWS(t *testing.T, header http.Header) (*socket, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, res, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.url, "http")+"/query", &websocket.DialOptions{
		Subprotocols: []string{"graphql-transport-ws"}, HTTPHeader: header,
	})
	if err != nil {
		return nil, res, err
	}
	s := &socket{t: t, conn: conn, in: make(chan wsMessage, 64), done: make(chan error, 1)}
	go s.read()
	t.Cleanup(func() { _ = conn.CloseNow() })
	return s, res, nil
}

func (s *socket) read() {
	for {
		var m wsMessage
		if err := wsjson.Read(context.Background(), s.conn, &m); err != nil {
			close(s.in)
			s.done <- err
			return
		}
		if m.Type == "ping" {
			_ = s.send(wsMessage{Type: "pong"})
			continue
		}
		s.in <- m
	}
}

func (s *socket) send(m wsMessage) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return wsjson.Write(ctx, s.conn, m)
}

// next returns the next message, failing after within.
func (s *socket) next(within time.Duration) wsMessage {
	s.t.Helper()
	select {
	case m, ok := <-s.in:
		if !ok {
			s.t.Fatalf("the socket closed: %v", <-s.done)
		}
		return m
	case <-time.After(within):
		s.t.Fatalf("no message within %v", within)
	}
	return wsMessage{}
}

// closed waits up to within for the server to close the socket and
// returns its close status.
func (s *socket) closed(within time.Duration) websocket.StatusCode {
	s.t.Helper()
	deadline := time.After(within)
	for {
		select {
		case _, ok := <-s.in:
			if !ok {
				return websocket.CloseStatus(<-s.done)
			}
		case <-deadline:
			s.t.Fatalf("the socket is still open after %v", within)
		}
	}
}

// init sends connection_init with payload and expects connection_ack.
func (s *socket) init(payload map[string]any) {
	s.t.Helper()
	raw, _ := json.Marshal(payload)
	if err := s.send(wsMessage{Type: "connection_init", Payload: raw}); err != nil {
		s.t.Fatal(err)
	}
	if m := s.next(5 * time.Second); m.Type != "connection_ack" {
		s.t.Fatalf("after connection_init: %+v, want connection_ack", m)
	}
}

const sessionEventsQuery = `subscription { sessionEvents { type at sessionId } }`

// subscribe starts operation id.
func (s *socket) subscribe(id, query string) {
	s.t.Helper()
	raw, _ := json.Marshal(map[string]any{"query": query})
	if err := s.send(wsMessage{ID: id, Type: "subscribe", Payload: raw}); err != nil {
		s.t.Fatal(err)
	}
}

type sessionEvent struct {
	Type, SessionID string
	At              time.Time
}

// event reads the next message, which must be an event of operation id.
func (s *socket) event(id string, within time.Duration) sessionEvent {
	s.t.Helper()
	m := s.next(within)
	var p struct {
		Data   struct{ SessionEvents sessionEvent }
		Errors []gqlError
	}
	if err := json.Unmarshal(m.Payload, &p); err != nil || m.Type != "next" || m.ID != id || len(p.Errors) > 0 {
		s.t.Fatalf("message %s %s %s, want an event of %s", m.Type, m.ID, m.Payload, id)
	}
	return p.Data.SessionEvents
}

// refusal reads the answer to operation id that refuses it and returns
// the error's code: an error message (the operation was not valid), or a
// result with one error, then complete (a resolver refused it).
func (s *socket) refusal(id string) string {
	s.t.Helper()
	m := s.next(5 * time.Second)
	var p struct{ Errors []gqlError }
	err := json.Unmarshal(m.Payload, &p)
	if m.Type == "error" {
		err = json.Unmarshal(m.Payload, &p.Errors)
	}
	if err != nil || m.ID != id || len(p.Errors) != 1 {
		s.t.Fatalf("message %s %s %s, want one error for %s", m.Type, m.ID, m.Payload, id)
	}
	if m.Type != "error" {
		if m := s.next(5 * time.Second); m.Type != "complete" || m.ID != id {
			s.t.Fatalf("after the refusal of %s: %+v, want complete", id, m)
		}
	}
	code, _ := p.Errors[0].Extensions["code"].(string)
	return code
}

// waitSubscriptions waits until e's service holds n subscribers.
func (e *env) waitSubscriptions(t *testing.T, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); e.svc.Subscriptions() != n; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d subscribers, want %d", e.svc.Subscriptions(), n)
		}
	}
}

// bearerSocket opens a socket authenticated by c's token in connection_init.
func (e *env) bearerSocket(t *testing.T, c *client) *socket {
	t.Helper()
	s, _, err := e.dialWS(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.init(map[string]any{"authorization": "Bearer " + c.token})
	return s
}

// subscribed registers user on e and subscribes to sessionEvents (as "1")
// with the new session's bearer token: the client, its session's id, and
// the socket.
func (e *env) subscribed(t *testing.T, user string) (*client, string, *socket) {
	t.Helper()
	c := e.client()
	c.register(t, user, "correct horse")
	s := e.bearerSocket(t, c)
	s.subscribe("1", sessionEventsQuery)
	return c, e.sessionID(t, c), s
}

// A subscriber on one instance hears of its session's revocation on
// another within a second, gets REVOKED, then complete, and its socket
// closes.
func TestRevocationReachesASubscriberOnAnotherInstance(t *testing.T) {
	a := newEnv(t)
	b := newEnvOn(t, a.store)
	_, laptopID, s := a.subscribed(t, "Rosa")

	phone := b.client()
	phone.login(t, "Rosa", "correct horse")
	if ev := s.event("1", 5*time.Second); ev.Type != "SIGNED_IN" || ev.SessionID != b.sessionID(t, phone) {
		t.Fatalf("after the phone's sign-in: %+v, want SIGNED_IN of the phone's session", ev)
	}
	phone.ok(t, `mutation($id: ID!) { deleteSession(id: $id) }`, map[string]any{"id": laptopID}, &struct{}{})
	revoked := time.Now()
	ev := s.event("1", 5*time.Second)
	if took := time.Since(revoked); ev.Type != "REVOKED" || ev.SessionID != laptopID || took > time.Second {
		t.Fatalf("after the revocation: %+v after %v, want REVOKED of the laptop's session within 1s", ev, took)
	}
	if m := s.next(5 * time.Second); m.Type != "complete" || m.ID != "1" {
		t.Fatalf("after REVOKED: %+v, want complete", m)
	}
	if code := s.closed(5 * time.Second); code != websocket.StatusNormalClosure {
		t.Fatalf("the socket closed with %v, want a normal closure", code)
	}
}

// Each kind of event reaches the subscriber it concerns.
func TestSessionEventsReachTheirSubscribers(t *testing.T) {
	e := newEnv(t)
	laptop, laptopID, s := e.subscribed(t, "Tomas")

	laptop.ok(t, `mutation($d: JSONObject!) { updateSessionData(data: $d) { id } }`, map[string]any{"d": map[string]any{"k": 1}}, &struct{}{})
	if ev := s.event("1", 5*time.Second); ev.Type != "DATA_UPDATED" || ev.SessionID != laptopID {
		t.Fatalf("after a data update: %+v, want DATA_UPDATED of the laptop's session", ev)
	}
	// Another session's data is not the laptop's business.
	phone := e.client()
	phone.login(t, "Tomas", "correct horse")
	if ev := s.event("1", 5*time.Second); ev.Type != "SIGNED_IN" {
		t.Fatalf("after the phone's sign-in: %+v", ev)
	}
	phone.ok(t, `mutation($d: JSONObject!) { updateSessionData(data: $d) { id } }`, map[string]any{"d": map[string]any{"k": 2}}, &struct{}{})
	// Another user's events are not either.
	other := e.client()
	other.register(t, "Vera", "correct horse")

	// The phone changes the password: the laptop's session ends with it.
	phone.changePassword(t, "correct horse", "battery staple")
	if ev := s.event("1", 5*time.Second); ev.Type != "PASSWORD_CHANGED" || ev.SessionID != laptopID {
		t.Fatalf("after a password change elsewhere: %+v, want PASSWORD_CHANGED (and nothing of the phone's data or Vera)", ev)
	}
	if m := s.next(5 * time.Second); m.Type != "complete" {
		t.Fatalf("after PASSWORD_CHANGED: %+v, want complete", m)
	}
}

// withRealClock runs the env on time.Now with a short idle timeout, for
// expiry that arrives without anyone moving a clock.
func withRealClock(ttl time.Duration) envOption {
	return func(c *auth.Config, _ *graph.Options) { c.Now, c.TTL = time.Now, ttl }
}

// A subscriber whose session expires gets EXPIRED within a second of
// expiresAt, without any request.
func TestExpiryReachesTheSubscriber(t *testing.T) {
	e := newEnv(t, withRealClock(3*time.Second))
	c := e.client()
	c.register(t, "Uma", "correct horse")
	var out struct {
		Session struct{ ID, ExpiresAt string }
	}
	c.ok(t, `{ session { id expiresAt } }`, nil, &out)
	expires, err := time.Parse(time.RFC3339Nano, out.Session.ExpiresAt)
	if err != nil {
		t.Fatal(err)
	}
	s := e.bearerSocket(t, c)
	s.subscribe("x", sessionEventsQuery)
	ev := s.event("x", 10*time.Second)
	if late := time.Since(expires); ev.Type != "EXPIRED" || ev.SessionID != out.Session.ID || late < 0 || late > time.Second {
		t.Fatalf("%+v, %v after expiresAt; want EXPIRED within 1s after", ev, late)
	}
	if m := s.next(5 * time.Second); m.Type != "complete" {
		t.Fatalf("after EXPIRED: %+v, want complete", m)
	}
	if code := c.do(t, `{ me { id } }`, nil); string(code.Data) != `{"me":null}` {
		t.Fatalf("the expired session still answers: %s", code.Data)
	}
}

// The cookie of the upgrade request authenticates a socket from the API's
// own origin (or a listed one), never from another: cross-site WebSocket
// hijacking. A bearer token in connection_init wins over the cookie.
func TestWebSocketAuthentication(t *testing.T) {
	e := newEnv(t, func(_ *auth.Config, o *graph.Options) { o.CORSOrigins = []string{"http://app.localhost:5173"} })
	alice, bob := e.client(), e.client()
	alice.register(t, "alice", "correct horse")
	bob.register(t, "bob", "correct horse")
	cookie := func(c *client, origin string) http.Header {
		h := http.Header{}
		h.Set("Cookie", auth.HTTPConfig{CookieSecure: true}.SessionCookieName()+"="+c.token)
		if origin != "" {
			h.Set("Origin", origin)
		}
		return h
	}

	for _, origin := range []string{e.url, "http://app.localhost:5173", ""} {
		s, res, err := e.dialWS(t, cookie(alice, origin))
		if err != nil {
			t.Fatalf("cookie upgrade from %q: %v (%v)", origin, err, res)
		}
		s.init(nil)
		s.subscribe("1", sessionEventsQuery)
		alice.ok(t, `mutation($d: JSONObject!) { updateSessionData(data: $d) { id } }`, map[string]any{"d": map[string]any{}}, &struct{}{})
		if ev := s.event("1", 5*time.Second); ev.Type != "DATA_UPDATED" || ev.SessionID != e.sessionID(t, alice) {
			t.Fatalf("cookie socket from %q: %+v, want alice's DATA_UPDATED", origin, ev)
		}
	}
	for _, origin := range []string{"http://evil.example", "http://app.localhost:5174", "null"} {
		if _, res, err := e.dialWS(t, cookie(alice, origin)); err == nil || res == nil || res.StatusCode != http.StatusForbidden {
			t.Errorf("cookie upgrade from %q: %v, %v; want 403", origin, err, res)
		}
	}

	// The bearer token wins: bob's events, though alice's cookie came too.
	s, _, err := e.dialWS(t, cookie(alice, e.url))
	if err != nil {
		t.Fatal(err)
	}
	s.init(map[string]any{"authorization": "Bearer " + bob.token})
	s.subscribe("1", sessionEventsQuery)
	bob.ok(t, `mutation($d: JSONObject!) { updateSessionData(data: $d) { id } }`, map[string]any{"d": map[string]any{}}, &struct{}{})
	if ev := s.event("1", 5*time.Second); ev.SessionID != e.sessionID(t, bob) {
		t.Fatalf("cookie of alice, bearer of bob: %+v, want bob's session", ev)
	}

	// No credential, a bad one: refused at connection_init (4403).
	for name, payload := range map[string]map[string]any{
		"none":          nil,
		"a wrong token": {"authorization": "Bearer x.y"},
		"not a bearer":  {"authorization": "Basic " + bob.token},
	} {
		s, _, err := e.dialWS(t, nil)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(payload)
		_ = s.send(wsMessage{Type: "connection_init", Payload: raw})
		if code := s.closed(5 * time.Second); code != 4403 {
			t.Errorf("%s: closed with %v, want 4403", name, code)
		}
	}

	// Only graphql-transport-ws, and only subscriptions.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, res, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.url, "http")+"/query", &websocket.DialOptions{Subprotocols: []string{"graphql-ws"}})
	if err == nil || res == nil || res.StatusCode != http.StatusBadRequest {
		t.Errorf("the legacy graphql-ws protocol: %v, %v; want 400", err, res)
	}
	s = e.bearerSocket(t, bob)
	s.subscribe("q", `{ me { id } }`)
	if code := s.refusal("q"); code != "BAD_REQUEST" {
		t.Errorf("a query over WebSocket: %s, want BAD_REQUEST", code)
	}
	if code := bob.do(t, sessionEventsQuery, nil).code(t); code != "BAD_REQUEST" {
		t.Errorf("a subscription over HTTP: %s, want BAD_REQUEST", code)
	}
}

// A session holds at most 5 subscriptions; a socket without any is closed
// after the idle timeout; a message over the read limit closes the socket.
func TestSubscriptionLimits(t *testing.T) {
	e := newEnv(t, func(_ *auth.Config, o *graph.Options) { o.WebSocketIdle = 500 * time.Millisecond })
	c := e.client()
	c.register(t, "lim", "correct horse")
	s := e.bearerSocket(t, c)
	for i := range auth.MaxSubscriptionsPerSession {
		s.subscribe(fmt.Sprint(i), sessionEventsQuery)
	}
	e.waitSubscriptions(t, auth.MaxSubscriptionsPerSession) // gqlgen starts them concurrently
	s.subscribe("over", sessionEventsQuery)
	if code := s.refusal("over"); code != "TOO_MANY_REQUESTS" {
		t.Fatalf("a 6th subscription: %s, want TOO_MANY_REQUESTS", code)
	}
	_ = s.send(wsMessage{ID: "0", Type: "complete"})
	e.waitSubscriptions(t, auth.MaxSubscriptionsPerSession-1)
	s.subscribe("again", sessionEventsQuery) // a place was freed
	e.waitSubscriptions(t, auth.MaxSubscriptionsPerSession)
	c.ok(t, `mutation($d: JSONObject!) { updateSessionData(data: $d) { id } }`, map[string]any{"d": map[string]any{}}, &struct{}{})
	got := map[string]bool{}
	for len(got) < auth.MaxSubscriptionsPerSession {
		if m := s.next(5 * time.Second); m.Type == "next" {
			got[m.ID] = true
		}
	}
	if !got["again"] || got["0"] {
		t.Fatalf("events went to %v, want the 4 left and the new one", got)
	}

	idle, _, err := e.dialWS(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	idle.init(map[string]any{"authorization": "Bearer " + c.token})
	if code := idle.closed(5 * time.Second); code != websocket.StatusNormalClosure {
		t.Errorf("an idle socket closed with %v", code)
	}

	big := e.bearerSocket(t, c)
	_ = big.send(wsMessage{ID: "b", Type: "subscribe", Payload: json.RawMessage(`{"query":"` + strings.Repeat(" ", 20<<10) + `subscription { sessionEvents { type } }"}`)})
	if code := big.closed(5 * time.Second); code != websocket.StatusMessageTooBig {
		t.Errorf("a 20 KiB message: closed with %v, want %v", code, websocket.StatusMessageTooBig)
	}
}

// 1,000 subscriptions started and ended leave no goroutine and no
// subscriber behind.
func TestSubscriptionsLeaveNothingBehind(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	c.register(t, "cycler", "correct horse")
	s := e.bearerSocket(t, c)
	settle := func() int {
		var n int
		for range 50 {
			runtime.GC()
			n = runtime.NumGoroutine()
			time.Sleep(20 * time.Millisecond)
			if e.svc.Subscriptions() == 0 {
				break
			}
		}
		return n
	}
	s.subscribe("warm", sessionEventsQuery)
	_ = s.send(wsMessage{ID: "warm", Type: "complete"})
	before := settle()
	var mem runtime.MemStats
	runtime.ReadMemStats(&mem)
	heap := mem.HeapInuse
	for i := range 1000 {
		id := fmt.Sprint(i)
		s.subscribe(id, sessionEventsQuery)
		if err := s.send(wsMessage{ID: id, Type: "complete"}); err != nil {
			t.Fatal(err)
		}
	}
	// Still serving: one more subscription gets its event (once it has
	// started: an update before is not its business).
	s.subscribe("last", sessionEventsQuery)
	got := false
	for try := 0; !got && try < 20; try++ {
		c.ok(t, `mutation($d: JSONObject!) { updateSessionData(data: $d) { id } }`, map[string]any{"d": map[string]any{}}, &struct{}{})
		for timeout := time.After(500 * time.Millisecond); !got; {
			select {
			case m := <-s.in:
				got = m.ID == "last" && m.Type == "next"
				continue
			case <-timeout:
			}
			break
		}
	}
	if !got {
		t.Fatal("a subscription after the 1,000 got no event")
	}
	_ = s.send(wsMessage{ID: "last", Type: "complete"})
	after := settle()
	if n := e.svc.Subscriptions(); n != 0 {
		t.Fatalf("%d subscribers left after every subscription ended", n)
	}
	// The database driver's connections, opened for the burst, close when
	// idle: a leak is what stays.
	for deadline := time.Now().Add(15 * time.Second); after > before+5 && time.Now().Before(deadline); after = runtime.NumGoroutine() {
		runtime.GC()
		time.Sleep(100 * time.Millisecond)
	}
	if after > before+5 {
		t.Fatalf("goroutines: %d before, %d after 1,000 subscriptions", before, after)
	}
	runtime.ReadMemStats(&mem)
	if grown := int64(mem.HeapInuse) - int64(heap); grown > 8<<20 {
		t.Fatalf("heap in use grew by %d bytes over 1,000 subscriptions", grown)
	}
}

// One client network holds at most 100 subscriptions in an instance,
// whatever sessions it spreads them over; the document limits of HTTP hold
// over WebSocket too.
func TestSubscriptionsPerClientAndDocumentLimits(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	c.register(t, "many", "correct horse")
	var sockets []*socket
	for i := range auth.MaxSubscriptionsPerClient / auth.MaxSubscriptionsPerSession {
		d := e.client()
		d.login(t, "many", "correct horse")
		s := e.bearerSocket(t, d)
		for j := range auth.MaxSubscriptionsPerSession {
			s.subscribe(fmt.Sprint(i, "-", j), sessionEventsQuery)
		}
		sockets = append(sockets, s)
	}
	e.waitSubscriptions(t, auth.MaxSubscriptionsPerClient)
	// A fresh session, from the same address: over the client's budget.
	extra := e.bearerSocket(t, c)
	extra.subscribe("over", sessionEventsQuery)
	if code := extra.refusal("over"); code != "TOO_MANY_REQUESTS" {
		t.Fatalf("the 101st subscription of one client: %s, want TOO_MANY_REQUESTS", code)
	}
	// Ending one frees a place.
	_ = sockets[0].send(wsMessage{ID: "0-0", Type: "complete"})
	e.waitSubscriptions(t, auth.MaxSubscriptionsPerClient-1)
	extra.subscribe("now", sessionEventsQuery)
	e.waitSubscriptions(t, auth.MaxSubscriptionsPerClient)

	aliases := make([]string, 40)
	for i := range aliases {
		aliases[i] = fmt.Sprintf("a%d: type", i)
	}
	extra.subscribe("wide", "subscription { sessionEvents { "+strings.Join(aliases, " ")+" } }")
	if code := extra.refusal("wide"); code != "FIELD_LIMIT_EXCEEDED" {
		t.Fatalf("a subscription with 40 aliases: %s, want FIELD_LIMIT_EXCEEDED", code)
	}
}

// A subscription selects one field: two aliased ones are refused as
// invalid, not failed inside.
func TestSubscriptionSelectsOneField(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	c.register(t, "single", "correct horse")
	s := e.bearerSocket(t, c)
	s.subscribe("two", `subscription { a: sessionEvents { type } b: sessionEvents { type } }`)
	if code := s.refusal("two"); code != "GRAPHQL_VALIDATION_FAILED" {
		t.Fatalf("two root fields: %s, want GRAPHQL_VALIDATION_FAILED", code)
	}
	if strings.Contains(e.logs.String(), "level=ERROR") {
		t.Errorf("an error in the log:\n%s", e.logs)
	}
}

// A session's data updates gather into one DATA_UPDATED notice per 100 ms,
// the last update always told: a client looping updateSessionData cannot
// flood the stream every instance reads.
func TestDataUpdatesAreCoalesced(t *testing.T) {
	e := newEnv(t)
	c, _, s := e.subscribed(t, "looper")
	e.waitSubscriptions(t, 1)
	ctx := context.Background()
	before, err := e.store.LastNotice(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			c.ok(t, `mutation($d: JSONObject!) { updateSessionData(data: $d) { id } }`, map[string]any{"d": map[string]any{"i": i}}, &struct{}{})
		})
	}
	wg.Wait()
	if ev := s.event("1", 5*time.Second); ev.Type != "DATA_UPDATED" {
		t.Fatalf("after 30 updates: %+v, want DATA_UPDATED", ev)
	}
	e.svc.Wait()
	after, err := e.store.LastNotice(ctx)
	if err != nil {
		t.Fatal(err)
	}
	published := 0
	for seq := before + 1; seq <= after; seq++ {
		b, err := e.store.BatchAt(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range b.Notices {
			if n.Type == "DATA_UPDATED" {
				published++
			}
		}
	}
	if published < 1 || published > 10 {
		t.Fatalf("30 concurrent updates published %d notices, want a few", published)
	}
}

// A flood of data updates (one user looping updateSessionData through both
// instances of one database) holds up no one else: another user signs in
// on either instance, and a revocation reaches its subscriber on the other
// instance within a second, while the flood goes on. (Requests do not wait
// for the live stream; a writer per instance batches what is queued.)
func TestANoticeFloodHoldsUpNoOne(t *testing.T) {
	a := newEnv(t)
	b := newEnvOn(t, a.store)
	envs := []*env{a, b}
	var tokens []string
	for i := range 8 {
		c := envs[i%2].client()
		if i == 0 {
			c.register(t, "flooder", "correct horse")
		} else {
			c.login(t, "flooder", "correct horse")
		}
		tokens = append(tokens, c.token)
	}
	ctx, stop := context.WithCancel(context.Background())
	var flood sync.WaitGroup
	var updates atomic.Int64
	defer flood.Wait()
	defer stop()
	for i, token := range tokens {
		flood.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				if postData(ctx, envs[i%2].url, token, n) {
					updates.Add(1)
				}
			}
		})
	}
	_, laptopID, s := a.subscribed(t, "Rosa")
	a.waitSubscriptions(t, 1)
	for updates.Load() < 100 { // the flood is on
		time.Sleep(10 * time.Millisecond)
	}

	for i, e := range envs {
		start := time.Now()
		phone := e.client()
		phone.login(t, "Rosa", "correct horse")
		took := time.Since(start)
		if took > 10*time.Second {
			t.Fatalf("a sign-in on instance %d took %v during the flood", i, took)
		}
		t.Logf("sign-in on instance %d during the flood: %v", i, took)
		if ev := s.event("1", 5*time.Second); ev.Type != "SIGNED_IN" || ev.SessionID != e.sessionID(t, phone) {
			t.Fatalf("after a sign-in on instance %d: %+v, want SIGNED_IN of its session", i, ev)
		}
		if i == 0 {
			continue
		}
		before := updates.Load()
		sent := time.Now()
		phone.ok(t, `mutation($id: ID!) { deleteSession(id: $id) }`, map[string]any{"id": laptopID}, &struct{}{})
		answered := time.Now()
		if took := answered.Sub(sent); took > 10*time.Second {
			t.Fatalf("deleteSession took %v during the flood", took)
		}
		ev := s.event("1", 5*time.Second)
		if took := time.Since(answered); ev.Type != "REVOKED" || took > time.Second {
			t.Fatalf("after a revocation on the other instance: %+v after %v, want REVOKED within 1s", ev, took)
		}
		t.Logf("deleteSession answered in %v, REVOKED %v later; %d updates meanwhile", answered.Sub(sent), time.Since(answered), updates.Load()-before)
		if updates.Load() == before {
			t.Fatal("the flood stopped during the revocation: it proves nothing")
		}
	}
}

// postData stores n as the data of token's session, and reports whether
// the server took it.
func postData(ctx context.Context, url, token string, n int) bool {
	body := fmt.Sprintf(`{"query":"mutation { updateSessionData(data: {n: %d}) { id } }"}`, n)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/query", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer res.Body.Close()
	var r struct{ Errors []any }
	return json.NewDecoder(res.Body).Decode(&r) == nil && len(r.Errors) == 0
}

// An instance that could not write its notices to the stream (a database
// outage, or more of them queued than it keeps) publishes a resync notice
// once it can: every subscriber of every instance reads its session
// again, and one whose session ended hears of it.
func TestResyncNoticeMakesSubscribersCheck(t *testing.T) {
	e := newEnv(t)
	_, id, s := e.subscribed(t, "Ines")
	e.waitSubscriptions(t, 1)
	ctx := context.Background()
	// Ended where no notice tells of it.
	sess, err := e.store.SessionByID(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := e.store.DeleteSession(ctx, id, sess.UserID); !ok || err != nil {
		t.Fatalf("delete the session: %v, %v", ok, err)
	}
	select {
	case m := <-s.in:
		t.Fatalf("before any notice: %+v, want nothing (the test would prove nothing)", m)
	case <-time.After(300 * time.Millisecond):
	}
	resync := &storage.Batch{Origin: "another instance", Key: "another instance:1", Notices: []storage.Notice{{Type: "RESYNC", At: time.Now()}}}
	if err := e.store.Publish(ctx, resync); err != nil {
		t.Fatal(err)
	}
	if ev := s.event("1", 5*time.Second); ev.Type != "REVOKED" || ev.SessionID != id {
		t.Fatalf("after a resync notice: %+v, want REVOKED", ev)
	}
}

// When a revocation is acknowledged, its notice is already in the stream:
// other instances hear of it even if this one stops right after answering
// (a kill -9 leaves no queue to write).
func TestAcknowledgedRevocationIsInTheStream(t *testing.T) {
	e := newEnv(t)
	laptop, phone := e.client(), e.client()
	laptop.register(t, "Olga", "correct horse")
	phone.login(t, "Olga", "correct horse")
	ctx := context.Background()
	for _, step := range []struct{ mutation, notice string }{
		{`mutation($id: ID!) { deleteSession(id: $id) }`, "SESSION_REVOKED"},
		{`mutation { deleteOtherSessions }`, "OTHER_SESSIONS_REVOKED"},
		{`mutation { deleteSession }`, "SIGNED_OUT"}, // logout
	} {
		laptop.login(t, "Olga", "correct horse")
		phone.ok(t, step.mutation, map[string]any{"id": e.sessionID(t, laptop)}, &struct{}{})
		last, err := e.store.LastNotice(ctx)
		if err != nil {
			t.Fatal(err)
		}
		b, err := e.store.BatchAt(ctx, last)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(b.Notices, func(n storage.Notice) bool { return n.Type == step.notice }) {
			t.Fatalf("when %s answered, the newest batch was %+v, without %s", firstLine(step.mutation), b.Notices, step.notice)
		}
	}
}
