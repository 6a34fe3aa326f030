package graph_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/vektah/gqlparser/v2/gqlerror"

	"gatehouse/auth"
	"gatehouse/graph"
	"gatehouse/internal/dbtest"
)

// BenchmarkPresentError is the error presenter alone, on each kind of
// error it meets.
func BenchmarkPresentError(b *testing.B) {
	present := graph.PresentError(slog.New(slog.DiscardHandler))
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		err  error
		code string
	}{
		{"unauthenticated", fmt.Errorf("resolver: %w", auth.ErrUnauthenticated), "UNAUTHENTICATED"},
		{"input", &auth.InputError{Field: "first", Reason: "must be 1 to 100"}, "BAD_USER_INPUT"},
		{"gqlgen", &gqlerror.Error{Message: "bad", Extensions: map[string]any{"code": "GRAPHQL_VALIDATION_FAILED"}}, "GRAPHQL_VALIDATION_FAILED"},
		{"internal", errors.New("storage: session by id: connection refused"), "INTERNAL_SERVER_ERROR"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			if got := present(ctx, tc.err).Extensions["code"]; got != tc.code {
				b.Fatalf("code %v, want %s", got, tc.code)
			}
			b.ReportAllocs()
			for b.Loop() {
				present(ctx, tc.err)
			}
		})
	}
}

// handlerEnv is the whole HTTP handler on a fresh database, called in
// process (no network), with a signed-in user's bearer token.
type handlerEnv struct {
	h     http.Handler
	token string
}

func newHandlerEnv(b testing.TB) *handlerEnv {
	b.Helper()
	st := dbtest.Open(b)
	log := slog.New(slog.DiscardHandler)
	svc, err := auth.NewService(st, auth.Config{
		TTL: time.Hour, MaxAge: 24 * time.Hour, BcryptCost: 4, AllowSignup: true, Logger: log,
	})
	if err != nil {
		b.Fatal(err)
	}
	_, tok, err := svc.Register(context.Background(), "bench", "bench password", `{"theme":"dark"}`, auth.Client{})
	if err != nil {
		b.Fatal(err)
	}
	h := graph.NewHandler(graph.Options{Auth: svc, Ready: st.Ping, Logger: log})
	return &handlerEnv{h: h, token: tok.String()}
}

// discardWriter keeps only the status and the body's prefix, so that the
// benchmarks count the handler's allocations, not a recorder's.
type discardWriter struct {
	h      http.Header
	status int
	body   []byte
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(s int)   { w.status = s }
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if len(w.body) < 512 {
		w.body = append(w.body, p[:min(len(p), 512)]...)
	}
	return len(p), nil
}

// serve benchmarks one GraphQL POST through the whole handler, checking
// the first answer starts with want.
func (e *handlerEnv) serve(b *testing.B, query string, signedIn bool, want string) {
	body := []byte(fmt.Sprintf(`{"query":%q}`, query))
	r := httptest.NewRequest(http.MethodPost, "/query", nil)
	r.Header.Set("Content-Type", "application/json")
	if signedIn {
		r.Header.Set("Authorization", "Bearer "+e.token)
	}
	w := &discardWriter{h: http.Header{}}
	rd := bytes.NewReader(body)
	do := func() {
		clear(w.h)
		w.status, w.body = 0, w.body[:0]
		rd.Reset(body)
		r.Body = io.NopCloser(rd)
		r.ContentLength = int64(len(body))
		e.h.ServeHTTP(w, r)
	}
	do()
	if w.status != http.StatusOK || !bytes.HasPrefix(w.body, []byte(want)) {
		b.Fatalf("status %d, body %s; want 200 and %s…", w.status, w.body, want)
	}
	b.ReportAllocs()
	for b.Loop() {
		do()
	}
}

// BenchmarkSessionQuery is the hot path end to end, minus the network:
// { session { id expiresAt } } with a bearer token, one database look-up
// (to the in-process engine, whose work and allocations are included).
func BenchmarkSessionQuery(b *testing.B) {
	newHandlerEnv(b).serve(b, `{ session { id expiresAt } }`, true, `{"data":{"session":{"id":"`)
}

// BenchmarkMeQuery is { me { id username createdAt } } signed in.
func BenchmarkMeQuery(b *testing.B) {
	newHandlerEnv(b).serve(b, `{ me { id username createdAt } }`, true, `{"data":{"me":{"id":"`)
}

// BenchmarkAnonymousQuery is the GraphQL layer with no database work: a
// signed-out { me { id } } answers null without a look-up.
func BenchmarkAnonymousQuery(b *testing.B) {
	newHandlerEnv(b).serve(b, `{ me { id } }`, false, `{"data":{"me":null}}`)
}

// BenchmarkErrorQuery is a request that yields an error through the
// presenter, without a database look-up: sessions needs a session.
func BenchmarkErrorQuery(b *testing.B) {
	newHandlerEnv(b).serve(b, `{ sessions { id } }`, false, `{"errors":[{"message":"not signed in"`)
}
