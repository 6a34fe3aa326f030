package graph

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"time"

	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/rs/cors"

	"gatehouse/auth"
)

// Options is what NewHandler needs.
type Options struct {
	Auth *auth.Service
	// HTTP says how tokens travel; NewHandler sets its Refuse, so that
	// refusals answer in GraphQL's error format.
	HTTP auth.HTTPConfig
	// Ready reports whether the database answers, for /readyz.
	Ready func(context.Context) error
	// Logger receives internal errors and panics; nil means slog.Default().
	Logger *slog.Logger
	// Limits bound each operation; zero means DefaultLimits.
	Limits Limits
	// NoIntrospection turns schema introspection off, and with it the
	// names that validation errors suggest.
	NoIntrospection bool
	// CORSOrigins may call the API from a browser with credentials; empty
	// means same-origin only.
	CORSOrigins []string
	// Observer records request latencies; nil records nothing.
	Observer RequestObserver
	// WebSocketIdle is how long a WebSocket may hold no subscription
	// before it is closed; zero means DefaultWebSocketIdle.
	WebSocketIdle time.Duration
}

// Request limits.
const (
	maxBodyBytes = 64 << 10
	// maxJSONValues bounds the values (array elements, object members)
	// in a body: decoding one costs far more than a byte (a number
	// becomes an allocated json.Number), so that 64 KiB of [1,1,...]
	// took 4 ms. Session data within model.MaxDataBytes holds fewer.
	maxJSONValues = 10000
)

// NewHandler returns gatehouse's whole HTTP API:
//
//	/             the GraphQL playground (GraphiQL, served from the binary)
//	/playground/  its scripts, styles and their licenses
//	/query        the GraphQL endpoint (POST, and GET for queries)
//	/healthz      liveness: the process serves HTTP
//	/readyz       readiness: the database answers
//
// The server and the tests mount this same handler.
func NewHandler(cfg Options) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Limits == (Limits{}) {
		cfg.Limits = DefaultLimits
	}
	gcfg := Config{Resolvers: &Resolver{auth: cfg.Auth}}
	gcfg.Complexity.Query.Sessions = func(child int, first *int) int {
		n := defaultPage
		if first != nil && *first > 0 {
			n = *first
		}
		return n * child
	}
	gcfg.Complexity.Query.SecurityEvents = func(child int, first *int, _ *string) int {
		n := auth.DefaultEventPage
		if first != nil && *first > 0 {
			n = *first
		}
		return n * child
	}
	srv := handler.New(NewExecutableSchema(gcfg))
	if cfg.WebSocketIdle == 0 {
		cfg.WebSocketIdle = DefaultWebSocketIdle
	}
	srv.AddTransport(transport.Options{})
	srv.AddTransport(websocketTransport(cfg.Auth, cfg.CORSOrigins, cfg.WebSocketIdle)) // before GET: upgrades are GETs
	srv.AddTransport(getTransport{})
	srv.AddTransport(postTransport{})
	docs := newQueryCache(cfg.Limits.Tokens)
	srv.SetQueryCache(docs)
	srv.SetParserTokenLimit(cfg.Limits.Tokens)
	if cfg.NoIntrospection {
		srv.SetDisableSuggestion(true)
		srv.SetValidationRulesFn(closedSchema)
	} else {
		srv.Use(extension.Introspection{})
	}
	srv.Use(documentLimits{cfg.Limits, docs, !cfg.NoIntrospection}) // before APQ, which caches what passes
	srv.Use(extension.AutomaticPersistedQuery{Cache: newAPQCache()})
	srv.Use(operationLimits{})
	srv.Use(wsSubscriptionsOnly{})
	srv.Use(extension.FixedComplexityLimit(cfg.Limits.Complexity))
	srv.Use(operationName{})
	srv.SetErrorPresenter(presentError(cfg.Logger))
	srv.SetRecoverFunc(recoverPanic(cfg.Logger))

	cfg.HTTP.Refuse = func(w http.ResponseWriter, err error) { refuse(w, http.StatusBadRequest, err) }
	var api http.Handler = apiHeaders(checkUpgrade(cfg.CORSOrigins, limitBody(cfg.Auth.Middleware(cfg.HTTP, checkMethod(srv)))))
	if len(cfg.CORSOrigins) > 0 {
		api = cors.New(cors.Options{
			AllowedOrigins:   cfg.CORSOrigins,
			AllowCredentials: true,
			AllowedMethods:   []string{http.MethodGet, http.MethodPost},
			AllowedHeaders: []string{"Content-Type", "Authorization", "Apollo-Require-Preflight",
				"X-Apollo-Operation-Name", "Apollographql-Client-Name", "Apollographql-Client-Version"},
			MaxAge: 600,
		}).Handler(api)
	}

	mux := http.NewServeMux()
	mux.Handle("/query", observe(cfg.Logger, cfg.Observer, api))
	pg := loadPlayground()
	mux.HandleFunc("GET /{$}", pg.servePage)
	mux.HandleFunc("GET /playground/", pg.serveAsset)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := cfg.Ready(ctx); err != nil {
			cfg.Logger.WarnContext(ctx, "not ready", "err", err)
			refuse(w, http.StatusServiceUnavailable, errors.New("database unavailable")) // INTERNAL_SERVER_ERROR
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	return routed(mux)
}

// apiHeaders keeps API answers (tokens, session data) out of every cache
// and out of anything that would render or frame them.
func apiHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		next.ServeHTTP(w, r)
	})
}

// checkMethod answers what cannot be a GraphQL-over-HTTP request with the
// status the specification gives: 405 for other methods, 415 for a POST
// body that is not JSON.
func checkMethod(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodOptions:
		case http.MethodPost:
			if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
				refuse(w, http.StatusUnsupportedMediaType, badRequest("POST bodies must be application/json"))
				return
			}
		default:
			w.Header().Set("Allow", "GET, POST")
			refuse(w, http.StatusMethodNotAllowed, badRequest("use GET for queries or POST with application/json"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// badRequest refuses the HTTP request itself, before GraphQL runs.
func badRequest(msg string) error { return &auth.Error{Code: auth.EBadRequest, Message: msg} }

// limitBody reads the whole request body up front, refusing with 413 one
// larger than maxBodyBytes or with more than maxJSONValues before any
// parsing is spent on it.
func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > maxBodyBytes {
			tooLarge(w)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			tooLarge(w)
			return
		} else if err != nil {
			refuse(w, http.StatusBadRequest, badRequest("cannot read request body"))
			return
		}
		if jsonValues(body) > maxJSONValues {
			refuse(w, http.StatusRequestEntityTooLarge, badRequest(fmt.Sprintf("request body holds more than %d JSON values", maxJSONValues)))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

// jsonValues counts the commas and opening brackets outside strings of a
// JSON text: about as many as the values it holds, without decoding them.
func jsonValues(b []byte) int {
	n, inString, escaped := 0, false, false
	for _, c := range b {
		switch {
		case escaped:
			escaped = false
		case inString:
			escaped, inString = c == '\\', c != '"'
		case c == '"':
			inString = true
		case c == ',' || c == '[' || c == '{':
			n++
		}
	}
	return n
}

func tooLarge(w http.ResponseWriter) {
	refuse(w, http.StatusRequestEntityTooLarge, badRequest("request body larger than 64 KiB"))
}
