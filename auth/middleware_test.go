package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"gatehouse/storage"
)

var (
	tenSlash8 = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	t0        = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
)

func TestClientIP(t *testing.T) {
	tests := []struct {
		name    string
		trusted []netip.Prefix
		remote  string
		xff     []string // one entry per header line
		want    string
	}{
		{
			name:   "no proxies, no header",
			remote: "203.0.113.7:1234",
			want:   "203.0.113.7",
		},
		{
			name:   "no trusted proxies ignores X-Forwarded-For",
			remote: "203.0.113.7:1234",
			xff:    []string{"198.51.100.9"},
			want:   "203.0.113.7",
		},
		{
			name:   "no trusted proxies ignores header even from a private peer",
			remote: "10.0.0.1:1234",
			xff:    []string{"198.51.100.9"},
			want:   "10.0.0.1",
		},
		{
			name:    "untrusted peer's header ignored",
			trusted: tenSlash8,
			remote:  "203.0.113.7:1234",
			xff:     []string{"198.51.100.9"},
			want:    "203.0.113.7",
		},
		{
			name:    "trusted peer without header",
			trusted: tenSlash8,
			remote:  "10.0.0.1:1234",
			want:    "10.0.0.1",
		},
		{
			name:    "trusted peer with empty header",
			trusted: tenSlash8,
			remote:  "10.0.0.1:1234",
			xff:     []string{""},
			want:    "10.0.0.1",
		},
		{
			name:    "trusted peer, one hop",
			trusted: tenSlash8,
			remote:  "10.0.0.1:1234",
			xff:     []string{"198.51.100.9"},
			want:    "198.51.100.9",
		},
		{
			name:    "trusted hops skipped right to left",
			trusted: tenSlash8,
			remote:  "10.0.0.1:1234",
			xff:     []string{"198.51.100.9, 10.0.0.3, 10.0.0.2"},
			want:    "198.51.100.9",
		},
		{
			name:    "spoofed left-most entries ignored",
			trusted: tenSlash8,
			remote:  "10.0.0.1:1234",
			xff:     []string{"6.6.6.6, 7.7.7.7, 198.51.100.9, 10.0.0.2"},
			want:    "198.51.100.9",
		},
		{
			name:    "spoofed trusted-looking entry left of the client ignored",
			trusted: tenSlash8,
			remote:  "10.0.0.1:1234",
			xff:     []string{"10.9.9.9, 198.51.100.9"},
			want:    "198.51.100.9",
		},
		{
			name:    "garbage entry stops the walk at the last trusted hop",
			trusted: tenSlash8,
			remote:  "10.0.0.1:1234",
			xff:     []string{"198.51.100.9, garbage, 10.0.0.2"},
			want:    "10.0.0.2",
		},
		{
			name:    "garbage right-most entry leaves the peer",
			trusted: tenSlash8,
			remote:  "10.0.0.1:1234",
			xff:     []string{"198.51.100.9, unknown"},
			want:    "10.0.0.1",
		},
		{
			name:    "entry with a port is not an address",
			trusted: tenSlash8,
			remote:  "10.0.0.1:1234",
			xff:     []string{"198.51.100.9:5555"},
			want:    "10.0.0.1",
		},
		{
			name:    "empty entry stops the walk",
			trusted: tenSlash8,
			remote:  "10.0.0.1:1234",
			xff:     []string{"198.51.100.9,,10.0.0.2"},
			want:    "10.0.0.2",
		},
		{
			name:    "all hops trusted gives the left-most",
			trusted: tenSlash8,
			remote:  "10.0.0.1:1234",
			xff:     []string{"10.1.1.1, 10.2.2.2"},
			want:    "10.1.1.1",
		},
		{
			name:    "spaces around entries",
			trusted: tenSlash8,
			remote:  "10.0.0.1:1234",
			xff:     []string{"  198.51.100.9  ,   10.0.0.2 "},
			want:    "198.51.100.9",
		},
		{
			name:    "multiple header lines are one list",
			trusted: tenSlash8,
			remote:  "10.0.0.1:1234",
			xff:     []string{"6.6.6.6", "198.51.100.9", "10.0.0.2"},
			want:    "198.51.100.9",
		},
		{
			name:    "multiple header lines with lists",
			trusted: tenSlash8,
			remote:  "10.0.0.1:1234",
			xff:     []string{"6.6.6.6, 198.51.100.9", "10.0.0.3, 10.0.0.2"},
			want:    "198.51.100.9",
		},
		{
			name:   "IPv4-mapped IPv6 peer unmapped",
			remote: "[::ffff:203.0.113.7]:443",
			want:   "203.0.113.7",
		},
		{
			name:    "IPv4-mapped IPv6 peer matches an IPv4 prefix",
			trusted: tenSlash8,
			remote:  "[::ffff:10.0.0.1]:443",
			xff:     []string{"198.51.100.9"},
			want:    "198.51.100.9",
		},
		{
			name:    "IPv4-mapped hops unmapped",
			trusted: tenSlash8,
			remote:  "10.0.0.1:443",
			xff:     []string{"::ffff:198.51.100.9, ::ffff:10.0.0.2"},
			want:    "198.51.100.9",
		},
		{
			name:   "IPv6 peer",
			remote: "[2001:db8::1]:443",
			want:   "2001:db8::1",
		},
		{
			name:    "IPv6 trusted proxy",
			trusted: []netip.Prefix{netip.MustParsePrefix("fd00::/8")},
			remote:  "[fd00::1]:443",
			xff:     []string{"2001:db8::5, fd00::2"},
			want:    "2001:db8::5",
		},
		{
			name:    "several trusted prefixes",
			trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.0.0/16")},
			remote:  "192.168.1.1:443",
			xff:     []string{"198.51.100.9, 10.0.0.2"},
			want:    "198.51.100.9",
		},
		{
			name:   "remote address without a port",
			remote: "203.0.113.7",
			want:   "203.0.113.7",
		},
		{
			name:   "unparsable remote address",
			remote: "not-an-address:80",
			want:   "",
		},
		{
			name:   "empty remote address",
			remote: "",
			want:   "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := apiRequest()
			r.RemoteAddr = tt.remote
			for _, line := range tt.xff {
				r.Header.Add("X-Forwarded-For", line)
			}
			if got := clientIP(r, tt.trusted); got != tt.want {
				t.Errorf("clientIP(remote %q, X-Forwarded-For %q) = %q, want %q", tt.remote, tt.xff, got, tt.want)
			}
		})
	}
}

