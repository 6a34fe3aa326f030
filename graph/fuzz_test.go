package graph_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"gatehouse/auth"
	"gatehouse/graph"
	"gatehouse/internal/dbtest"
	"gatehouse/internal/testlog"
)

// FuzzRequest throws arbitrary bodies at the real handler on a real
// database: whatever comes in, the answer is never a server error.
func FuzzRequest(f *testing.F) {
	for _, s := range []string{
		`{"query":"{ me { id } }"}`,
		`{"query":"mutation { register(username: \"fuzz\", password: \"correct horse\") { token } }"}`,
		`{"query":"mutation { login(username: \"fuzz\", password: \"x\") { token } }"}`,
		`{"query":"mutation($d: JSONObject!) { updateSessionData(data: $d) { id } }","variables":{"d":{"a":[1]}}}`,
		`{"query":"{ session(id: \"AAAAAAAAAAAAAAAAAAAAAA\") { id } sessions(first: 5) { id } }"}`,
		`{"query":"{ __schema { types { name } } }"}`,
		`{"query": "{ me`, `[]`, ``,
	} {
		f.Add([]byte(s), "")
	}
	f.Add([]byte(`{"query":"{ me { id } }"}`), strings.Repeat("A", 22)+"."+strings.Repeat("B", 43))
	st := dbtest.Open(f)
	svc, err := auth.NewService(st, auth.Config{TTL: time.Hour, MaxAge: time.Hour, BcryptCost: 4, AllowSignup: true})
	if err != nil {
		f.Fatal(err)
	}
	h := graph.NewHandler(graph.Options{Auth: svc, Ready: st.Ping, Logger: slogTo(&testlog.Buffer{})})
	f.Fuzz(func(t *testing.T, body []byte, token string) {
		req := httptest.NewRequest(http.MethodPost, "/query", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" && !strings.ContainsAny(token, "\x00\r\n") {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 || strings.Contains(rec.Body.String(), "INTERNAL_SERVER_ERROR") {
			t.Fatalf("status %d for body %q: %s", rec.Code, body, rec.Body)
		}
	})
}
