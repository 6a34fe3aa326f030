package graph_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vektah/gqlparser/v2/gqlerror"

	"gatehouse/auth"
	"gatehouse/graph"
	"gatehouse/internal/dbtest"
	"gatehouse/storage"
)

// Every error a client can meet carries extensions.code, and bad input
// writes nothing.
func TestErrorCodes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.client()
	alice.register(t, "alice", pw)
	anon := e.client()

	deep := map[string]any{}
	for i := 0; i < 10; i++ {
		deep = map[string]any{"d": deep}
	}
	long := strings.Repeat("x", 16<<10)

	for _, tc := range []struct {
		name  string
		c     *client
		query string
		vars  map[string]any
		code  string
		msg   string // a substring of the message, when it matters
	}{
		{"username too short", anon, registerQuery, map[string]any{"u": "ab", "p": pw}, "BAD_USER_INPUT", "username must be at least 3"},
		{"username too long", anon, registerQuery, map[string]any{"u": strings.Repeat("é", 65), "p": pw}, "BAD_USER_INPUT", "at most 64"},
		{"username 60 KB", anon, registerQuery, map[string]any{"u": strings.Repeat("a", 60<<10), "p": pw}, "BAD_USER_INPUT", "username"},
		{"username with control char", anon, registerQuery, map[string]any{"u": "ali\u0007ce", "p": pw}, "BAD_USER_INPUT", "control"},
		{"password too short", anon, registerQuery, map[string]any{"u": "bob", "p": "1234567"}, "BAD_USER_INPUT", "at least 8 bytes"},
		{"password over 72 bytes", anon, registerQuery, map[string]any{"u": "bob", "p": strings.Repeat("p", 73)}, "BAD_USER_INPUT", "at most 72 bytes"},
		{"login password over 72 bytes", anon, loginQuery, map[string]any{"u": "alice", "p": pw + strings.Repeat("p", 73)}, "BAD_USER_INPUT", "at most 72 bytes"},
		{"username taken, any case", anon, registerQuery, map[string]any{"u": "ALICE", "p": pw}, "BAD_USER_INPUT", "username taken"},
		{"username taken, NFKC", anon, registerQuery, map[string]any{"u": "ａｌｉｃｅ", "p": pw}, "BAD_USER_INPUT", "username taken"},
		{"data not an object", anon, registerQuery, map[string]any{"u": "bob", "p": pw, "d": []any{1}}, "BAD_USER_INPUT", "must be a JSON object"},
		{"data key with $", anon, registerQuery, map[string]any{"u": "bob", "p": pw, "d": map[string]any{"a": map[string]any{"$gt": 1}}}, "BAD_USER_INPUT", "must not start with $"},
		{"data key with dot", anon, registerQuery, map[string]any{"u": "bob", "p": pw, "d": map[string]any{"a.b": 1}}, "BAD_USER_INPUT", "dot"},
		{"data key with NUL", anon, registerQuery, map[string]any{"u": "bob", "p": pw, "d": map[string]any{"a\x00": 1}}, "BAD_USER_INPUT", "NUL"},
		{"data too deep", anon, registerQuery, map[string]any{"u": "bob", "p": pw, "d": map[string]any{"d": deep}}, "BAD_USER_INPUT", "levels deep"},
		{"data too big", alice, `mutation($d: JSONObject!) { updateSessionData(data: $d) { id } }`, map[string]any{"d": map[string]any{"s": long}}, "BAD_USER_INPUT", "16384 bytes"},
		{"sessions first out of range", alice, `{ sessions(first: 101) { id } }`, nil, "BAD_USER_INPUT", "first must be 1 to 100"},
		{"sessions first zero", alice, `{ sessions(first: 0) { id } }`, nil, "BAD_USER_INPUT", "first"},
		{"wrong password", anon, loginQuery, map[string]any{"u": "alice", "p": "wrong password"}, "UNAUTHENTICATED", "invalid username or password"},
		{"sessions without a session", anon, `{ sessions { id } }`, nil, "UNAUTHENTICATED", ""},
		{"session by id without a session", anon, `{ session(id: "AAAAAAAAAAAAAAAAAAAAAA") { id } }`, nil, "UNAUTHENTICATED", ""},
		{"deleteSession without a session", anon, `mutation { deleteSession }`, nil, "UNAUTHENTICATED", ""},
		{"deleteOtherSessions without a session", anon, `mutation { deleteOtherSessions }`, nil, "UNAUTHENTICATED", ""},
		{"updateSessionData without a session", anon, `mutation { updateSessionData(data: {}) { id } }`, nil, "UNAUTHENTICATED", ""},
		{"changePassword without a session", anon, `mutation { changePassword(currentPassword: "x", newPassword: "yyyyyyyy") { token } }`, nil, "UNAUTHENTICATED", ""},
		{"changePassword new too short", alice, `mutation { changePassword(currentPassword: "correct horse", newPassword: "short") { token } }`, nil, "BAD_USER_INPUT", "newPassword must be at least 8"},
		{"parse error", anon, `{ me { `, nil, "GRAPHQL_PARSE_FAILED", ""},
		{"unknown field", anon, `{ me { password } }`, nil, "GRAPHQL_VALIDATION_FAILED", ""},
		{"missing argument", anon, `mutation { login(username: "x") { token } }`, nil, "GRAPHQL_VALIDATION_FAILED", ""},
		{"wrong variable type", anon, loginQuery, map[string]any{"u": map[string]any{"a": 1}, "p": pw}, "GRAPHQL_VALIDATION_FAILED", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.sessionCount()
			r := tc.c.do(t, tc.query, tc.vars)
			if got := r.code(t); got != tc.code {
				t.Errorf("code: got %q, want %q (message %q)", got, tc.code, r.Errors[0].Message)
			}
			if !strings.Contains(r.Errors[0].Message, tc.msg) {
				t.Errorf("message: got %q, want it to contain %q", r.Errors[0].Message, tc.msg)
			}
			if after := e.sessionCount(); after != before {
				t.Errorf("sessions: %d before, %d after a refused request", before, after)
			}
		})
	}
	if _, err := e.store.UserByKey(context.Background(), "bob"); err == nil {
		t.Error("a refused register created user bob")
	}
	if alice.me(t) != "alice" {
		t.Error("alice's session did not survive the bad requests")
	}
}

