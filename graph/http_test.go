package graph_test

import (
	"bytes"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"gatehouse/auth"
	"gatehouse/graph"
)

// cookieName is the session cookie's name on the tests' servers, whose
// cookie is Secure (the default).
var cookieName = auth.HTTPConfig{CookieSecure: true}.SessionCookieName()

// sessionCookie returns the Set-Cookie of the session cookie in h, or nil.
func sessionCookie(t *testing.T, h http.Header) *http.Cookie {
	return namedCookie(t, h, cookieName)
}

// namedCookie returns the last Set-Cookie of the named cookie in h (the
// one a browser keeps), or nil.
func namedCookie(t *testing.T, h http.Header, name string) *http.Cookie {
	t.Helper()
	var last *http.Cookie
	for _, line := range h.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err == nil && c.Name == name {
			last = c
		}
	}
	return last
}

// Browsers authenticate with the HttpOnly cookie login sets; logout
// expires it.
func TestCookieSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	browser := e.client()
	r := browser.do(t, registerQuery, map[string]any{"u": "kim", "p": pw})
	c := sessionCookie(t, r.header)
	if c == nil {
		t.Fatal("register set no session cookie")
	}
	if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
		t.Errorf("cookie attributes: %+v; want HttpOnly, Secure, SameSite=Lax, Path=/, no Domain", c)
	}
	if want := int((24 * time.Hour).Seconds()); c.MaxAge != want {
		t.Errorf("cookie Max-Age: got %d, want %d (SESSION_MAX_AGE)", c.MaxAge, want)
	}
	// The test server is plain http, so the jar would not send a Secure
	// cookie back: send it by hand, as a browser on https would.
	cookieOnly := func(query string) *response {
		req, _ := http.NewRequest(http.MethodPost, e.url+"/query",
			strings.NewReader(`{"query":"`+query+`"}`))
		req.Header.Set("Content-Type", "application/json")
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		return e.client().send(t, req)
	}
	if r := cookieOnly("{ me { username } }"); !strings.Contains(string(r.Data), "kim") {
		t.Fatalf("cookie did not authenticate: %s %+v", r.Data, r.Errors)
	}
	r = cookieOnly("mutation { deleteSession }")
	cleared := sessionCookie(t, r.header)
	if cleared == nil || cleared.MaxAge >= 0 || cleared.Value != "" {
		t.Errorf("logout did not expire the cookie: %+v", cleared)
	}
	r = cookieOnly("{ me { username } }")
	if string(r.Data) != `{"me":null}` {
		t.Errorf("me after logout: %s", r.Data)
	}
	if dead := sessionCookie(t, r.header); dead == nil || dead.MaxAge >= 0 {
		t.Error("a dead session cookie was not cleared")
	}
}

func TestCookieSecureOff(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(_ *auth.Config, o *graph.Options) { o.HTTP.CookieSecure = false })
	browser := e.client()
	browser.do(t, registerQuery, map[string]any{"u": "lee", "p": pw})
	// Not Secure, so the jar sends it back over plain http by itself.
	browser.token = ""
	if got := browser.me(t); got != "lee" {
		t.Errorf("cookie session over http: me = %q", got)
	}
}

