package graph_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"gatehouse/auth"
	"gatehouse/graph"
	"gatehouse/graph/model"
	"gatehouse/internal/testlog"
)

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
	var out struct{ Session sessionWithData }
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
	var out struct{ Me *model.User }
	c.ok(t, `{ me { id } }`, nil, &out)
}
