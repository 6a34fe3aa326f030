package graph_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/auth"
	"gatehouse/internal/softauthn"
)

const eventsQuery = `query($first: Int, $after: String) { securityEvents(first: $first, after: $after) {
	edges { cursor node { id type at sessionId ipAddress userAgent } } pageInfo { hasNextPage endCursor } } }`

type securityEvent struct {
	ID, Type, At         string
	SessionID, IPAddress *string
	UserAgent            *string
}

type eventPage struct {
	SecurityEvents struct {
		Edges []struct {
			Cursor string
			Node   securityEvent
		}
		PageInfo struct {
			HasNextPage bool
			EndCursor   *string
		}
	}
}

// events returns a page of c's security events.
func (c *client) events(t *testing.T, first int, after string) eventPage {
	t.Helper()
	vars := map[string]any{"first": first}
	if after != "" {
		vars["after"] = after
	}
	var out eventPage
	c.ok(t, eventsQuery, vars, &out)
	return out
}

// eventTypes returns the types of c's newest n events, oldest first.
func (c *client) eventTypes(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for _, e := range c.events(t, n, "").SecurityEvents.Edges {
		out = append(out, e.Node.Type)
	}
	slices.Reverse(out)
	return out
}

// Each cause records its event, with the client's address and user agent,
// and the session it concerns.
func TestSecurityEventsRecordTheirCauses(t *testing.T) {
	e := newEnv(t, withPasskeys, withThrottle(3))
	laptop := e.client()
	laptop.header.Set("User-Agent", "laptop-browser")
	laptop.register(t, "Ines", "correct horse")
	laptopID := e.sessionID(t, laptop)
	phone := e.client()
	phone.login(t, "Ines", "correct horse")
	phoneID := e.sessionID(t, phone)
	if code := e.client().do(t, loginQuery, map[string]any{"u": "Ines", "p": "wrong horse"}).code(t); code != "UNAUTHENTICATED" {
		t.Fatalf("wrong password: %s", code)
	}
	e.svc.Wait() // a failure is recorded after the answer
	laptop.ok(t, `mutation($d: JSONObject!) { updateSessionData(data: $d) { id } }`, map[string]any{"d": map[string]any{"a": 1}}, &struct{}{})
	laptop.ok(t, `mutation($id: ID!) { deleteSession(id: $id) }`, map[string]any{"id": phoneID}, &struct{}{})
	tablet := e.client()
	tablet.login(t, "Ines", "correct horse")
	tablet.ok(t, `mutation { deleteSession }`, nil, &struct{}{})
	laptop.ok(t, `mutation { deleteOtherSessions }`, nil, &struct{}{})

	want := []string{"SIGNED_IN", "SIGNED_IN", "LOGIN_FAILED", "SESSION_REVOKED", "SIGNED_IN", "SIGNED_OUT", "OTHER_SESSIONS_REVOKED"}
	page := laptop.events(t, 20, "")
	var got []string
	for _, edge := range slices.Backward(page.SecurityEvents.Edges) {
		got = append(got, edge.Node.Type)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events oldest first %v, want %v (session data updates are not logged)", got, want)
	}
	first, revoked := page.SecurityEvents.Edges[len(want)-1].Node, page.SecurityEvents.Edges[3].Node
	if first.SessionID == nil || *first.SessionID != laptopID || first.UserAgent == nil || *first.UserAgent != "laptop-browser" ||
		first.IPAddress == nil || *first.IPAddress != "127.0.0.1" {
		t.Errorf("sign-up event %+v: want the laptop's session, user agent and address", first)
	}
	if revoked.SessionID == nil || *revoked.SessionID != phoneID {
		t.Errorf("revocation event %+v: want the phone's session", revoked)
	}

	// Credential changes.
	laptop.changePassword(t, "correct horse", "battery staple")
	secret, _ := laptop.enableTOTP(t, "battery staple")
	pending := e.client()
	pending.pendingLogin(t, "Ines", "battery staple")
	pending.refusedCode(t, "000000", "UNAUTHENTICATED")
	pending.verify(t, totpCode(secret, e.step()))
	// A sign-in given up at its second step was never signed in: no event.
	given := e.client()
	given.pendingLogin(t, "Ines", "battery staple")
	given.ok(t, `mutation { deleteSession }`, nil, &struct{}{})
	e.clock.Advance(30 * time.Second)
	laptop.ok(t, `mutation($p: String!, $c: String!) { disableTotp(password: $p, code: $c) }`,
		map[string]any{"p": "battery staple", "c": totpCode(secret, e.step())}, &struct{}{})
	pk := laptop.addPasskey(t, softauthn.New(passkeyOrigin), "key")
	laptop.ok(t, `mutation($id: ID!) { deletePasskey(id: $id) }`, map[string]any{"id": pk.ID}, &struct{}{})
	want = []string{"PASSWORD_CHANGED", "SECOND_FACTOR_ENABLED", "LOGIN_FAILED", "SIGNED_IN", "SECOND_FACTOR_DISABLED", "PASSKEY_ADDED", "PASSKEY_REMOVED"}
	if got := laptop.eventTypes(t, len(want)); !slices.Equal(got, want) {
		t.Fatalf("credential events %v, want %v", got, want)
	}

	// Expiry, found by a request and by the sweeper: no address, no agent
	// from the sweeper.
	old := e.client()
	old.login(t, "Ines", "battery staple")
	var oldSession struct {
		Session struct{ ID, ExpiresAt string }
	}
	old.ok(t, `{ session { id expiresAt } }`, nil, &oldSession)
	oldID := oldSession.Session.ID
	e.clock.Advance(2 * time.Hour)
	finder := e.client()
	finder.login(t, "Ines", "battery staple")
	finder.ok(t, `query($id: ID!) { session(id: $id) { id } }`, map[string]any{"id": oldID}, &struct{}{})
	e.clock.Advance(2 * time.Hour) // the laptop's and the finder's sessions expire
	if n, err := e.svc.Sweep(context.Background()); n != 2 || err != nil {
		t.Fatalf("sweep: %d, %v; want the laptop's and the finder's sessions", n, err)
	}
	fresh := e.client()
	fresh.login(t, "Ines", "battery staple")
	edges := fresh.events(t, 6, "").SecurityEvents.Edges
	var tail []string
	for _, edge := range slices.Backward(edges) {
		tail = append(tail, edge.Node.Type)
	}
	if want := []string{"SIGNED_IN", "SIGNED_IN", "SESSION_EXPIRED", "SESSION_EXPIRED", "SESSION_EXPIRED", "SIGNED_IN"}; !slices.Equal(tail, want) {
		t.Fatalf("expiry events %v, want %v", tail, want)
	}
	if found := edges[3].Node; found.SessionID == nil || *found.SessionID != oldID || found.IPAddress == nil || found.At != oldSession.Session.ExpiresAt {
		t.Errorf("the expiry found by a request: %+v, want the old session, the finder's address and its expiry time %s", found, oldSession.Session.ExpiresAt)
	}
	for _, swept := range edges[1:3] {
		if swept.Node.IPAddress != nil || swept.Node.UserAgent != nil {
			t.Errorf("an expiry found by the sweeper has address %v and agent %v, want none", swept.Node.IPAddress, swept.Node.UserAgent)
		}
	}

	// Three wrong passwords lock the account: THROTTLED, once.
	for range 3 {
		e.client().do(t, loginQuery, map[string]any{"u": "Ines", "p": "wrong horse"})
	}
	e.client().do(t, loginQuery, map[string]any{"u": "Ines", "p": "wrong horse"}) // refused by the lock: not checked
	e.svc.Wait()
	if got, want := fresh.eventTypes(t, 4), []string{"LOGIN_FAILED", "LOGIN_FAILED", "LOGIN_FAILED", "THROTTLED"}; !slices.Equal(got, want) {
		t.Fatalf("guessing events %v, want %v", got, want)
	}
	if strings.Contains(e.logs.String(), "record security event failed") {
		t.Errorf("a failed event write in the log:\n%s", e.logs)
	}
}