func TestClientOf(t *testing.T) {
	long := strings.Repeat("a", 600)
	tests := []struct {
		name string
		ua   string
		want string
	}{
		{"none", "", ""},
		{"short", "curl/8.0", "curl/8.0"},
		{"exactly 512", long[:512], long[:512]},
		{"truncated to 512", long, long[:512]},
		// "é" is 2 bytes: the cut falls inside it, and the half rune goes.
		{"cut inside a rune", long[:511] + "é" + "tail", long[:511]},
		{"rune ending at 512", long[:510] + "é" + "tail", long[:510] + "é"},
		{"invalid UTF-8 stripped", "Mozilla\xff/5.0\xc3", "Mozilla/5.0"},
		{"valid UTF-8 kept", "Navigateur été", "Navigateur été"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := apiRequest()
			r.RemoteAddr = "203.0.113.7:1234"
			if tt.ua != "" {
				r.Header.Set("User-Agent", tt.ua)
			}
			got := clientOf(r, nil)
			want := Client{UserAgent: tt.want, IP: "203.0.113.7"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("clientOf (-want +got):\n%s", diff)
			}
			if len(got.UserAgent) > maxUserAgent {
				t.Errorf("len(UserAgent) = %d, want at most %d", len(got.UserAgent), maxUserAgent)
			}
		})
	}
}