// A bearer token wins over a cookie of another session, and junk tokens
// are simply no session.
func TestBearerTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.client()
	a.register(t, "amy", pw)
	b := e.client()
	b.register(t, "ben", pw)

	both := e.client()
	both.token = b.token
	req, _ := http.NewRequest(http.MethodPost, e.url+"/query", strings.NewReader(`{"query":"{ me { username } }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+b.token)
	req.AddCookie(&http.Cookie{Name: cookieName, Value: a.token})
	if r := both.send(t, req); !strings.Contains(string(r.Data), "ben") {
		t.Errorf("bearer did not win over the cookie: %s", r.Data)
	}

	id := strings.SplitN(a.token, ".", 2)[0]
	for _, junk := range []string{
		"x", strings.Repeat("A", auth.TokenLen), id + ".", id + "." + strings.Repeat("A", 43),
		a.token + "A", strings.Replace(a.token, ".", "!", 1), "é" + a.token[2:],
	} {
		c := e.client()
		c.token = junk
		if got := c.me(t); got != "" {
			t.Errorf("token %q authenticated as %q", junk, got)
		}
	}
	// A wrong secret for a real session id must not end that session.
	if a.me(t) != "amy" {
		t.Error("guessing at a session's secret ended it")
	}
}

func TestGETQueriesOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client()
	c.register(t, "gus", pw)
	get := func(q string) *response {
		req, _ := http.NewRequest(http.MethodGet, e.url+"/query?query="+url.QueryEscape(q), nil)
		req.Header.Set("Authorization", "Bearer "+c.token)
		return c.send(t, req)
	}
	if r := get("{ me { username } }"); !strings.Contains(string(r.Data), "gus") {
		t.Errorf("GET query: %s %+v", r.Data, r.Errors)
	}
	// A mutation over GET (a link in a mail, an <img>) is refused before it
	// runs: 405 with Allow: POST, as GraphQL over HTTP says, and a code.
	other := e.client()
	other.login(t, "gus", pw)
	r := get("mutation { deleteOtherSessions }")
	if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "POST" || r.code(t) != "BAD_REQUEST" {
		t.Errorf("GET mutation: status %d, Allow %q, errors %+v; want 405, POST, BAD_REQUEST", r.status, r.header.Get("Allow"), r.Errors)
	}
	if r.Data != nil && string(r.Data) != "null" {
		t.Errorf("GET mutation answered data %s", r.Data)
	}
	if other.me(t) != "gus" {
		t.Error("the GET mutation ran: the other session is gone")
	}
}

func TestOversizedBodyIs413(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	body := `{"query":"{ me { id } }","variables":{"x":"` + strings.Repeat("a", 70<<10) + `"}}`
	for _, chunked := range []bool{false, true} {
		var rd io.Reader = strings.NewReader(body)
		if chunked {
			rd = io.MultiReader(rd) // hides the length: sent chunked
		}
		req, _ := http.NewRequest(http.MethodPost, e.url+"/query", rd)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("chunked=%v: status %d, want 413", chunked, res.StatusCode)
		}
	}
}

// A body within 64 KiB but of more than 10,000 JSON values is refused
// before it is decoded; commas and brackets inside strings do not count.
func TestManyJSONValuesIs413(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client()
	for _, tc := range []struct {
		name   string
		values string
		status int
	}{
		{"10,001 numbers", "[" + strings.Repeat("1,", 10000) + "1]", http.StatusRequestEntityTooLarge},
		{"10,001 empty objects", "[" + strings.Repeat("{},", 10000) + "{}]", http.StatusRequestEntityTooLarge},
		{"9,000 numbers", "[" + strings.Repeat("1,", 9000) + "1]", http.StatusOK},
		{"commas in a string", `"` + strings.Repeat(`,[{\",`, 8000) + `"`, http.StatusOK},
	} {
		body := `{"query":"{ me { id } }","variables":{"x":` + tc.values + `}}`
		req, _ := http.NewRequest(http.MethodPost, e.url+"/query", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		r := c.send(t, req)
		if r.status != tc.status {
			t.Errorf("%s: status %d %+v, want %d", tc.name, r.status, r.Errors, tc.status)
		} else if tc.status != http.StatusOK && r.code(t) != "BAD_REQUEST" {
			t.Errorf("%s: code %q, want BAD_REQUEST", tc.name, r.code(t))
		}
	}
}

func TestTrustedProxies(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		trusted string
		xff     string
		want    string
	}{
		{"untrusted peer: header ignored", "", "203.0.113.9", "127.0.0.1"},
		{"trusted peer: client from the header", "127.0.0.0/8", "198.51.100.1, 203.0.113.9", "203.0.113.9"},
		{"trusted hops skipped", "127.0.0.0/8,10.0.0.0/8", "203.0.113.9, 10.1.2.3", "203.0.113.9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var trusted []netip.Prefix
			if tc.trusted != "" {
				for _, p := range strings.Split(tc.trusted, ",") {
					trusted = append(trusted, netip.MustParsePrefix(p))
				}
			}
			e := newEnv(t, func(_ *auth.Config, o *graph.Options) { o.HTTP.TrustedProxies = trusted })
			c := e.client()
			c.header.Set("X-Forwarded-For", tc.xff)
			got := c.register(t, "pat", pw).Session.IPAddress
			if got == nil || *got != tc.want {
				t.Errorf("ipAddress: got %v, want %s", got, tc.want)
			}
		})
	}
}

// Numbers keep every digit, and arrays may nest, whatever the engine.
func TestDataIsExactJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client()
	c.register(t, "nia", pw)
	const data = `{"big":123456789012345678901234567890,"frac":0.1000000000000000055511151231257827,"nested":[[1,[2]],[]],"u":"\u00e9\ud83d\udc4b"}`
	body := `{"query":"mutation($d: JSONObject!) { updateSessionData(data: $d) { data } }","variables":{"d":` + data + `}}`
	req, _ := http.NewRequest(http.MethodPost, e.url+"/query", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{"123456789012345678901234567890", "0.1000000000000000055511151231257827", `[[1,[2]],[]]`, "é👋"} {
		if !bytes.Contains(raw, []byte(want)) {
			t.Errorf("response %s lacks %s", raw, want)
		}
	}
}

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, path := range []string{"/healthz", "/readyz"} {
		res, err := http.Get(e.url + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d", path, res.StatusCode)
		}
	}
	res, err := http.Get(e.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !bytes.Contains(page, []byte("/query")) {
		t.Errorf("playground: status %d, page mentions /query: %v", res.StatusCode, bytes.Contains(page, []byte("/query")))
	}
}

// Times read the same way everywhere: UTC with exactly three fractional
// digits, even on a whole second.
func TestTimeFormat(t *testing.T) {
	t.Parallel()
	e := newEnv(t) // its clock starts on a whole second
	r := e.client().do(t, registerQuery, map[string]any{"u": "tim", "p": pw})
	re := regexp.MustCompile(`"createdAt":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)"`)
	if m := re.FindStringSubmatch(string(r.Data)); m == nil || m[1] != "2026-03-01T12:00:00.000Z" {
		t.Errorf("createdAt in %s, want 2026-03-01T12:00:00.000Z", r.Data)
	}
}
