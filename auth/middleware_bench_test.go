package auth

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"gatehouse/internal/dbtest"
)

// benchLogin returns a service on a fresh database and the token of a live
// session of a user on it.
func benchLogin(b *testing.B) (*Service, Token) {
	b.Helper()
	ctx := context.Background()
	svc, err := NewService(dbtest.Open(b), Config{
		TTL: time.Hour, MaxAge: 24 * time.Hour, BcryptCost: 4, AllowSignup: true,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	const password = "bench password"
	if err := svc.CreateUser(ctx, "bench", password); err != nil {
		b.Fatal(err)
	}
	_, tok, err := svc.Login(ctx, "bench", password, "", Client{})
	if err != nil {
		b.Fatal(err)
	}
	return svc, tok
}

// discardWriter is a ResponseWriter that keeps nothing, so that the
// benchmarks count the handler's allocations, not a recorder's.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkMiddlewareSessionFrom is what every authenticated request pays
// to learn its caller: the middleware reads the bearer token, SessionFrom
// parses it and looks the session up (one database round trip to the
// in-process engine, whose work and allocations are included).
func BenchmarkMiddlewareSessionFrom(b *testing.B) {
	svc, tok := benchLogin(b)
	h := svc.Middleware(HTTPConfig{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sess, err := SessionFrom(r.Context()); sess == nil || err != nil {
			b.Fatalf("SessionFrom = %v, %v; want the session", sess, err)
		}
	}))
	r := httptest.NewRequest(http.MethodPost, "/query", nil)
	r.Header.Set("Authorization", "Bearer "+tok.String())
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

// BenchmarkMiddlewareAnonymous is the middleware alone: no token, so no
// look-up.
func BenchmarkMiddlewareAnonymous(b *testing.B) {
	svc := &Service{cfg: Config{TTL: time.Hour, MaxAge: time.Hour, Now: time.Now}}
	h := svc.Middleware(HTTPConfig{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sess, err := SessionFrom(r.Context()); sess != nil || err != nil {
			b.Fatalf("SessionFrom = %v, %v; want nil, nil", sess, err)
		}
	}))
	r := httptest.NewRequest(http.MethodPost, "/query", nil)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}
