package graph_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"gatehouse/auth"
	"gatehouse/graph"
	"gatehouse/internal/metrics"
)

// The GraphQL-over-HTTP specification: media types and status codes.
func TestGraphQLOverHTTP(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	post := func(accept, body string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodPost, e.url+"/query", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res, string(b)
	}
	const gqlResponse = "application/graphql-response+json"
	for _, tc := range []struct {
		name, accept, body string
		status             int
		ctype              string
	}{
		{"ok, graphql-response+json", gqlResponse, `{"query":"{ me { id } }"}`, 200, gqlResponse},
		{"ok, json", "application/json", `{"query":"{ me { id } }"}`, 200, "application/json"},
		{"parse error, graphql-response+json", gqlResponse, `{"query":"{ me {"}`, 400, gqlResponse},
		{"validation error, graphql-response+json", gqlResponse, `{"query":"{ nope }"}`, 400, gqlResponse},
		{"validation error, json", "application/json", `{"query":"{ nope }"}`, 422, "application/json"},
		{"field error is still 200", gqlResponse, `{"query":"{ sessions { id } }"}`, 200, gqlResponse},
		{"body not JSON", gqlResponse, `{"query":`, 400, gqlResponse},
	} {
		res, body := post(tc.accept, tc.body)
		if res.StatusCode != tc.status || !strings.HasPrefix(res.Header.Get("Content-Type"), tc.ctype) {
			t.Errorf("%s: status %d type %q, want %d %q (body %s)", tc.name, res.StatusCode, res.Header.Get("Content-Type"), tc.status, tc.ctype, body)
		}
	}

	get := func(params url.Values) int {
		res, err := http.Get(e.url + "/query?" + params.Encode())
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if got := get(url.Values{"query": {"query Q($n: Int) { sessions(first: $n) { id } }"}, "variables": {`{"n": 3}`}, "operationName": {"Q"}}); got != 200 {
		t.Errorf("GET with variables and operationName: %d", got)
	}
	if got := get(url.Values{"query": {"{ me { id } }"}, "variables": {`not json`}}); got != 400 {
		t.Errorf("GET with bad variables: %d, want 400", got)
	}
	for _, tc := range []struct {
		method, ctype string
		status        int
	}{
		{http.MethodPut, "application/json", 405},
		{http.MethodDelete, "", 405},
		{http.MethodPost, "text/plain", 415},
		{http.MethodPost, "application/graphql", 415},
	} {
		req, _ := http.NewRequest(tc.method, e.url+"/query", strings.NewReader(`{"query":"{ me { id } }"}`))
		if tc.ctype != "" {
			req.Header.Set("Content-Type", tc.ctype)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tc.status {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.ctype, res.StatusCode, tc.status)
		}
	}
}

// Apollo's automatic persisted queries: hash only, then hash and query,
// then hash only again.
func TestAutomaticPersistedQueries(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client()
	c.register(t, "apq", pw)
	query := "query Me { me { username } }"
	sum := sha256.Sum256([]byte(query))
	ext := `"extensions":{"persistedQuery":{"version":1,"sha256Hash":"` + hex.EncodeToString(sum[:]) + `"}}`
	send := func(body string) *response {
		req, _ := http.NewRequest(http.MethodPost, e.url+"/query", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+c.token)
		return c.send(t, req)
	}
	if r := send(`{` + ext + `}`); r.code(t) != "PERSISTED_QUERY_NOT_FOUND" {
		t.Errorf("first hash-only request: %+v", r.Errors)
	}
	if r := send(`{"query":"` + query + `",` + ext + `}`); !strings.Contains(string(r.Data), "apq") {
		t.Errorf("request with the query: %s %+v", r.Data, r.Errors)
	}
	if r := send(`{` + ext + `}`); !strings.Contains(string(r.Data), "apq") {
		t.Errorf("second hash-only request: %s %+v", r.Data, r.Errors)
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	var m *metrics.Metrics
	var svc *auth.Service // read at each scrape, once the env has made it
	e := newEnv(t, func(c *auth.Config, o *graph.Options) {
		m = metrics.New(func() int64 { return 0 })
		m.WatchSubscriptions(func() int { return svc.Subscriptions() })
		c.Meter = m
		o.Observer = m
	})
	svc = e.svc
	// Served on a port of its own, as run serves it (METRICS_ADDR).
	metricsSrv := httptest.NewServer(m.Handler())
	t.Cleanup(metricsSrv.Close)
	scrape := func() string {
		t.Helper()
		res, err := http.Get(metricsSrv.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return string(body)
	}
	c := e.client()
	c.register(t, "metric", pw)
	c.do(t, `query WhoAmI { me { id } }`, nil)
	c.do(t, loginQuery, map[string]any{"u": "metric", "p": "wrong password"})
	other := e.client()
	other.login(t, "metric", pw)
	s := e.bearerSocket(t, other)
	s.subscribe("1", sessionEventsQuery)
	e.waitSubscriptions(t, 1)
	if text := scrape(); !strings.Contains(text, "\ngatehouse_subscriptions 1\n") {
		t.Errorf("/metrics with one subscription lacks gatehouse_subscriptions 1")
	}
	c.do(t, `mutation { deleteOtherSessions }`, nil)
	c.do(t, `mutation { deleteSession }`, nil)

	text := scrape()
	for _, want := range []string{
		`gatehouse_logins_total{outcome="ok"} 1`,
		`gatehouse_logins_total{outcome="bad_credentials"} 1`,
		`gatehouse_logins_total{outcome="throttled"} 0`,
		`gatehouse_sessions_created_total 2`,
		`gatehouse_sessions_deleted_total{reason="others"} 1`,
		`gatehouse_sessions_deleted_total{reason="logout"} 1`,
		`gatehouse_session_lookups_total{result="ok"}`,
		`gatehouse_request_duration_seconds_count{operation="WhoAmI"} 1`,
		`gatehouse_bcrypt_queue 0`,
		`gatehouse_bcrypt_wait_seconds_count 3`, // register, login, login
		`go_goroutines`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// One log line per request: id (echoed in a header), operation, status,
// duration; never the token.
func TestRequestLog(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client()
	token := c.register(t, "logged", pw).Token
	c.header.Set("X-Request-Id", "req-123")
	r := c.do(t, `query Who { me { id } }`, nil)
	if got := r.header.Get("X-Request-Id"); got != "req-123" {
		t.Errorf("X-Request-Id: %q, want the client's", got)
	}
	c.header.Set("X-Request-Id", "bad id with spaces")
	if got := c.do(t, `{ me { id } }`, nil).header.Get("X-Request-Id"); !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(got) {
		t.Errorf("made-up request id %q", got)
	}
	line := regexp.MustCompile(`msg=request id=req-123 method=POST operation=Who status=200 duration=\S+`)
	if !line.MatchString(e.logs.String()) {
		t.Errorf("no access log line for the request:\n%s", e.logs)
	}
	if strings.Contains(e.logs.String(), token) || strings.Contains(e.logs.String(), pw) {
		t.Error("the log contains a token or password")
	}
}