func TestBearer(t *testing.T) {
	tests := []struct {
		header string
		want   string
		ok     bool
	}{
		{"", "", false},
		{"Bearer abc", "abc", true},
		{"bearer abc", "abc", true},
		{"BEARER abc", "abc", true},
		{"BeArEr abc", "abc", true},
		{"Bearer   abc  ", "abc", true},
		{"Bearer " + goodToken, goodToken, true},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Bearerabc", "", false},
		{"Bearer\tabc", "", false},
		{"abc", "", false},
		{goodToken, "", false},
		{"Basic dXNlcjpwYXNz", "", false},
		{"Basic x", "", false},
		{"Token abc", "", false},
		{" Bearer abc", "", false},
	}
	for _, tt := range tests {
		r := apiRequest()
		if tt.header != "" {
			r.Header.Set("Authorization", tt.header)
		}
		got, ok := bearer(r)
		if got != tt.want || ok != tt.ok {
			t.Errorf("bearer(Authorization %q) = %q, %v; want %q, %v", tt.header, got, ok, tt.want, tt.ok)
		}
	}
}

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

func TestMiddlewareToken(t *testing.T) {
	const (
		bearerTok = "bearer-token"
		cookieTok = "cookie-token"
	)
	tests := []struct {
		name       string
		cfg        HTTPConfig
		authz      string
		cookies    []*http.Cookie
		wantToken  string
		wantCookie bool
	}{
		{name: "nothing"},
		{
			name:       "cookie",
			cookies:    []*http.Cookie{{Name: DefaultCookieName, Value: cookieTok}},
			wantToken:  cookieTok,
			wantCookie: true,
		},
		{
			name:      "bearer",
			authz:     "Bearer " + bearerTok,
			wantToken: bearerTok,
		},
		{
			name:      "bearer preferred over cookie",
			authz:     "Bearer " + bearerTok,
			cookies:   []*http.Cookie{{Name: DefaultCookieName, Value: cookieTok}},
			wantToken: bearerTok,
		},
		{
			name:      "lower-case scheme preferred over cookie",
			authz:     "bearer " + bearerTok,
			cookies:   []*http.Cookie{{Name: DefaultCookieName, Value: cookieTok}},
			wantToken: bearerTok,
		},
		{
			name:       "Basic ignored, cookie used",
			authz:      "Basic x",
			cookies:    []*http.Cookie{{Name: DefaultCookieName, Value: cookieTok}},
			wantToken:  cookieTok,
			wantCookie: true,
		},
		{
			name:  "Basic ignored, no cookie",
			authz: "Basic x",
		},
		{
			name:    "other cookies ignored",
			cookies: []*http.Cookie{{Name: "other", Value: cookieTok}},
		},
		{
			name:       "custom cookie name",
			cfg:        HTTPConfig{CookieName: "sid"},
			cookies:    []*http.Cookie{{Name: DefaultCookieName, Value: "wrong"}, {Name: "sid", Value: cookieTok}},
			wantToken:  cookieTok,
			wantCookie: true,
		},
		{
			name:    "default name unused with a custom name",
			cfg:     HTTPConfig{CookieName: "sid"},
			cookies: []*http.Cookie{{Name: DefaultCookieName, Value: cookieTok}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := apiRequest()
			if tt.authz != "" {
				r.Header.Set("Authorization", tt.authz)
			}
			for _, c := range tt.cookies {
				r.AddCookie(c)
			}
			var req *request
			serve(t, &Service{}, tt.cfg, r, func(ctx context.Context) { req = from(ctx) })
			if req == nil {
				t.Fatal("no request state in the handler's context")
			}
			if req.token != tt.wantToken || req.cookie != tt.wantCookie {
				t.Errorf("token, cookie = %q, %v; want %q, %v", req.token, req.cookie, tt.wantToken, tt.wantCookie)
			}
			wantName := tt.cfg.CookieName
			if wantName == "" {
				wantName = DefaultCookieName
			}
			if got := req.cfg.CookieName; got != wantName {
				t.Errorf("cookie name = %q, want %q", got, wantName)
			}
		})
	}
}

func TestMiddlewareClient(t *testing.T) {
	r := apiRequest()
	r.RemoteAddr = "10.0.0.1:1234"
	r.Header.Set("X-Forwarded-For", "6.6.6.6, 198.51.100.9")
	r.Header.Set("User-Agent", "test-agent/1.0")
	var got Client
	serve(t, &Service{}, HTTPConfig{TrustedProxies: tenSlash8}, r, func(ctx context.Context) { got = ClientFrom(ctx) })
	want := Client{UserAgent: "test-agent/1.0", IP: "198.51.100.9"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ClientFrom (-want +got):\n%s", diff)
	}
}

