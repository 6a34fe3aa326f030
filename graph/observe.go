package graph

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"regexp"
	"time"

	"github.com/99designs/gqlgen/graphql"
)

// RequestObserver records each GraphQL request's latency by operation
// name; internal/metrics implements it.
type RequestObserver interface {
	Request(operation string, d time.Duration)
}

// requestIDHeader carries the request id, echoed back (or made up).
const requestIDHeader = "X-Request-Id"

var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

type infoKey struct{}

// requestInfo is what the access log learns while a request is served.
type requestInfo struct {
	id        string
	operation string
}

// observe logs one line per request (operation, status, duration, request
// id; never a token or a body) and reports its latency.
func observe(log *slog.Logger, obs RequestObserver, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &requestInfo{id: r.Header.Get(requestIDHeader)}
		if !validRequestID.MatchString(info.id) {
			var b [8]byte
			_, _ = rand.Read(b[:])
			info.id = hex.EncodeToString(b[:])
		}
		w.Header().Set(requestIDHeader, info.id)
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), infoKey{}, info)))
		d := time.Since(start)
		if obs != nil {
			obs.Request(info.operation, d)
		}
		log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("id", info.id),
			slog.String("method", r.Method),
			slog.String("operation", info.operation),
			slog.Int("status", rec.status),
			slog.Duration("duration", d),
		)
	})
}

// requestID returns the id of the request in ctx, so that an error's log
// line can be found from the access log line and the client's header.
func requestID(ctx context.Context) string {
	if info, ok := ctx.Value(infoKey{}).(*requestInfo); ok {
		return info.id
	}
	return ""
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// operationName is a gqlgen extension that tells the access log which
// operation ran.
type operationName struct{}

var (
	_ graphql.HandlerExtension     = operationName{}
	_ graphql.OperationInterceptor = operationName{}
)

func (operationName) ExtensionName() string                   { return "OperationName" }
func (operationName) Validate(graphql.ExecutableSchema) error { return nil }

func (operationName) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	// A WebSocket's request runs many operations at once: its log line is
	// the connection's.
	if info, ok := ctx.Value(infoKey{}).(*requestInfo); ok && wsConnFrom(ctx) == nil {
		oc := graphql.GetOperationContext(ctx)
		info.operation = oc.OperationName
		if info.operation == "" && oc.Operation != nil {
			info.operation = oc.Operation.Name
		}
	}
	return next(ctx)
}
