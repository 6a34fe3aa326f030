package graph

import (
	"bytes"
	"crypto/rand"
	"crypto/sha512"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

// The playground is served from the binary, so it works offline and its
// page names no other origin. GraphiQL and React come from npm:
// playground/refresh.sh copies them here with their licenses and records
// their versions and hashes in playground/VERSIONS.json (checked by
// TestPlaygroundAssets). index.html, playground.js and playground.css are
// ours; the page has no inline script or style.
//
//go:embed playground/index.html playground/*.js playground/*.css playground/licenses
var playgroundFiles embed.FS

// playgroundCSP names no origin but this server's: scripts and styles are
// the files below /playground/, and GraphiQL's fonts and images are data:
// URLs inside its stylesheet. Two kinds of inline style remain, both
// GraphiQL's, allowed without 'unsafe-inline':
//   - the <style> its dialogs add to lock the page's scroll (from
//     react-remove-scroll, with sizes measured at run time) carries the
//     page's nonce, which playground.js hands to it;
//   - CodeMirror's search and jump-to-line dialogs write two fixed style
//     attributes, allowed by hash (TestPlaygroundPage checks they are
//     all the bundle has).
func playgroundCSP(nonce string) string {
	return "default-src 'none'; script-src 'self'; " +
		"style-src 'self' 'nonce-" + nonce + "'; " +
		"style-src-attr 'unsafe-hashes' " + strings.Join(playgroundStyleAttrs, " ") + "; " +
		"font-src data:; img-src 'self' data:; connect-src 'self'; " +
		"frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
}

// playgroundStyleAttrs are the hashes of `width: 10em` and `color: #888`.
var playgroundStyleAttrs = []string{
	"'sha256-H22cvujYHDQPJvzf4ie16OHKC3HsNj7RmRT3jO07Y/U='",
	"'sha256-Eaamrrh0b5a/naRsV/zg7s6+kGvexMXZQARWP6ukkg4='",
}

// playgroundAsset is one file served below /playground/.
type playgroundAsset struct {
	body        []byte
	contentType string
	version     string // a prefix of the content's hash: the ?v= of URL
	// URL is the path the page loads it from, with ?v= keyed by content,
	// so a browser may keep it for a year and a new build is fetched anew.
	URL string
	// Integrity is the sha384 of the content in SRI form.
	Integrity string
}

// playground is the page at / and the files it loads.
type playground struct {
	page   *template.Template          // executed with a playgroundPage
	assets map[string]*playgroundAsset // by URL path
}

// playgroundPage is what index.html is executed with.
type playgroundPage struct {
	Nonce string // of this response's CSP
}

// loadPlayground reads and hashes the embedded files once per process.
// It panics if the page does not render: a broken build, which every test
// that builds a handler reports.
var loadPlayground = sync.OnceValue(func() *playground {
	p := &playground{assets: map[string]*playgroundAsset{}}
	err := fs.WalkDir(playgroundFiles, "playground", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || name == "playground/index.html" {
			return err
		}
		body, err := playgroundFiles.ReadFile(name)
		if err != nil {
			return err
		}
		p.assets["/"+name] = newPlaygroundAsset("/"+name, body)
		return nil
	})
	if err != nil {
		panic("graph: playground: " + err.Error())
	}
	p.page = template.Must(template.New("index.html").Funcs(template.FuncMap{
		"asset": func(name string) (*playgroundAsset, error) {
			if a := p.assets["/playground/"+name]; a != nil {
				return a, nil
			}
			return nil, fmt.Errorf("no file playground/%s", name)
		},
	}).ParseFS(playgroundFiles, "playground/index.html"))
	if err := p.page.Execute(io.Discard, playgroundPage{}); err != nil {
		panic("graph: playground: " + err.Error())
	}
	return p
})

func newPlaygroundAsset(urlPath string, body []byte) *playgroundAsset {
	sum := sha512.Sum384(body)
	a := &playgroundAsset{
		body:        body,
		contentType: contentType(urlPath),
		version:     base64.RawURLEncoding.EncodeToString(sum[:9]),
		Integrity:   "sha384-" + base64.StdEncoding.EncodeToString(sum[:]),
	}
	a.URL = urlPath + "?v=" + a.version
	return a
}

// contentType is given here rather than by package mime, which a
// system's mime.types can change.
func contentType(name string) string {
	switch path.Ext(name) {
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	default:
		return "text/plain; charset=utf-8" // licenses
	}
}

// servePage serves the playground page: GraphiQL against /query, with the
// session cookie of this origin. The page is rendered for each response
// with a fresh nonce, so it is never stored.
func (p *playground) servePage(w http.ResponseWriter, r *http.Request) {
	nonce := rand.Text()
	var page bytes.Buffer
	if err := p.page.Execute(&page, playgroundPage{Nonce: nonce}); err != nil {
		refuse(w, http.StatusInternalServerError, err) // it rendered at load: unreachable
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", playgroundCSP(nonce))
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(page.Bytes())
}

// serveAsset serves a file of /playground/ with its type and an ETag (a
// revalidation is answered 304), cached for a year when the request names
// its current version, as the page does.
func (p *playground) serveAsset(w http.ResponseWriter, r *http.Request) {
	a := p.assets[r.URL.Path]
	if a == nil {
		refuse(w, http.StatusNotFound, badRequest("no such playground file"))
		return
	}
	h := w.Header()
	if r.URL.Query().Get("v") == a.version {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	h.Set("Content-Type", a.contentType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("ETag", `"`+a.version+`"`)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}
