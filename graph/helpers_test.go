package graph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/auth"
	"gatehouse/graph"
	"gatehouse/graph/model"
	"gatehouse/internal/dbtest"
	"gatehouse/internal/testlog"
	"gatehouse/storage"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

// clock is a test clock that only moves when told to.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is one gatehouse handler on a fresh database, served over real HTTP.
type env struct {
	t     *testing.T
	url   string
	store *storage.Store
	svc   *auth.Service
	clock *clock
	logs  *testlog.Buffer
}

type envOption func(*auth.Config, *graph.Options)

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	return newEnvOn(t, dbtest.Open(t), opts...)
}

// newEnvOn is newEnv on an existing store: a second server instance.
func newEnvOn(t *testing.T, st *storage.Store, opts ...envOption) *env {
	t.Helper()
	clk := &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	logs := &testlog.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	acfg := auth.Config{
		TTL: time.Hour, MaxAge: 24 * time.Hour, BcryptCost: 4, AllowSignup: true,
		Now: clk.Now, Logger: log,
	}
	gopts := graph.Options{Ready: st.Ping, Logger: log, HTTP: auth.HTTPConfig{CookieSecure: true}}
	for _, o := range opts {
		o(&acfg, &gopts)
	}
	svc, err := auth.NewService(st, acfg)
	if err != nil {
		t.Fatal(err)
	}
	gopts.Auth = svc
	srv := httptest.NewServer(graph.NewHandler(gopts))
	t.Cleanup(srv.Close)
	live, stop := context.WithCancel(context.Background())
	go svc.RunLive(live)
	t.Cleanup(stop)
	return &env{t: t, url: srv.URL, store: st, svc: svc, clock: clk, logs: logs}
}

// client is one device: its own cookie jar, and optionally a bearer token.
type client struct {
	e      *env
	http   *http.Client
	token  string
	header http.Header
}

func (e *env) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{e: e, http: &http.Client{Jar: jar}, header: http.Header{}}
}

// gqlError is one entry of a response's errors.
type gqlError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

type response struct {
	Data   json.RawMessage `json:"data"`
	Errors []gqlError      `json:"errors"`
	status int
	header http.Header
}

// code returns the extensions.code of the only error, failing otherwise.
func (r *response) code(t *testing.T) string {
	t.Helper()
	if len(r.Errors) != 1 {
		t.Fatalf("got %d errors, want 1: %+v (data %s)", len(r.Errors), r.Errors, r.Data)
	}
	c, _ := r.Errors[0].Extensions["code"].(string)
	return c
}

// do sends a GraphQL POST and decodes the response.
func (c *client) do(t *testing.T, query string, vars map[string]any) *response {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, c.e.url+"/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range c.header {
		req.Header[k] = v
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return c.send(t, req)
}

func (c *client) send(t *testing.T, req *http.Request) *response {
	t.Helper()
	res, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var r response
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("status %d, body not JSON: %q", res.StatusCode, raw)
	}
	r.status, r.header = res.StatusCode, res.Header
	return &r
}

// ok sends a query that must succeed and decodes its data into out.
func (c *client) ok(t *testing.T, query string, vars map[string]any, out any) {
	t.Helper()
	r := c.do(t, query, vars)
	if len(r.Errors) > 0 {
		t.Fatalf("%s: unexpected errors %+v\nserver log:\n%s", firstLine(query), r.Errors, c.e.logs)
	}
	if err := json.Unmarshal(r.Data, out); err != nil {
		t.Fatalf("decode %s: %v", r.Data, err)
	}
}

func firstLine(s string) string { return strings.SplitN(strings.TrimSpace(s), "\n", 2)[0] }

// sessionWithData is model.Session for responses that select data. The
// JSONObject scalar is JSON text on the server (model.JSONObject, a string
// without UnmarshalJSON) but an object on the wire, which the model type
// cannot decode; here data shadows it as a map, and every other field is
// the model's.
type sessionWithData struct {
	model.Session
	Data map[string]any `json:"data"`
}

// authPayload is model.AuthPayload whose session may carry data (see
// sessionWithData): registerQuery and loginQuery select every field.
type authPayload struct {
	model.AuthPayload
	Session sessionWithData `json:"session"`
}

const sessionFields = `id user { id username createdAt } data createdAt lastSeenAt expiresAt current userAgent ipAddress`

const registerQuery = `mutation($u: String!, $p: String!, $d: JSONObject) {
	register(username: $u, password: $p, data: $d) { token session { ` + sessionFields + ` } } }`

const loginQuery = `mutation($u: String!, $p: String!, $d: JSONObject) {
	login(username: $u, password: $p, data: $d) { token session { ` + sessionFields + ` } } }`

// register signs a new user up from c and makes c use the returned token.
func (c *client) register(t *testing.T, user, password string) authPayload {
	t.Helper()
	var out struct{ Register authPayload }
	c.ok(t, registerQuery, map[string]any{"u": user, "p": password}, &out)
	c.token = out.Register.Token
	return out.Register
}

// login logs c in and makes c use the returned token.
func (c *client) login(t *testing.T, user, password string) authPayload {
	t.Helper()
	var out struct{ Login authPayload }
	c.ok(t, loginQuery, map[string]any{"u": user, "p": password}, &out)
	c.token = out.Login.Token
	return out.Login
}

// me returns the username of the caller, or "" when signed out.
func (c *client) me(t *testing.T) string {
	t.Helper()
	var out struct{ Me *model.User }
	c.ok(t, `{ me { id username createdAt } }`, nil, &out)
	if out.Me == nil {
		return ""
	}
	return out.Me.Username
}

func (e *env) sessionCount() int64 {
	e.t.Helper()
	n, err := e.store.CountSessions(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// httptestServer serves a handler built from opts and returns its URL.
func httptestServer(t *testing.T, opts graph.Options) string {
	srv := httptest.NewServer(graph.NewHandler(opts))
	t.Cleanup(srv.Close)
	return srv.URL
}

// introspectionQuery is graphql-js's getIntrospectionQuery() with
// descriptions, as codegen and schema registries send it.
const introspectionQuery = `query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name
    ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }
}`