func TestSignupDisabled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *auth.Config, _ *graph.Options) { c.AllowSignup = false })
	r := e.client().do(t, registerQuery, map[string]any{"u": "eve", "p": pw})
	if got := r.code(t); got != "FORBIDDEN" {
		t.Errorf("register with sign-up off: code %q, want FORBIDDEN", got)
	}
	if err := e.svc.CreateUser(context.Background(), "eve", pw); err != nil {
		t.Fatalf("admin CreateUser: %v", err)
	}
	e.client().login(t, "eve", pw)
}

// A database failure is an INTERNAL_SERVER_ERROR whose message reveals
// nothing; the detail goes to the server log only.
func TestDatabaseFailureIsMasked(t *testing.T) {
	t.Parallel()
	// A server on its own connection to the test's database, so that
	// closing it breaks this server only.
	uri, _ := dbtest.URI(t)
	st, err := storage.Open(context.Background(), uri, dbtest.Open(t).DatabaseName(), dbtest.Options(t, storage.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvOn(t, st)
	c := e.client()
	c.register(t, "frank", pw)
	if err := st.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`{ me { id } }`, `{ sessions { id } }`} {
		r := c.do(t, q, nil)
		if got := r.code(t); got != "INTERNAL_SERVER_ERROR" {
			t.Errorf("%s: code %q, want INTERNAL_SERVER_ERROR", q, got)
		}
		if msg := r.Errors[0].Message; msg != "internal server error" {
			t.Errorf("%s: message %q leaks detail", q, msg)
		}
	}
	r := e.client().do(t, loginQuery, map[string]any{"u": "frank", "p": pw})
	if got := r.code(t); got != "INTERNAL_SERVER_ERROR" {
		t.Errorf("login: code %q, want INTERNAL_SERVER_ERROR", got)
	}
	if !regexp.MustCompile(`msg="request failed" id=[0-9a-f]{16} `).MatchString(e.logs.String()) {
		t.Errorf("the error's log line lacks the request id:\n%s", e.logs)
	}
	if !strings.Contains(e.logs.String(), "client is disconnected") {
		t.Errorf("the server log lacks the detail:\n%s", e.logs)
	}
	if strings.Contains(e.logs.String(), c.token) || strings.Contains(e.logs.String(), pw) {
		t.Error("the server log contains a token or password")
	}
}

// Requests refused before GraphQL runs keep their status, and answer in
// GraphQL's error format with extensions.code BAD_REQUEST; the CSRF refusal
// is pinned byte for byte.
func TestRefusedRequestBodies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const csrf = `{"errors":[{"message":"this request authenticates with a cookie and could come from another site: ` +
		`send it as POST with Content-Type: application/json, or add an Apollo-Require-Preflight header",` +
		`"extensions":{"code":"BAD_REQUEST"}}]}`
	for _, tc := range []struct {
		name, method, ct string
		cookie           bool
		status           int
		msg              string
	}{
		{"cross-site capable with cookie", http.MethodPost, "text/plain", true, http.StatusBadRequest, ""},
		{"not JSON", http.MethodPost, "text/plain", false, http.StatusUnsupportedMediaType, "POST bodies must be application/json"},
		{"wrong method", http.MethodPut, "application/json", false, http.StatusMethodNotAllowed, "use GET for queries or POST with application/json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, e.url+"/query", strings.NewReader(`{"query":"{ me { id } }"}`))
			req.Header.Set("Content-Type", tc.ct)
			if tc.cookie {
				req.AddCookie(&http.Cookie{Name: cookieName, Value: auth.NewToken().String()})
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tc.status {
				t.Errorf("status: got %d, want %d", res.StatusCode, tc.status)
			}
			if got := res.Header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type: got %q, want application/json", got)
			}
			if tc.msg == "" {
				if string(body) != csrf {
					t.Errorf("body:\ngot  %s\nwant %s", body, csrf)
				}
				return
			}
			var r response
			if err := json.Unmarshal(body, &r); err != nil {
				t.Fatalf("body not JSON: %q", body)
			}
			if len(r.Errors) != 1 || r.Errors[0].Message != tc.msg || r.Errors[0].Extensions["code"] != "BAD_REQUEST" {
				t.Errorf("errors: got %+v, want one with message %q and code BAD_REQUEST", r.Errors, tc.msg)
			}
		})
	}
}

