package auth

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

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
		wantOld    bool // the request carries the cookie's name from before the __Host- prefix
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
		{
			name:       "secure: the __Host- cookie",
			cfg:        HTTPConfig{CookieSecure: true},
			cookies:    []*http.Cookie{{Name: "__Host-" + DefaultCookieName, Value: cookieTok}},
			wantToken:  cookieTok,
			wantCookie: true,
		},
		{
			name:       "secure: the old name alone is still read",
			cfg:        HTTPConfig{CookieSecure: true},
			cookies:    []*http.Cookie{{Name: DefaultCookieName, Value: cookieTok}},
			wantToken:  cookieTok,
			wantCookie: true,
			wantOld:    true,
		},
		{
			name:       "secure: the __Host- cookie wins over the old name",
			cfg:        HTTPConfig{CookieSecure: true},
			cookies:    []*http.Cookie{{Name: DefaultCookieName, Value: "planted"}, {Name: "__Host-" + DefaultCookieName, Value: cookieTok}},
			wantToken:  cookieTok,
			wantCookie: true,
			wantOld:    true,
		},
		{
			name:    "not secure: a __Host- cookie is not read",
			cookies: []*http.Cookie{{Name: "__Host-" + DefaultCookieName, Value: cookieTok}},
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
			if req.token != tt.wantToken || req.cookie != tt.wantCookie || req.oldCookie != tt.wantOld {
				t.Errorf("token, cookie, oldCookie = %q, %v, %v; want %q, %v, %v", req.token, req.cookie, req.oldCookie, tt.wantToken, tt.wantCookie, tt.wantOld)
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
			cfg := HTTPConfig{CookieSecure: true}
			if tt.cookie != "" {
				r.AddCookie(&http.Cookie{Name: cfg.SessionCookieName(), Value: tt.cookie})
			}
			w := serve(t, &Service{}, cfg, r, func(ctx context.Context) {
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
			checkCleared(t, got[0], cfg.SessionCookieName(), true)
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
