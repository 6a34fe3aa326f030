package graph_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
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
	st, err := storage.Open(context.Background(), uri, dbtest.Open(t).DatabaseName(), storage.Options{})
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
