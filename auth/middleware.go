package auth

import (
	"cmp"
	"context"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"gatehouse/storage"
)

// DefaultCookieName is the session cookie's name (after the __Host- prefix
// when the cookie is Secure: see HTTPConfig.SessionCookieName).
const DefaultCookieName = "gatehouse_session"

// hostPrefix is the cookie name prefix browsers honour only on a cookie
// that is Secure, has Path=/ and no Domain, and was set over https by the
// host itself: a sibling subdomain can neither plant nor overwrite it.
const hostPrefix = "__Host-"

// maxUserAgent bounds what a client can make us store.
const maxUserAgent = 512

// HTTPConfig says how tokens travel over HTTP.
type HTTPConfig struct {
	// CookieName defaults to DefaultCookieName.
	CookieName string
	// CookieSecure marks the cookie Secure (HTTPS only), and names it with
	// the __Host- prefix.
	CookieSecure bool
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// Refuse answers a request the middleware turns away; err says why
	// (its code is EBadRequest). The transport supplies it, so that the
	// answer is in its format; nil means a plain-text 400.
	Refuse func(w http.ResponseWriter, err error)
}

// SessionCookieName is the name of the session cookie: CookieName, after
// the __Host- prefix when the cookie is Secure. Browsers refuse the prefix
// on a cookie that is not Secure, so a plain-http deployment goes without.
func (c HTTPConfig) SessionCookieName() string {
	name := cmp.Or(c.CookieName, DefaultCookieName)
	if c.CookieSecure {
		return hostPrefix + name
	}
	return name
}

type ctxKey struct{}

// request is the per-request authentication state the middleware puts in
// the context. The caller's session is looked up lazily, at most once:
// requests that never ask (login, introspection) cost no database call.
type request struct {
	svc    *Service
	cfg    *HTTPConfig
	w      http.ResponseWriter
	token  string
	cookie bool // the token came from a session cookie
	// oldCookie: the request carries a cookie of the name the session
	// cookie had before the __Host- prefix (a Secure deployment only). Its
	// token is used when the prefixed cookie is missing, and it is expired
	// whenever the session cookie is set or cleared: an upgrade signs
	// nobody out and leaves one cookie behind.
	oldCookie bool
	client    Client

	once sync.Once
	mu   sync.Mutex
	sess *storage.Session
	err  error
}

// Middleware resolves the caller of every request behind it: it reads the
// token from "Authorization: Bearer" or the session cookie (named
// SessionCookieName; without it, a Secure deployment also reads the
// unprefixed name that versions before the __Host- prefix set), and the
// client's user agent and address, for SessionFrom and friends. A request
// that authenticates with the cookie but could come from another site is
// not served: cfg.Refuse answers it.
func (s *Service) Middleware(cfg HTTPConfig, next http.Handler) http.Handler {
	if cfg.CookieName == "" {
		cfg.CookieName = DefaultCookieName
	}
	if cfg.Refuse == nil {
		cfg.Refuse = func(w http.ResponseWriter, err error) { http.Error(w, ErrorMessage(err), http.StatusBadRequest) }
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := &request{svc: s, cfg: &cfg, w: w, client: clientOf(r, cfg.TrustedProxies)}
		old, err := r.Cookie(cfg.CookieName)
		req.oldCookie = cfg.CookieSecure && err == nil
		if tok, ok := bearer(r); ok {
			req.token = tok
		} else if c, err := r.Cookie(cfg.SessionCookieName()); err == nil {
			req.token, req.cookie = c.Value, true
		} else if req.oldCookie {
			req.token, req.cookie = old.Value, true
		}
		if req.cookie && crossSiteCapable(r) {
			cfg.Refuse(w, errCrossSite)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, req)))
	})
}

// crossSiteCapable reports whether r could have been sent by another
// site's page without a CORS preflight, and so carries no proof that it
// was not: Apollo Server's CSRF prevention rule. A request counts as
// preflighted when it has an Apollo-Require-Preflight or
// X-Apollo-Operation-Name header, or a Content-Type that browsers only
// send after a preflight (anything but none, text/plain, form or
// multipart: a GET or POST with application/json included). Browsers
// attach cookies to simple requests, so a cookie-authenticated one is
// refused with errCrossSite.
//
// A WebSocket upgrade is not judged here: no page can send one without
// its Origin, which the transport that accepts it checks (graph's).
func crossSiteCapable(r *http.Request) bool {
	if r.Header.Get("Apollo-Require-Preflight") != "" || r.Header.Get("X-Apollo-Operation-Name") != "" {
		return false
	}
	if r.Method == http.MethodGet && strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		return false // a WebSocket upgrade; graph refuses one from another origin
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return true // a browser would not call it safelisted, but be strict
	}
	switch mt {
	case "text/plain", "application/x-www-form-urlencoded", "multipart/form-data":
		return true
	}
	return false
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:]), true
	}
	return "", false
}

