package graph

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	coderws "github.com/coder/websocket"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"gatehouse/auth"
	"gatehouse/graph/model"
	"gatehouse/storage"
)

// Subscriptions run over WebSocket with the graphql-transport-ws protocol
// (the graphql-ws library's, which Apollo Client's GraphQLWsLink speaks),
// through gqlgen's transport. A connection authenticates once, at
// connection_init: by the payload's {"authorization": "Bearer <token>"},
// or else by the session cookie of the upgrade request. The upgrade itself
// is refused from a page of another origin than the API's own or
// CORS_ORIGINS (cross-site WebSocket hijacking: browsers send the cookie
// with any page's upgrade, and no preflight guards it).

// WebSocket limits.
const (
	// wsInitTimeout is how long a connection may take to send
	// connection_init.
	wsInitTimeout = 10 * time.Second
	// wsPingInterval: the server pings this often, and a client that does
	// not answer within twice it is disconnected.
	wsPingInterval = 20 * time.Second
	// wsReadLimit bounds one message from the client.
	wsReadLimit = 16 << 10
	// wsEndGrace lets the last event and the complete message go out before
	// the socket of an ended session closes.
	wsEndGrace = 500 * time.Millisecond
)

// DefaultWebSocketIdle is how long a connection may hold no subscription
// before it is closed, when Options.WebSocketIdle is zero.
const DefaultWebSocketIdle = time.Minute

// wsConn is one WebSocket connection: the session it authenticated as and
// its subscriptions.
type wsConn struct {
	session *storage.Session
	client  auth.Client
	close   context.CancelFunc // closes the socket

	mu     sync.Mutex
	active int
	ended  bool // the session ended: no more subscriptions
	idle   *time.Timer
	wait   time.Duration
}

type wsKey struct{}

func wsConnFrom(ctx context.Context) *wsConn {
	c, _ := ctx.Value(wsKey{}).(*wsConn)
	return c
}

// start counts a new subscription, or refuses one after the session ended.
func (c *wsConn) start() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return false
	}
	c.active++
	c.idle.Stop()
	return true
}

// stop counts a subscription's end; ended says the session ended with it.
func (c *wsConn) stop(ended bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.active--
	c.ended = c.ended || ended
	switch {
	case c.ended:
		time.AfterFunc(wsEndGrace, c.close)
	case c.active == 0:
		c.idle.Reset(c.wait)
	}
}

// wsTransport is gqlgen's WebSocket transport for WebSocket upgrades only
// (gqlgen's takes any request with an Upgrade header).
type wsTransport struct{ transport.Websocket }

func (wsTransport) Supports(r *http.Request) bool {
	return r.Method == http.MethodGet && isWebSocket(r)
}

func websocketTransport(svc *auth.Service, corsOrigins []string, idle time.Duration) wsTransport {
	// coder/websocket allows the same origin (the Origin's host is the
	// request's) and these, matched on scheme and host.
	patterns := slices.Clone(corsOrigins)
	limit := int64(wsReadLimit)
	return wsTransport{transport.Websocket{
		Implementation: transportWSOnly{transport.CoderWebsocketImplementation{
			AcceptOptions: coderws.AcceptOptions{OriginPatterns: patterns},
		}},
		InitFunc: func(ctx context.Context, p transport.InitPayload) (context.Context, *transport.InitPayload, error) {
			return initConnection(ctx, svc, p, idle)
		},
		InitTimeout:      wsInitTimeout,
		PingPongInterval: wsPingInterval,
		PayloadReadLimit: &limit,
	}}
}