// checkNoSession asserts that ctx carries no session: SessionFrom answers
// nil and RequireSession ErrUnauthenticated.
func checkNoSession(t *testing.T, ctx context.Context) {
	t.Helper()
	sess, err := SessionFrom(ctx)
	if sess != nil || err != nil {
		t.Errorf("SessionFrom = %v, %v; want nil, nil", sess, err)
	}
	sess, err = RequireSession(ctx)
	if sess != nil || !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("RequireSession = %v, %v; want nil, %v", sess, err, ErrUnauthenticated)
	}
}

func TestWithoutMiddleware(t *testing.T) {
	ctx := context.Background()
	checkNoSession(t, ctx)
	if diff := cmp.Diff(Client{}, ClientFrom(ctx)); diff != "" {
		t.Errorf("ClientFrom (-want +got):\n%s", diff)
	}
	// Without request state these are no-ops; SignedIn must not even look
	// at its (here nil) session.
	SignedIn(ctx, nil, Token{})
	SignedOut(ctx)
}

// setCookies returns the Set-Cookie headers of w, parsed.
func setCookies(w *httptest.ResponseRecorder) []*http.Cookie {
	return w.Result().Cookies()
}

func TestSessionFromNoToken(t *testing.T) {
	r := apiRequest()
	// &Service{} has no store: a look-up would panic.
	w := serve(t, &Service{}, HTTPConfig{}, r, func(ctx context.Context) { checkNoSession(t, ctx) })
	if got := w.Header().Values("Set-Cookie"); len(got) != 0 {
		t.Errorf("Set-Cookie = %q, want none", got)
	}
}

// Malformed tokens are refused by parseToken before any database call, so
// these run on a Service without a store.
func TestSessionFromMalformedToken(t *testing.T) {
	tests := []struct {
		name      string
		authz     string
		cookie    string
		wantClear bool
	}{
		{name: "malformed cookie is cleared", cookie: "garbage", wantClear: true},
		{name: "malformed bearer leaves cookies alone", authz: "Bearer garbage"},
		{name: "malformed bearer with a cookie leaves the cookie alone", authz: "Bearer garbage", cookie: "garbage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := apiRequest()
			if tt.authz != "" {
				r.Header.Set("Authorization", tt.authz)
			}
			if tt.cookie != "" {
				r.AddCookie(&http.Cookie{Name: DefaultCookieName, Value: tt.cookie})
			}
			w := serve(t, &Service{}, HTTPConfig{CookieSecure: true}, r, func(ctx context.Context) {
				for range 3 { // repeated calls: one look-up, one Set-Cookie
					sess, err := SessionFrom(ctx)
					if sess != nil || err != nil {
						t.Errorf("SessionFrom = %v, %v; want nil, nil", sess, err)
					}
				}
			})
			got := setCookies(w)
			if !tt.wantClear {
				if len(got) != 0 {
					t.Errorf("Set-Cookie = %q, want none", w.Header().Values("Set-Cookie"))
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("Set-Cookie = %q, want exactly one", w.Header().Values("Set-Cookie"))
			}
			checkCleared(t, got[0], DefaultCookieName, true)
		})
	}
}