func from(ctx context.Context) *request {
	req, _ := ctx.Value(ctxKey{}).(*request)
	return req
}

// CallerFrom returns the live session of the request in ctx, pending or
// full, or nil if it has none. The error reports a database failure, not a
// bad token. Only what a pending session may do (show or end itself,
// verify its second factor) asks for it; everything else uses SessionFrom
// or RequireSession.
func CallerFrom(ctx context.Context) (*storage.Session, error) {
	req := from(ctx)
	if req == nil {
		return nil, nil
	}
	req.once.Do(func() {
		if req.token == "" {
			return
		}
		sess, err := req.svc.authenticate(ctx, req.token)
		req.mu.Lock()
		req.sess, req.err = sess, err
		req.mu.Unlock()
		switch {
		case sess == nil && err == nil && req.cookie:
			req.clearCookie() // a dead cookie is dropped, not resent forever
		case sess != nil && req.cookie && req.oldCookie:
			req.setCookie(sess, req.token) // under the prefixed name, the old one expired
		}
	})
	req.mu.Lock()
	defer req.mu.Unlock()
	return req.sess, req.err
}

// SessionFrom returns the full session of the request in ctx, or nil if it
// has none (or only a pending one). The error reports a database failure.
func SessionFrom(ctx context.Context) (*storage.Session, error) {
	sess, err := CallerFrom(ctx)
	if sess != nil && sess.Pending {
		return nil, err
	}
	return sess, err
}

// RequireSession is SessionFrom for operations that need a session: no
// session is ErrUnauthenticated, a pending one ErrSecondFactorRequired.
func RequireSession(ctx context.Context) (*storage.Session, error) {
	sess, err := CallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	if sess == nil {
		return nil, ErrUnauthenticated
	}
	if sess.Pending {
		return nil, ErrSecondFactorRequired
	}
	return sess, nil
}

// ClientFrom returns the client of the request in ctx.
func ClientFrom(ctx context.Context) Client {
	if req := from(ctx); req != nil {
		return req.client
	}
	return Client{}
}

// SignedIn records that the request now acts as sess, whose credential is
// tok, and sets the session cookie. Login, register, a password change and
// a verified second factor call it.
func SignedIn(ctx context.Context, sess *storage.Session, tok Token) {
	req := from(ctx)
	if req == nil {
		return
	}
	req.once.Do(func() {}) // the new session wins over the old token
	req.mu.Lock()
	req.sess, req.err = sess, nil
	req.mu.Unlock()
	req.setCookie(sess, tok.String())
}

// SignedOut records that the request's session is gone and expires the
// session cookie.
func SignedOut(ctx context.Context) {
	req := from(ctx)
	if req == nil {
		return
	}
	req.once.Do(func() {})
	req.mu.Lock()
	req.sess = nil
	req.mu.Unlock()
	req.clearCookie()
	req.w.Header().Set("Clear-Site-Data", `"cookies"`)
}

// setCookie sets the session cookie to value, the token of sess, for what
// is left of the session's life.
func (req *request) setCookie(sess *storage.Session, value string) {
	maxAge := int(sess.CreatedAt.Add(req.svc.cfg.MaxAge).Sub(req.svc.cfg.Now()).Round(time.Second).Seconds())
	http.SetCookie(req.w, req.newCookie(req.cfg.SessionCookieName(), value, max(maxAge, 1)))
	req.expireOldCookie()
}

func (req *request) clearCookie() {
	http.SetCookie(req.w, req.newCookie(req.cfg.SessionCookieName(), "", -1))
	req.expireOldCookie()
}

func (req *request) expireOldCookie() {
	if req.oldCookie {
		http.SetCookie(req.w, req.newCookie(req.cfg.CookieName, "", -1))
	}
}

func (req *request) newCookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   req.cfg.CookieSecure,
		SameSite: http.SameSiteLaxMode,
	}
}

// clientOf returns the user agent and the client address; X-Forwarded-For
// is believed only as far as the hops through trusted proxies go.
func clientOf(r *http.Request, trusted []netip.Prefix) Client {
	ua := r.UserAgent()
	if len(ua) > maxUserAgent {
		ua = ua[:maxUserAgent]
	}
	ua = strings.ToValidUTF8(ua, "")
	return Client{UserAgent: ua, IP: clientIP(r, trusted)}
}

func clientIP(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return ""
	}
	peer = peer.Unmap()
	if !isTrusted(peer, trusted) {
		return peer.String()
	}
	// Walk the chain from the nearest hop; the first address not ours is
	// the client. Anything a client wrote further left is not believed.
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		peer = a.Unmap()
		if !isTrusted(peer, trusted) {
			break
		}
	}
	return peer.String()
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