// The one mapping from auth's codes to what a client sees: the GraphQL
// code, the message shown or hidden, retryAfter for throttled errors.
func TestPresentError(t *testing.T) {
	t.Parallel()
	const hidden = "internal server error"
	present := graph.PresentError(slog.New(slog.DiscardHandler))
	for _, tc := range []struct {
		name       string
		err        error
		code       string
		msg        string
		retryAfter any
	}{
		{"invalid credentials", fmt.Errorf("login: %w", auth.ErrInvalidCredentials), "UNAUTHENTICATED", "invalid username or password", nil},
		{"no session", auth.ErrUnauthenticated, "UNAUTHENTICATED", "not signed in", nil},
		{"sign-up disabled", auth.ErrSignupDisabled, "FORBIDDEN", "sign-up is disabled", nil},
		{"wrong current password", auth.ErrWrongPassword, "BAD_USER_INPUT", "current password is incorrect", nil},
		{"input error", fmt.Errorf("register: %w", &auth.InputError{Field: "username", Reason: "taken"}), "BAD_USER_INPUT", "username taken", nil},
		{"throttled", &auth.ThrottledError{RetryAfter: 1500 * time.Millisecond}, "TOO_MANY_REQUESTS", "too many requests, retry later", 2},
		{"bcrypt busy", auth.ErrBusy, "TOO_MANY_REQUESTS", "too many requests, retry later", 1},
		{"bad request", &auth.Error{Code: auth.EBadRequest, Message: "refused"}, "BAD_REQUEST", "refused", nil},
		{"internal code", &auth.Error{Code: auth.EInternal, Message: "detail"}, "INTERNAL_SERVER_ERROR", hidden, nil},
		{"unexpected", errors.New("storage: session by id: connection refused"), "INTERNAL_SERVER_ERROR", hidden, nil},
		{"gqlgen's own", &gqlerror.Error{Message: "too deep", Extensions: map[string]any{"code": "DEPTH_LIMIT_EXCEEDED"}}, "DEPTH_LIMIT_EXCEEDED", "too deep", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := present(context.Background(), tc.err)
			if got.Extensions["code"] != tc.code || got.Message != tc.msg || got.Extensions["retryAfter"] != tc.retryAfter {
				t.Errorf("got message %q, extensions %v; want %q, code %s, retryAfter %v", got.Message, got.Extensions, tc.msg, tc.code, tc.retryAfter)
			}
		})
	}
}