func TestSessionFromConcurrent(t *testing.T) {
	r := apiRequest()
	r.AddCookie(&http.Cookie{Name: DefaultCookieName, Value: "garbage"})
	w := serve(t, &Service{}, HTTPConfig{}, r, func(ctx context.Context) {
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				if sess, err := SessionFrom(ctx); sess != nil || err != nil {
					t.Errorf("SessionFrom = %v, %v; want nil, nil", sess, err)
				}
			})
		}
		wg.Wait()
	})
	if got := w.Header().Values("Set-Cookie"); len(got) != 1 {
		t.Errorf("Set-Cookie = %q, want exactly one", got)
	}
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
	if c.Path != "/" {
		t.Errorf("cookie Path = %q, want %q", c.Path, "/")
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

func fixedService(maxAge time.Duration) *Service {
	return &Service{cfg: Config{TTL: time.Hour, MaxAge: maxAge, Now: func() time.Time { return t0 }}}
}

func TestSignedIn(t *testing.T) {
	tests := []struct {
		name       string
		cfg        HTTPConfig
		maxAge     time.Duration
		created    time.Time
		wantName   string
		wantMaxAge int
	}{
		{
			name:       "new session, insecure",
			maxAge:     24 * time.Hour,
			created:    t0,
			wantName:   DefaultCookieName,
			wantMaxAge: 86400,
		},
		{
			name:       "new session, secure",
			cfg:        HTTPConfig{CookieSecure: true},
			maxAge:     24 * time.Hour,
			created:    t0,
			wantName:   DefaultCookieName,
			wantMaxAge: 86400,
		},
		{
			name:       "custom cookie name",
			cfg:        HTTPConfig{CookieName: "sid", CookieSecure: true},
			maxAge:     time.Hour,
			created:    t0,
			wantName:   "sid",
			wantMaxAge: 3600,
		},
		{
			name:       "older session gets what is left of MaxAge",
			maxAge:     24 * time.Hour,
			created:    t0.Add(-time.Hour),
			wantName:   DefaultCookieName,
			wantMaxAge: 23 * 3600,
		},
		{
			name:       "rounded to the nearest second",
			maxAge:     time.Hour,
			created:    t0.Add(-1400 * time.Millisecond),
			wantName:   DefaultCookieName,
			wantMaxAge: 3599,
		},
		{
			name:       "past MaxAge still at least one second",
			maxAge:     time.Hour,
			created:    t0.Add(-2 * time.Hour),
			wantName:   DefaultCookieName,
			wantMaxAge: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := NewToken()
			sess := &storage.Session{ID: tok.SessionID, SecretHash: tok.Digest(), UserID: "u1", CreatedAt: tt.created}
			r := apiRequest()
			w := serve(t, fixedService(tt.maxAge), tt.cfg, r, func(ctx context.Context) {
				SignedIn(ctx, sess, tok)
				got, err := SessionFrom(ctx)
				if got != sess || err != nil {
					t.Errorf("SessionFrom after SignedIn = %p, %v; want %p, nil", got, err, sess)
				}
			})
			cookies := setCookies(w)
			if len(cookies) != 1 {
				t.Fatalf("Set-Cookie = %q, want exactly one", w.Header().Values("Set-Cookie"))
			}
			c := cookies[0]
			if c.Name != tt.wantName {
				t.Errorf("cookie name = %q, want %q", c.Name, tt.wantName)
			}
			if c.Value != tok.String() {
				t.Errorf("cookie value = %q, want %q", c.Value, tok.String())
			}
			if c.MaxAge != tt.wantMaxAge {
				t.Errorf("cookie MaxAge = %d, want %d", c.MaxAge, tt.wantMaxAge)
			}
			checkAttrs(t, c, tt.cfg.CookieSecure)
			raw := w.Header().Get("Set-Cookie")
			for _, attr := range []string{"HttpOnly", "SameSite=Lax", "Path=/"} {
				if !strings.Contains(raw, attr) {
					t.Errorf("Set-Cookie %q lacks %s", raw, attr)
				}
			}
		})
	}
}

// SignedIn wins over the token the request came with: the old token is not
// looked up afterwards. The token below is well-formed, so a look-up would
// reach the (absent) store and panic.
func TestSignedInReplacesRequestToken(t *testing.T) {
	old := NewToken()
	r := apiRequest()
	r.Header.Set("Authorization", "Bearer "+old.String())
	tok := NewToken()
	sess := &storage.Session{ID: tok.SessionID, UserID: "u1", CreatedAt: t0}
	serve(t, fixedService(time.Hour), HTTPConfig{}, r, func(ctx context.Context) {
		SignedIn(ctx, sess, tok)
		got, err := RequireSession(ctx)
		if got != sess || err != nil {
			t.Errorf("RequireSession after SignedIn = %p, %v; want %p, nil", got, err, sess)
		}
	})
}

