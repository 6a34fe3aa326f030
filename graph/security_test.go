package graph_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/auth"
	"gatehouse/graph"
	"gatehouse/internal/testlog"
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
	if _, err := e.store.ThrottleByKey(ctx, "user:victim"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("throttle after a successful login: %v, want none", err)
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

func TestAttackCrossSiteRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(_ *auth.Config, o *graph.Options) { o.HTTP.CookieSecure = false })
	c := e.client()
	token := c.register(t, "csrf", pw).Token
	send := func(method, ct, body string, hdr map[string]string, cookie bool) *http.Response {
		url := e.url + "/query"
		var rd io.Reader
		if method == http.MethodGet {
			url += "?query=" + strings.ReplaceAll(body, " ", "+")
		} else {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, url, rd)
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		if cookie {
			req.AddCookie(&http.Cookie{Name: auth.DefaultCookieName, Value: token})
		} else {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	const logout = `{"query":"mutation { deleteOtherSessions }"}`
	for _, tc := range []struct {
		name, method, ct, body string
		hdr                    map[string]string
		cookie                 bool
		want                   int
	}{
		{"form POST with cookie", http.MethodPost, "application/x-www-form-urlencoded", logout, nil, true, 400},
		{"text/plain POST with cookie", http.MethodPost, "text/plain", logout, nil, true, 400},
		{"GET with cookie", http.MethodGet, "", "{ me { id } }", nil, true, 400},
		{"GET with cookie and preflight header", http.MethodGet, "", "{ me { id } }", map[string]string{"Apollo-Require-Preflight": "true"}, true, 200},
		{"JSON POST with cookie", http.MethodPost, "application/json", logout, nil, true, 200},
		{"text/plain POST with bearer", http.MethodPost, "text/plain", logout, nil, false, 415}, // not CSRF, but not a GraphQL body either
		{"GET with bearer", http.MethodGet, "", "{ me { id } }", nil, false, 200},
	} {
		if got := send(tc.method, tc.ct, tc.body, tc.hdr, tc.cookie).StatusCode; got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
	if c.me(t) != "csrf" {
		t.Error("the session did not survive")
	}
}

func TestCORSAllowsOnlyConfiguredOrigins(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(_ *auth.Config, o *graph.Options) { o.CORSOrigins = []string{"https://app.example"} })
	for _, tc := range []struct {
		origin string
		allow  bool
	}{{"https://app.example", true}, {"https://evil.example", false}} {
		req, _ := http.NewRequest(http.MethodOptions, e.url+"/query", nil)
		req.Header.Set("Origin", tc.origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		gotOrigin := res.Header.Get("Access-Control-Allow-Origin")
		if tc.allow && (gotOrigin != tc.origin || res.Header.Get("Access-Control-Allow-Credentials") != "true") {
			t.Errorf("%s: allow-origin %q credentials %q; want the origin, true", tc.origin, gotOrigin, res.Header.Get("Access-Control-Allow-Credentials"))
		}
		if !tc.allow && gotOrigin != "" {
			t.Errorf("%s: allow-origin %q, want none", tc.origin, gotOrigin)
		}
	}
	// Without CORS_ORIGINS no origin is allowed.
	same := newEnv(t)
	req, _ := http.NewRequest(http.MethodOptions, same.url+"/query", nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got := res.Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("same-origin server allowed %q", got)
	}
}

func TestAttackExpensiveQueries(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client()
	c.register(t, "deep", pw)
	nested := "{ me { id } }"
	for range 20 {
		nested = "{ __schema { types { fields { type " + strings.Repeat("{ ofType ", 14) + "{ name }" + strings.Repeat(" }", 14) + " } } } }"
	}
	var aliased strings.Builder
	aliased.WriteString("{")
	for i := range 40 {
		fmt.Fprintf(&aliased, " a%d: me { id }", i)
	}
	aliased.WriteString(" }")
	bomb := `query { ...F0 } fragment F0 on Query { ...F1 ...F1 ...F1 } fragment F1 on Query { ...F2 ...F2 ...F2 }
		fragment F2 on Query { ...F3 ...F3 ...F3 } fragment F3 on Query { ...F4 ...F4 ...F4 } fragment F4 on Query { ...F5 ...F5 ...F5 }
		fragment F5 on Query { me { id username createdAt } }`
	var huge strings.Builder
	huge.WriteString("{ me { ")
	for range 6000 {
		huge.WriteString("id ")
	}
	huge.WriteString("} }")
	for _, tc := range []struct{ name, query, code string }{
		{"deeply nested", nested, "DEPTH_LIMIT_EXCEEDED"},
		{"aliased to death", aliased.String(), "FIELD_LIMIT_EXCEEDED"},
		{"fragment bomb", bomb, "FIELD_LIMIT_EXCEEDED"},
		{"too many tokens", huge.String(), "GRAPHQL_PARSE_FAILED"},
		{"page too big", `{ a: sessions(first: 100) { id user { id username createdAt } data createdAt lastSeenAt expiresAt current } b: sessions(first: 100) { id user { id username } data createdAt } }`, "COMPLEXITY_LIMIT_EXCEEDED"},
	} {
		r := c.do(t, tc.query, nil)
		if got := r.code(t); got != tc.code {
			t.Errorf("%s: code %q (%s), want %s", tc.name, got, r.Errors[0].Message, tc.code)
		}
	}
	// What clients really send passes: full introspection, a page of 100.
	var schema map[string]any
	c.ok(t, introspectionQuery, nil, &schema)
	if schema["__schema"] == nil {
		t.Error("introspection returned no schema")
	}
	var page struct{ Sessions []sessionJSON }
	c.ok(t, `{ sessions(first: 100) { `+sessionFields+` } }`, nil, &page)
}

func TestIntrospectionCanBeTurnedOff(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(_ *auth.Config, o *graph.Options) { o.NoIntrospection = true })
	r := e.client().do(t, `{ __schema { types { name } } }`, nil)
	if len(r.Errors) == 0 {
		t.Errorf("introspection answered: %s", r.Data)
	}
	var out struct{ Me *userJSON }
	e.client().ok(t, `{ me { id } }`, nil, &out) // ordinary queries still work
}

func TestAttackMalformedRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client()
	token := c.register(t, "mal", pw).Token
	for _, tc := range []struct {
		name, ct, body string
	}{
		{"malformed JSON", "application/json", `{"query": "{ me { id } }"`},
		{"not an object", "application/json", `[1,2,3]`},
		{"query not a string", "application/json", `{"query": 42}`},
		{"variables not an object", "application/json", `{"query": "{ me { id } }", "variables": "x"}`},
		{"wrong content type", "application/xml", `<query/>`},
		{"invalid UTF-8", "application/json", "{\"query\": \"{ me { id } }\", \"variables\": {\"x\": \"\xff\xfe\"}}"},
		{"NUL in query", "application/json", `{"query": "{ me\u0000 { id } }"}`},
		{"NUL in username", "application/json", `{"query": "mutation { register(username: \"a\u0000bc\", password: \"correct horse\") { token } }"}`},
		{"invalid UTF-8 username", "application/json", "{\"query\": \"mutation($u: String!) { register(username: $u, password: \\\"correct horse\\\") { token } }\", \"variables\": {\"u\": \"ab\xffc\"}}"},
		{"empty body", "application/json", ``},
		{"huge number in data", "application/json", `{"query": "mutation { updateSessionData(data: {n: 1e999}) { id } }"}`},
		{"not an id", "application/json", `{"query": "{ session(id: \"not-a-session-id\") { id } }"}`},
		{"object id", "application/json", `{"query": "{ session(id: \"507f1f77bcf86cd799439011\") { id } }"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, e.url+"/query", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", tc.ct)
			req.Header.Set("Authorization", "Bearer "+token)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode >= 500 || strings.Contains(string(body), "INTERNAL_SERVER_ERROR") {
				t.Errorf("status %d body %s: a server error for bad input", res.StatusCode, body)
			}
		})
	}
	if n := e.sessionCount(); n != 1 {
		t.Errorf("sessions: %d, want 1", n)
	}
	var out struct{ Session sessionJSON }
	c.ok(t, `{ session { data } }`, nil, &out)
	if len(out.Session.Data) != 0 {
		t.Errorf("bad input changed the data: %v", out.Session.Data)
	}
}

// A panic in a resolver is that request's INTERNAL_SERVER_ERROR, logged
// with its stack; the server keeps serving.
func TestPanicIsContained(t *testing.T) {
	t.Parallel()
	// A service without a database: any resolver that reaches storage
	// dereferences a nil store and panics.
	e := newEnv(t)
	broken, err := auth.NewService(nil, auth.Config{TTL: time.Hour, MaxAge: time.Hour, BcryptCost: 4, AllowSignup: true})
	if err != nil {
		t.Fatal(err)
	}
	logs := &testlog.Buffer{}
	srv := httptestServer(t, graph.Options{Auth: broken, Ready: e.store.Ping, Logger: slogTo(logs)})
	c := &client{e: &env{t: t, url: srv, logs: logs}, http: http.DefaultClient, header: http.Header{}}
	r := c.do(t, loginQuery, map[string]any{"u": "panic", "p": pw})
	if got := r.code(t); got != "INTERNAL_SERVER_ERROR" || r.Errors[0].Message != "internal server error" {
		t.Errorf("panic answered %q %q", got, r.Errors[0].Message)
	}
	if !strings.Contains(logs.String(), "resolver panic") || !strings.Contains(logs.String(), "goroutine") {
		t.Errorf("no panic with a stack in the log:\n%s", logs)
	}
	var out struct{ Me *userJSON }
	c.ok(t, `{ me { id } }`, nil, &out)
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client()
	r := c.do(t, registerQuery, map[string]any{"u": "hdr", "p": pw})
	for k, want := range map[string]string{
		"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
	} {
		if got := r.header.Get(k); got != want {
			t.Errorf("API %s: %q, want %q", k, got, want)
		}
	}
	res, err := http.Get(e.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	csp := res.Header.Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'self' https://cdn.jsdelivr.net 'sha256-", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("playground CSP %q lacks %q", csp, want)
		}
	}
	out := c.do(t, `mutation { deleteSession }`, nil)
	if got := out.header.Get("Clear-Site-Data"); got != `"cookies"` {
		t.Errorf("logout Clear-Site-Data: %q", got)
	}
}

// Neither responses nor logs ever carry a password, a hash or a token
// (other than AuthPayload.token).
func TestNoSecretsLeak(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client()
	reg := c.register(t, "leak", pw)
	u, _ := e.store.UserByKey(context.Background(), "leak")
	c.do(t, loginQuery, map[string]any{"u": "leak", "p": "wrong password"})
	var everything strings.Builder
	for _, q := range []string{introspectionQuery, `{ me { id username createdAt } sessions { ` + sessionFields + ` } session { id } }`} {
		r := c.do(t, q, nil)
		everything.Write(r.Data)
		fmt.Fprint(&everything, r.Errors)
	}
	secret := strings.SplitN(reg.Token, ".", 2)[1]
	for name, s := range map[string]string{"password": pw, "hash": u.PasswordHash, "secret": secret} {
		if strings.Contains(everything.String(), s) {
			t.Errorf("a response contains the %s", name)
		}
		if strings.Contains(e.logs.String(), s) {
			t.Errorf("the log contains the %s", name)
		}
	}
	if strings.Contains(everything.String(), "passwordHash") || strings.Contains(everything.String(), "secretHash") {
		t.Error("the schema exposes a hash field")
	}
}