// sessionID returns the id of c's current session.
func (e *env) sessionID(t *testing.T, c *client) string {
	t.Helper()
	var out struct{ Session struct{ ID string } }
	c.ok(t, `{ session { id } }`, nil, &out)
	return out.Session.ID
}

// changePassword changes c's password and makes c use the new token.
func (c *client) changePassword(t *testing.T, current, next string) {
	t.Helper()
	var out struct{ ChangePassword struct{ Token string } }
	c.ok(t, `mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) { token } }`,
		map[string]any{"c": current, "n": next}, &out)
	c.token = out.ChangePassword.Token
}

// Pages are newest first, stay put while events arrive, and end; another
// user sees none of them; bad arguments are BAD_USER_INPUT.
func TestSecurityEventsPaging(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	c.register(t, "pager", "correct horse")
	for range 24 {
		c.ok(t, `mutation { deleteOtherSessions }`, nil, &struct{}{}) // 25 events with the sign-up
	}
	p1 := c.events(t, 10, "")
	var wg sync.WaitGroup
	for range 5 { // newer events while paging
		wg.Go(func() { c.ok(t, `mutation { deleteOtherSessions }`, nil, &struct{}{}) })
	}
	wg.Wait()
	p2 := c.events(t, 10, *p1.SecurityEvents.PageInfo.EndCursor)
	p3 := c.events(t, 10, *p2.SecurityEvents.PageInfo.EndCursor)
	var ids []string
	for _, p := range []eventPage{p1, p2, p3} {
		for _, edge := range p.SecurityEvents.Edges {
			ids = append(ids, edge.Node.ID)
		}
	}
	if len(ids) != 25 || !p1.SecurityEvents.PageInfo.HasNextPage || !p2.SecurityEvents.PageInfo.HasNextPage || p3.SecurityEvents.PageInfo.HasNextPage {
		t.Fatalf("pages of %d, %d, %d events (more: %v %v %v), want 10, 10, 5 and the last without more",
			len(p1.SecurityEvents.Edges), len(p2.SecurityEvents.Edges), len(p3.SecurityEvents.Edges),
			p1.SecurityEvents.PageInfo.HasNextPage, p2.SecurityEvents.PageInfo.HasNextPage, p3.SecurityEvents.PageInfo.HasNextPage)
	}
	if len(slices.Compact(slices.Sorted(slices.Values(ids)))) != 25 {
		t.Fatalf("event ids repeat across pages: %v", ids)
	}
	if last := p3.SecurityEvents.Edges[4].Node.Type; last != "SIGNED_IN" {
		t.Fatalf("the oldest event is %s, want the sign-up's SIGNED_IN", last)
	}
	if newest := c.events(t, 1, "").SecurityEvents.Edges[0].Node.ID; newest == ids[0] {
		t.Fatalf("the newest event did not change after 5 more")
	}

	other := e.client()
	other.register(t, "other", "correct horse")
	if got := other.events(t, 100, "").SecurityEvents.Edges; len(got) != 1 {
		t.Fatalf("another user sees %d events, want only its sign-up", len(got))
	}
	// Another user's cursor pages the caller's own log, never the other's.
	for _, edge := range other.events(t, 100, *p1.SecurityEvents.PageInfo.EndCursor).SecurityEvents.Edges {
		if slices.Contains(ids, edge.Node.ID) {
			t.Fatalf("another user's cursor showed pager's event %s", edge.Node.ID)
		}
	}

	for name, vars := range map[string]map[string]any{
		"first 0":          {"first": 0},
		"first 101":        {"first": 101},
		"a foreign cursor": {"first": 10, "after": "bm90LW91cnM"},
		"garbage":          {"first": 10, "after": "!!"},
	} {
		if code := c.do(t, eventsQuery, vars).code(t); code != "BAD_USER_INPUT" {
			t.Errorf("%s: %s, want BAD_USER_INPUT", name, code)
		}
	}
	if code := e.client().do(t, eventsQuery, nil).code(t); code != "UNAUTHENTICATED" {
		t.Errorf("without a session: %s, want UNAUTHENTICATED", code)
	}
}