// initConnection authenticates a connection at connection_init.
func initConnection(ctx context.Context, svc *auth.Service, p transport.InitPayload, idle time.Duration) (context.Context, *transport.InitPayload, error) {
	var sess *storage.Session
	var err error
	if h, ok := p["authorization"].(string); ok && h != "" {
		tok, found := cutPrefixFold(h, "Bearer ")
		if found {
			sess, err = svc.SessionForToken(ctx, strings.TrimSpace(tok))
		}
	} else {
		sess, err = auth.SessionFrom(ctx)
	}
	forbidden := transport.WithWebsocketCloseCode(ctx, 4403)
	if err != nil {
		return forbidden, nil, errors.New("internal server error")
	}
	if sess == nil {
		return forbidden, nil, errors.New("Forbidden: not signed in")
	}
	ctx, cancel := context.WithCancel(ctx)
	c := &wsConn{session: sess, client: auth.ClientFrom(ctx), close: cancel, wait: idle}
	c.idle = time.AfterFunc(idle, cancel)
	return context.WithValue(ctx, wsKey{}, c), nil, nil
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

// isWebSocket reports whether r asks for a WebSocket. Other upgrades (a
// client's h2c offer) are ignored, and the request served as HTTP.
func isWebSocket(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// checkUpgrade refuses, with a code, the WebSocket upgrades gatehouse does
// not take, before gqlgen sees them: any but a GET offering
// graphql-transport-ws, and one from a page of another origin than the
// API's own (the Origin's host is the request's) or one of origins.
func checkUpgrade(origins []string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isWebSocket(r) {
			next.ServeHTTP(w, r)
			return
		}
		var offered []string
		for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
			for _, p := range strings.Split(h, ",") {
				offered = append(offered, strings.TrimSpace(p))
			}
		}
		switch {
		case r.Method != http.MethodGet:
			refuse(w, http.StatusBadRequest, badRequest("a WebSocket upgrade is a GET"))
		case !slices.Contains(offered, "graphql-transport-ws"):
			refuse(w, http.StatusBadRequest, badRequest("the WebSocket subprotocol must be graphql-transport-ws"))
		case !sameOrListed(r, origins):
			refuse(w, http.StatusForbidden, badRequest("WebSocket upgrades are taken from the API's own origin and CORS_ORIGINS only"))
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// sameOrListed reports whether r has no Origin (not a browser's page), the
// API's own, or one of origins.
func sameOrListed(r *http.Request, origins []string) bool {
	o := r.Header.Get("Origin")
	if o == "" || slices.Contains(origins, o) {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}

// transportWSOnly negotiates graphql-transport-ws only: gqlgen also speaks
// the older subscriptions-transport-ws ("graphql-ws"). (The HTTP server's
// read and write timeouts end with the hijack: a socket lives as long as
// its pings are answered.)
type transportWSOnly struct {
	transport.WebsocketImplementation
}

func (t transportWSOnly) Accept(w http.ResponseWriter, r *http.Request, o transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	o.Subprotocols = []string{"graphql-transport-ws"}
	return t.WebsocketImplementation.Accept(w, r, o)
}

// wsSubscriptionsOnly refuses queries and mutations sent over a WebSocket:
// they belong on HTTP, where CSRF rules, cookies and caching apply.
type wsSubscriptionsOnly struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationInterceptor
} = wsSubscriptionsOnly{}

func (wsSubscriptionsOnly) ExtensionName() string                   { return "WebSocketSubscriptionsOnly" }
func (wsSubscriptionsOnly) Validate(graphql.ExecutableSchema) error { return nil }
func (wsSubscriptionsOnly) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	oc := graphql.GetOperationContext(ctx)
	if wsConnFrom(ctx) != nil && oc.Operation != nil && oc.Operation.Operation != ast.Subscription {
		return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{{
			Message:    "only subscriptions run over WebSocket: send queries and mutations over HTTP",
			Extensions: map[string]any{"code": model.CodeBadRequest},
		}}})
	}
	return next(ctx)
}

// errSubscriptionOverHTTP answers a subscription sent over HTTP.
var errSubscriptionOverHTTP = &gqlerror.Error{
	Message:    "subscriptions run over WebSocket only (graphql-transport-ws on /query)",
	Extensions: map[string]any{"code": model.CodeBadRequest},
}

// sessionEvents is the sessionEvents subscription.
func (r *Resolver) sessionEvents(ctx context.Context) (<-chan *model.SessionEvent, error) {
	c := wsConnFrom(ctx)
	if c == nil {
		return nil, errSubscriptionOverHTTP
	}
	if !c.start() {
		return nil, auth.ErrUnauthenticated
	}
	events, err := r.auth.Subscribe(ctx, c.session, c.client)
	if err != nil {
		c.stop(false)
		return nil, err
	}
	out := make(chan *model.SessionEvent)
	go func() {
		defer close(out)
		ended := false
		defer func() { c.stop(ended) }()
		for ev := range events {
			ended = ev.Type == auth.LiveRevoked || ev.Type == auth.LiveExpired || ev.Type == auth.LivePasswordChanged
			select {
			case out <- &model.SessionEvent{Type: model.SessionEventType(ev.Type), At: utc(ev.At), SessionID: ev.SessionID}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}
