package auth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// serve runs one request through s.Middleware(cfg, ...) and returns what
// the handler saw in its context, and the recorded response.
func serve(t *testing.T, s *Service, cfg HTTPConfig, r *http.Request, handle func(ctx context.Context)) *httptest.ResponseRecorder {
	t.Helper()
	called := false
	h := s.Middleware(cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		called = true
		if handle != nil {
			handle(r.Context())
		}
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if !called {
		t.Fatal("middleware did not call the next handler")
	}
	return w
}

// setCookies returns the Set-Cookie headers of w, parsed.
func setCookies(w *httptest.ResponseRecorder) []*http.Cookie {
	return w.Result().Cookies()
}

// checkCleared checks that c deletes the session cookie.
func checkCleared(t *testing.T, c *http.Cookie, name string, secure bool) {
	t.Helper()
	if c.Name != name {
		t.Errorf("cookie name = %q, want %q", c.Name, name)
	}
	if c.Value != "" {
		t.Errorf("cleared cookie value = %q, want empty", c.Value)
	}
	if c.MaxAge >= 0 {
		t.Errorf("cleared cookie MaxAge = %d, want < 0 (Max-Age=0 on the wire)", c.MaxAge)
	}
	if !strings.Contains(c.Raw, "Max-Age=0") {
		t.Errorf("cleared cookie %q lacks Max-Age=0", c.Raw)
	}
	checkAttrs(t, c, secure)
}

// checkAttrs checks the attributes every session cookie carries.
func checkAttrs(t *testing.T, c *http.Cookie, secure bool) {
	t.Helper()
	if c.Path != "/" || c.Domain != "" {
		t.Errorf("cookie Path, Domain = %q, %q; want %q and none", c.Path, c.Domain, "/")
	}
	if !c.HttpOnly {
		t.Errorf("cookie %q is not HttpOnly", c.Raw)
	}
	if c.SameSite != http.SameSiteLaxMode {
		t.Errorf("cookie %q SameSite = %v, want Lax", c.Raw, c.SameSite)
	}
	if c.Secure != secure {
		t.Errorf("cookie %q Secure = %v, want %v", c.Raw, c.Secure, secure)
	}
}

// apiRequest is a request as an API client sends it: POST with a JSON
// body, which CSRF prevention lets through with a cookie.
func apiRequest() *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{}`))
	r.Header.Set("Content-Type", "application/json")
	return r
}