// A guessing flood leaves at most 50 failure events a day per user.
func TestFailureEventsAreBounded(t *testing.T) {
	e := newEnv(t, withThrottle(1000))
	c := e.client()
	c.register(t, "target", "correct horse")
	var wg sync.WaitGroup
	for range 60 {
		wg.Go(func() { e.client().do(t, loginQuery, map[string]any{"u": "target", "p": "wrong horse"}) })
	}
	wg.Wait()
	e.svc.Wait()
	failures := 0
	for _, edge := range c.events(t, 100, "").SecurityEvents.Edges {
		if edge.Node.Type == "LOGIN_FAILED" {
			failures++
		}
	}
	if failures != 50 {
		t.Fatalf("%d LOGIN_FAILED events after 60 wrong passwords, want 50", failures)
	}
	e.clock.Advance(24 * time.Hour)
	e.client().do(t, loginQuery, map[string]any{"u": "target", "p": "wrong horse"})
	e.svc.Wait()
	c.login(t, "target", "correct horse")
	if got := c.eventTypes(t, 2); !slices.Equal(got, []string{"LOGIN_FAILED", "SIGNED_IN"}) {
		t.Fatalf("the next day: %v, want a new LOGIN_FAILED", got)
	}
}

// A wrong password costs the same writes whether the name exists or not
// (an unknown name's go to a log no one reads, kept a throttle window):
// their time must not tell names apart, now or for the requests after.
func TestUnknownNamesFailLikeKnownOnes(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	c.register(t, "Known", "correct horse")
	for _, name := range []string{"Known", "Ghost"} {
		if code := e.client().do(t, loginQuery, map[string]any{"u": name, "p": "wrong horse"}).code(t); code != "UNAUTHENTICATED" {
			t.Fatalf("a wrong password for %s: %s", name, code)
		}
	}
	e.svc.Wait()
	ctx := context.Background()
	ghost, _, err := e.store.EventsOfUser(ctx, "unknown:ghost", 0, 10)
	if err != nil || len(ghost) != 1 || ghost[0].Type != "LOGIN_FAILED" {
		t.Fatalf("the unknown name's log: %v, %v; want its LOGIN_FAILED, written like a user's", ghost, err)
	}
	if got := c.eventTypes(t, 2); !slices.Equal(got, []string{"SIGNED_IN", "LOGIN_FAILED"}) {
		t.Fatalf("the known user's log: %v", got)
	}
	// Swept after the throttle window (and the span of its file), head and
	// all; the user's own stays.
	e.clock.Advance(auth.DefaultThrottle.Window + 19*time.Hour)
	if _, err := e.svc.SweepEvents(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := e.store.LastEventNumber(ctx, "unknown:ghost"); n != 0 || err != nil {
		t.Fatalf("the unknown name's log after the sweep: head %d, %v; want gone", n, err)
	}
	c.login(t, "Known", "correct horse") // the session expired meanwhile
	if got := c.eventTypes(t, 3); !slices.Equal(got, []string{"SIGNED_IN", "LOGIN_FAILED", "SIGNED_IN"}) {
		t.Fatalf("the known user's log after the sweep: %v", got)
	}
}