func TestSignedOut(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(map[bool]string{false: "insecure", true: "secure"}[secure], func(t *testing.T) {
			tok := NewToken()
			sess := &storage.Session{ID: tok.SessionID, UserID: "u1", CreatedAt: t0}
			r := apiRequest()
			r.AddCookie(&http.Cookie{Name: "sid", Value: NewToken().String()})
			w := serve(t, fixedService(time.Hour), HTTPConfig{CookieName: "sid", CookieSecure: secure}, r, func(ctx context.Context) {
				SignedIn(ctx, sess, tok)
				SignedOut(ctx)
				got, err := SessionFrom(ctx)
				if got != nil || err != nil {
					t.Errorf("SessionFrom after SignedOut = %v, %v; want nil, nil", got, err)
				}
				if _, err := RequireSession(ctx); !errors.Is(err, ErrUnauthenticated) {
					t.Errorf("RequireSession after SignedOut error = %v, want %v", err, ErrUnauthenticated)
				}
			})
			cookies := setCookies(w)
			if len(cookies) != 2 {
				t.Fatalf("Set-Cookie = %q, want two (set, then cleared)", w.Header().Values("Set-Cookie"))
			}
			checkCleared(t, cookies[1], "sid", secure)
		})
	}
}

// SignedOut before any look-up means the request's token is never looked
// up (the cookie below is well-formed and the store absent).
func TestSignedOutWithoutLookup(t *testing.T) {
	r := apiRequest()
	r.AddCookie(&http.Cookie{Name: DefaultCookieName, Value: NewToken().String()})
	w := serve(t, &Service{}, HTTPConfig{}, r, func(ctx context.Context) {
		SignedOut(ctx)
		got, err := SessionFrom(ctx)
		if got != nil || err != nil {
			t.Errorf("SessionFrom after SignedOut = %v, %v; want nil, nil", got, err)
		}
	})
	cookies := setCookies(w)
	if len(cookies) != 1 {
		t.Fatalf("Set-Cookie = %q, want exactly one", w.Header().Values("Set-Cookie"))
	}
	checkCleared(t, cookies[0], DefaultCookieName, false)
}

// apiRequest is a request as an API client sends it: POST with a JSON
// body, which CSRF prevention lets through with a cookie.
func apiRequest() *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{}`))
	r.Header.Set("Content-Type", "application/json")
	return r
}

func TestCSRFPrevention(t *testing.T) {
	s := &Service{cfg: Config{MaxAge: time.Hour, Now: time.Now}}
	token := NewToken().String()
	for _, tc := range []struct {
		name        string
		method, ct  string
		header      string
		cookie      bool
		wantRefused bool
	}{
		{"GET with cookie", http.MethodGet, "", "", true, true},
		{"GET with cookie and preflight header", http.MethodGet, "", "Apollo-Require-Preflight", true, false},
		{"GET with cookie and operation name header", http.MethodGet, "", "X-Apollo-Operation-Name", true, false},
		{"POST text/plain with cookie", http.MethodPost, "text/plain", "", true, true},
		{"POST form with cookie", http.MethodPost, "application/x-www-form-urlencoded", "", true, true},
		{"POST multipart with cookie", http.MethodPost, "multipart/form-data; boundary=x", "", true, true},
		{"POST without content type with cookie", http.MethodPost, "", "", true, true},
		{"POST JSON with cookie", http.MethodPost, "application/json; charset=utf-8", "", true, false},
		{"GET JSON with cookie (Apollo useGETForQueries)", http.MethodGet, "application/json", "", true, false},
		{"POST text/plain with charset and cookie", http.MethodPost, "text/plain; charset=utf-8", "", true, true},
		{"GET without cookie", http.MethodGet, "", "", false, false},
		{"POST text/plain without cookie", http.MethodPost, "text/plain", "", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "/", strings.NewReader("{}"))
			if tc.ct != "" {
				r.Header.Set("Content-Type", tc.ct)
			}
			if tc.header != "" {
				r.Header.Set(tc.header, "1")
			}
			if tc.cookie {
				r.AddCookie(&http.Cookie{Name: DefaultCookieName, Value: token})
			}
			reached := false
			w := httptest.NewRecorder()
			s.Middleware(HTTPConfig{}, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached = true })).ServeHTTP(w, r)
			if refused := !reached; refused != tc.wantRefused {
				t.Errorf("refused = %v, want %v", refused, tc.wantRefused)
			}
			if tc.wantRefused && (w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "Apollo-Require-Preflight")) {
				t.Errorf("refusal: status %d body %s; want 400 naming the header", w.Code, w.Body)
			}
		})
	}
}
