package auth

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"gatehouse/storage"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

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
			wantName:   "__Host-" + DefaultCookieName,
			wantMaxAge: 86400,
		},
		{
			name:       "custom cookie name",
			cfg:        HTTPConfig{CookieName: "sid", CookieSecure: true},
			maxAge:     time.Hour,
			created:    t0,
			wantName:   "__Host-sid",
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
			cfg := HTTPConfig{CookieName: "sid", CookieSecure: secure}
			r.AddCookie(&http.Cookie{Name: cfg.SessionCookieName(), Value: NewToken().String()})
			w := serve(t, fixedService(time.Hour), cfg, r, func(ctx context.Context) {
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
			checkCleared(t, cookies[1], cfg.SessionCookieName(), secure)
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

// A Secure cookie is named __Host-gatehouse_session; the cookie an older
// gatehouse set as gatehouse_session is expired whenever the session
// cookie is set or cleared (the move of a live one is in graph's
// TestAttackPlantedCookie, against the database).
func TestOldCookieNameExpired(t *testing.T) {
	const oldName, newName = DefaultCookieName, "__Host-" + DefaultCookieName
	tok := NewToken()
	sess := &storage.Session{ID: tok.SessionID, UserID: "u1", CreatedAt: t0}
	for _, tc := range []struct {
		name    string
		cookies []string // names the request carries
		handle  func(ctx context.Context)
		want    []string // Set-Cookie, name=value
	}{
		{"sign-in with the old cookie", []string{oldName}, func(ctx context.Context) { SignedIn(ctx, sess, tok) },
			[]string{newName + "=" + tok.String(), oldName + "="}},
		{"sign-in without it", []string{newName}, func(ctx context.Context) { SignedIn(ctx, sess, tok) },
			[]string{newName + "=" + tok.String()}},
		{"sign-out with both", []string{oldName, newName}, SignedOut, []string{newName + "=", oldName + "="}},
		{"sign-out with the old one", []string{oldName}, SignedOut, []string{newName + "=", oldName + "="}},
		{"dead old cookie", []string{oldName}, func(ctx context.Context) { _, _ = SessionFrom(ctx) }, []string{newName + "=", oldName + "="}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := apiRequest()
			for _, name := range tc.cookies {
				r.AddCookie(&http.Cookie{Name: name, Value: "garbage"}) // never looked up: malformed
			}
			w := serve(t, fixedService(time.Hour), HTTPConfig{CookieSecure: true}, r, tc.handle)
			var got []string
			for _, c := range setCookies(w) {
				checkAttrs(t, c, true)
				if c.Value == "" && c.MaxAge >= 0 {
					t.Errorf("%s: empty but not expired", c.Raw)
				}
				got = append(got, c.Name+"="+c.Value)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Set-Cookie %q, want %q", got, tc.want)
			}
		})
	}
}
