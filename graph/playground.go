package graph

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"

	"github.com/99designs/gqlgen/graphql/playground"
)

// playgroundPage serves gqlgen's GraphiQL page with a Content-Security-Policy
// that allows exactly its inline script (by hash), its pinned CDN assets
// (which carry SRI hashes) and requests to this server.
func playgroundPage() http.Handler {
	page := playground.Handler("gatehouse", "/query")
	rec := httptest.NewRecorder()
	page(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	csp := playgroundCSP(rec.Body.String())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		page(w, r)
	})
}

var inlineScript = regexp.MustCompile(`(?s)<script>(.*?)</script>`)

func playgroundCSP(html string) string {
	scripts := []string{"'self'", "https://cdn.jsdelivr.net"}
	for _, m := range inlineScript.FindAllStringSubmatch(html, -1) {
		sum := sha256.Sum256([]byte(m[1]))
		scripts = append(scripts, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
	}
	return strings.Join([]string{
		"default-src 'self'",
		"script-src " + strings.Join(scripts, " "),
		"style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net",
		"font-src 'self' data: https://cdn.jsdelivr.net",
		"img-src 'self' data:",
		"connect-src 'self'",
		"frame-ancestors 'none'",
		"base-uri 'none'",
		"form-action 'none'",
	}, "; ")
}