// Every error the server writes carries extensions.code, in a GraphQL
// error body, with the HTTP status of the table in docs/operations.md
// ("Status codes"): each row of that table is a row here.
func TestEveryRefusalHasACode(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	down := newEnv(t, func(_ *auth.Config, o *graph.Options) {
		o.Ready = func(context.Context) error { return errors.New("storage: ping: connection refused") }
	})
	gql := func(q string) string { b, _ := json.Marshal(map[string]string{"query": q}); return string(b) }
	get := func(params string) string { return "/query?" + params }
	q := url.QueryEscape
	big := `{"query":"{ me { id } }","variables":{"x":"` + strings.Repeat("a", 70<<10) + `"}}`
	nested := "{ me { id } }"
	for range 15 {
		nested = "{ __schema { types { fields { type " + strings.Repeat("{ ofType ", 14) + "{ name }" + strings.Repeat(" }", 14) + " } } } }"
	}
	const (
		ctJSON     = "application/json"
		ctGQL      = "application/graphql-response+json"
		badRequest = "BAD_REQUEST"
		validation = "GRAPHQL_VALIDATION_FAILED"
	)
	for _, tc := range []struct {
		name, method, path, ct, body string
		header                       map[string]string // "Cookie" adds a session cookie
		env                          *env
		status                       int
		code, allow                  string
	}{
		// Refused before GraphQL runs.
		{name: "body not JSON", method: "POST", path: "/query", ct: ctJSON, body: `{"query": "mutation { login(username: \"u\", password: \"` + pw + `\") { token } }"`, status: 400, code: badRequest},
		{name: "body not an object", method: "POST", path: "/query", ct: ctJSON, body: `[1]`, status: 400, code: badRequest},
		{name: "POST text/plain", method: "POST", path: "/query", ct: "text/plain", body: gql("{ me { id } }"), status: 415, code: badRequest},
		{name: "POST without Content-Type", method: "POST", path: "/query", body: gql("{ me { id } }"), status: 415, code: badRequest},
		{name: "POST form", method: "POST", path: "/query", ct: "application/x-www-form-urlencoded", body: "query=x", status: 415, code: badRequest},
		{name: "body over 64 KiB", method: "POST", path: "/query", ct: ctJSON, body: big, status: 413, code: badRequest},
		{name: "variables not an object", method: "POST", path: "/query", ct: ctJSON, body: `{"query":"{ me { id } }","variables":[1]}`, status: 400, code: badRequest},
		{name: "query not a string", method: "POST", path: "/query", ct: ctJSON, body: `{"query":5}`, status: 400, code: badRequest},
		{name: "body over 10,000 JSON values", method: "POST", path: "/query", ct: ctJSON, body: `{"query":"{ me { id } }","variables":{"x":[` + strings.Repeat("1,", 10000) + `1]}}`, status: 413, code: badRequest},
		{name: "PUT", method: "PUT", path: "/query", ct: ctJSON, body: gql("{ me { id } }"), status: 405, code: badRequest, allow: "GET, POST"},
		{name: "DELETE", method: "DELETE", path: "/query", status: 405, code: badRequest, allow: "GET, POST"},
		{name: "GET mutation", method: "GET", path: get("query=" + q("mutation { deleteSession }")), status: 405, code: badRequest, allow: "POST"},
		{name: "GET mutation among queries", method: "GET", path: get("operationName=M&query=" + q("query Q { me { id } } mutation M { deleteSession }")), status: 405, code: badRequest, allow: "POST"},
		{name: "GET query string not decodable", method: "GET", path: get("query=%zz"), status: 400, code: badRequest},
		{name: "GET variables not JSON", method: "GET", path: get("query=" + q("{ me { id } }") + "&variables=x"), status: 400, code: badRequest},
		{name: "GET extensions not JSON", method: "GET", path: get("query=" + q("{ me { id } }") + "&extensions=%7B"), status: 400, code: badRequest},
		{name: "cookie GET without preflight header (CSRF)", method: "GET", path: get("query=" + q("{ me { id } }")), header: map[string]string{"Cookie": ""}, status: 400, code: badRequest},
		{name: "cookie POST text/plain (CSRF)", method: "POST", path: "/query", ct: "text/plain", body: gql("{ me { id } }"), header: map[string]string{"Cookie": ""}, status: 400, code: badRequest},
		{name: "unknown path", method: "GET", path: "/graphql", status: 404, code: badRequest},
		{name: "/metrics on the API's port", method: "GET", path: "/metrics", status: 404, code: badRequest},
		{name: "POST /healthz", method: "POST", path: "/healthz", status: 405, code: badRequest, allow: "GET, HEAD"},
		{name: "POST /", method: "POST", path: "/", ct: ctJSON, body: gql("{ me { id } }"), status: 405, code: badRequest, allow: "GET, HEAD"},
		{name: "readyz, database down", method: "GET", path: "/readyz", env: down, status: 503, code: "INTERNAL_SERVER_ERROR"},
		// Not GraphQL for this schema.
		{name: "no query", method: "POST", path: "/query", ct: ctJSON, body: `{}`, status: 422, code: validation},
		{name: "GET without query", method: "GET", path: "/query", status: 422, code: validation},
		{name: "parse error", method: "POST", path: "/query", ct: ctJSON, body: gql("{ me { "), status: 422, code: "GRAPHQL_PARSE_FAILED"},
		{name: "validation error", method: "POST", path: "/query", ct: ctJSON, body: gql("{ me { password } }"), status: 422, code: validation},
		{name: "validation error, graphql-response+json", method: "POST", path: "/query", ct: ctJSON, body: gql("{ me { password } }"), header: map[string]string{"Accept": ctGQL}, status: 400, code: validation},
		{name: "GET validation error, graphql-response+json", method: "GET", path: get("query=" + q("{ nope }")), header: map[string]string{"Accept": ctGQL}, status: 400, code: validation},
		{name: "unknown operationName", method: "POST", path: "/query", ct: ctJSON, body: `{"query":"query A { me { id } }","operationName":"B"}`, status: 422, code: validation},
		// Valid GraphQL, refused while it runs: 200, the code says why.
		{name: "too deep", method: "POST", path: "/query", ct: ctJSON, body: gql(nested), status: 200, code: "DEPTH_LIMIT_EXCEEDED"},
		{name: "needs a session", method: "POST", path: "/query", ct: ctJSON, body: gql("{ sessions { id } }"), status: 200, code: "UNAUTHENTICATED"},
		{name: "unknown persisted query", method: "GET", path: get(`extensions=` + q(`{"persistedQuery":{"version":1,"sha256Hash":"`+strings.Repeat("0", 64)+`"}}`)), status: 200, code: "PERSISTED_QUERY_NOT_FOUND"},
		// A WebSocket upgrade that is not graphql-transport-ws is refused;
		// another Upgrade header (curl --http2 offers h2c) is ignored.
		{name: "GET with Upgrade: websocket", method: "GET", path: get("query=" + q("{ me { id } }")), header: map[string]string{"Upgrade": "websocket"}, status: 400, code: "BAD_REQUEST"},
		{name: "POST with Upgrade: websocket", method: "POST", path: "/query", ct: ctJSON, body: gql("{ me { id } }"), header: map[string]string{"Upgrade": "websocket"}, status: 400, code: "BAD_REQUEST"},
		{name: "GET with Upgrade: h2c", method: "GET", path: get("query=" + q("{ me { id } }")), header: map[string]string{"Upgrade": "h2c"}, status: 200},
		{name: "POST with Upgrade: h2c", method: "POST", path: "/query", ct: ctJSON, body: gql("{ me { id } }"), header: map[string]string{"Upgrade": "h2c"}, status: 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := cmp.Or(tc.env, e)
			req, _ := http.NewRequest(tc.method, srv.url+tc.path, strings.NewReader(tc.body))
			if tc.ct != "" {
				req.Header.Set("Content-Type", tc.ct)
			}
			for k, v := range tc.header {
				if k == "Cookie" {
					req.AddCookie(&http.Cookie{Name: cookieName, Value: auth.NewToken().String()})
				} else {
					req.Header.Set(k, v)
				}
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.status {
				t.Errorf("status %d, want %d (body %s)", res.StatusCode, tc.status, body)
			}
			if got := res.Header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow %q, want %q", got, tc.allow)
			}
			if ct := res.Header.Get("Content-Type"); ct != ctJSON && ct != ctGQL {
				t.Errorf("Content-Type %q, want JSON (body %s)", ct, body)
			}
			var r response
			if err := json.Unmarshal(body, &r); err != nil {
				t.Fatalf("body not JSON: %q", body)
			}
			if tc.code == "" {
				if len(r.Errors) > 0 {
					t.Errorf("errors %+v, want none", r.Errors)
				}
				return
			}
			if len(r.Errors) == 0 {
				t.Fatalf("no errors in %s", body)
			}
			for _, e := range r.Errors {
				if e.Extensions["code"] != tc.code {
					t.Errorf("error %q: code %v, want %s", e.Message, e.Extensions["code"], tc.code)
				}
			}
			if strings.Contains(string(body), pw) || strings.Contains(string(body), "storage:") || strings.Contains(string(body), "Go struct") {
				t.Errorf("the answer repeats the request's password or the error's detail: %s", body)
			}
		})
	}
}

// TestHungUpClientIsNoServerError: a request that failed because its
// client went away is logged at debug level, not as the server's error
// (a client hanging up in a loop filled a red team's log with 600,000).
func TestHungUpClientIsNoServerError(t *testing.T) {
	t.Parallel()
	var logs strings.Builder
	present := graph.PresentError(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	failed := errors.New("storage: session by id: context canceled")
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		ctx   context.Context
		level string
	}{{context.Background(), "level=ERROR"}, {gone, "level=DEBUG"}} {
		logs.Reset()
		if got := present(tc.ctx, failed).Extensions["code"]; got != "INTERNAL_SERVER_ERROR" {
			t.Errorf("code %v, want INTERNAL_SERVER_ERROR", got)
		}
		if line := logs.String(); !strings.Contains(line, tc.level+` msg="request failed"`) {
			t.Errorf("logged %q, want it at %s", line, tc.level)
		}
	}
}
