package graph_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"gatehouse/auth"
	"gatehouse/graph"
)

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
	for _, want := range []string{"script-src 'self';", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("playground CSP %q lacks %q", csp, want)
		}
	}
	out := c.do(t, `mutation { deleteSession }`, nil)
	if got := out.header.Get("Clear-Site-Data"); got != `"cookies"` {
		t.Errorf("logout Clear-Site-Data: %q", got)
	}
}

// A page on a sibling subdomain (or a man in the middle on plain http) can
// set a cookie for the API's host: without a prefix, it could plant its own
// session in a victim's browser (then the victim's data goes to the
// attacker's account) or overwrite the victim's. Browsers refuse that for a
// __Host- cookie, which must be Secure with Path=/ and no Domain; the
// unprefixed name of older versions is still read, as a transition, and
// moved to the new name once it proves live.
func TestAttackPlantedCookie(t *testing.T) {
	t.Parallel()
	e := newEnv(t) // COOKIE_SECURE on, as by default
	const oldName = auth.DefaultCookieName
	send := func(query string, cookies map[string]string) *response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, e.url+"/query", strings.NewReader(`{"query":"`+query+`"}`))
		req.Header.Set("Content-Type", "application/json")
		for name, value := range cookies {
			req.AddCookie(&http.Cookie{Name: name, Value: value})
		}
		return e.client().send(t, req)
	}
	me := func(r *response) string {
		t.Helper()
		var out struct{ Me *struct{ Username string } }
		if err := json.Unmarshal(r.Data, &out); err != nil || len(r.Errors) > 0 {
			t.Fatalf("me: %s %+v", r.Data, r.Errors)
		}
		if out.Me == nil {
			return ""
		}
		return out.Me.Username
	}

	r := send(`mutation { register(username: \"victim\", password: \"`+pw+`\") { token } }`, nil)
	c := sessionCookie(t, r.header)
	if c == nil || c.Name != "__Host-gatehouse_session" || !c.Secure || c.Path != "/" || c.Domain != "" {
		t.Fatalf("session cookie %+v, want __Host-gatehouse_session, Secure, Path=/, no Domain", c)
	}
	victim := c.Value
	planted := e.client().register(t, "attacker", pw).Token

	// What a browser can hold once a sibling planted its cookie: both
	// names. The __Host- cookie, which no sibling can set, decides.
	if got := me(send(`{ me { username } }`, map[string]string{cookieName: victim, oldName: planted})); got != "victim" {
		t.Errorf("with a planted unprefixed cookie beside the victim's: me = %q, want victim", got)
	}

	// An upgrade signs nobody out: the unprefixed cookie an older version
	// set is honoured, and answered with the same token under the new name
	// and the old cookie expired.
	r = send(`{ me { username } }`, map[string]string{oldName: victim})
	if got := me(r); got != "victim" {
		t.Errorf("with the old cookie alone: me = %q, want victim", got)
	}
	moved, old := sessionCookie(t, r.header), namedCookie(t, r.header, oldName)
	if moved == nil || moved.Value != victim || !moved.Secure || moved.Path != "/" || moved.MaxAge <= 0 {
		t.Errorf("the old cookie was not moved to %s: %+v", cookieName, moved)
	}
	if old == nil || old.Value != "" || old.MaxAge >= 0 {
		t.Errorf("the old cookie was not expired: %+v", old)
	}
	if got := me(send(`{ me { username } }`, map[string]string{cookieName: moved.Value})); got != "victim" {
		t.Errorf("with the moved cookie: me = %q, want victim", got)
	}

	// Logout expires both names.
	r = send(`mutation { deleteSession }`, map[string]string{cookieName: victim, oldName: victim})
	for _, name := range []string{cookieName, oldName} {
		if c := namedCookie(t, r.header, name); c == nil || c.Value != "" || c.MaxAge >= 0 {
			t.Errorf("logout did not expire %s: %+v", name, c)
		}
	}

	// Over plain http browsers refuse a __Host- cookie: without Secure the
	// name has no prefix.
	plain := newEnv(t, func(_ *auth.Config, o *graph.Options) { o.HTTP.CookieSecure = false })
	r = plain.client().do(t, registerQuery, map[string]any{"u": "plain", "p": pw})
	if c := namedCookie(t, r.header, oldName); c == nil || c.Secure {
		t.Errorf("COOKIE_SECURE=false: cookie %+v, want %s without Secure", c, oldName)
	}
	if c := sessionCookie(t, r.header); c != nil {
		t.Errorf("COOKIE_SECURE=false set %s", c.Name)
	}
}
