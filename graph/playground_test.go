package graph_test

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gatehouse/graph"
)

// versions is graph/playground/VERSIONS.json, written by refresh.sh.
type versions struct {
	Packages map[string]struct {
		Version     string `json:"version"`
		LicenseFile string `json:"licenseFile"`
	} `json:"packages"`
	Files map[string]struct {
		From      string `json:"from"`
		Integrity string `json:"integrity"`
	} `json:"files"`
}

func readVersions(t *testing.T) versions {
	t.Helper()
	b, err := os.ReadFile("playground/VERSIONS.json")
	if err != nil {
		t.Fatal(err)
	}
	var v versions
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("VERSIONS.json: %v", err)
	}
	return v
}

func sri(b []byte) string {
	sum := sha512.Sum384(b)
	return "sha384-" + base64.StdEncoding.EncodeToString(sum[:])
}

// Every file embedded for the playground is either one refresh.sh copied
// from npm, with the integrity VERSIONS.json records, a license named
// there, or one of our own three: an edited asset, a file added by hand or
// a refresh that did not finish fails here.
func TestPlaygroundAssets(t *testing.T) {
	v := readVersions(t)
	ours := []string{"index.html", "playground.js", "playground.css"}
	licenses := map[string]bool{}
	for name, p := range v.Packages {
		if p.Version == "" || p.LicenseFile == "" {
			t.Errorf("VERSIONS.json: package %s has no version or license", name)
		}
		licenses[p.LicenseFile] = true
	}
	seen := map[string]bool{}
	err := fs.WalkDir(graph.PlaygroundFiles, "playground", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		name = strings.TrimPrefix(name, "playground/")
		seen[name] = true
		body, err := fs.ReadFile(graph.PlaygroundFiles, "playground/"+name)
		if err != nil {
			return err
		}
		if f, ok := v.Files[name]; ok {
			if got := sri(body); got != f.Integrity {
				t.Errorf("%s: integrity %s, VERSIONS.json says %s (from %s): run graph/playground/refresh.sh", name, got, f.Integrity, f.From)
			}
		} else if !slices.Contains(ours, name) && !licenses[name] {
			t.Errorf("%s is embedded but is neither in VERSIONS.json nor one of ours", name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name := range v.Files {
		if !seen[name] {
			t.Errorf("VERSIONS.json lists %s, which is not embedded", name)
		}
	}
	for name := range licenses {
		if !seen[name] {
			t.Errorf("VERSIONS.json names the license %s, which is not embedded", name)
		}
	}
	if len(v.Files) < 4 {
		t.Errorf("VERSIONS.json lists %d files, want GraphiQL's JS and CSS, React and ReactDOM", len(v.Files))
	}
}

var (
	pageRef  = regexp.MustCompile(`<(?:script|link)[^>]* (?:src|href)="([^"]*)"(?: integrity="([^"]*)")?(?: nonce="([^"]*)")?`)
	styleRef = regexp.MustCompile(`style="([^"]*)"`)
)

// The page loads only files this server has, each with the integrity of
// what the server sends, versioned by content, with its type, and its CSP
// names no other origin.
func TestPlaygroundPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	v := readVersions(t)
	get := func(url string, header ...string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, e.url+url, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res, body
	}

	res, page := get("/")
	csp := res.Header.Get("Content-Security-Policy")
	for k, want := range map[string]string{
		"Content-Type": "text/html; charset=utf-8", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
	} {
		if got := res.Header.Get(k); got != want {
			t.Errorf("page %s: %q, want %q", k, got, want)
		}
	}
	for _, bad := range []string{"http", "*", "'unsafe-inline'", "'unsafe-eval'"} {
		if strings.Contains(csp, bad) {
			t.Errorf("page CSP %q contains %s", csp, bad)
		}
	}
	for _, want := range []string{"default-src 'none';", "script-src 'self';", "connect-src 'self';", "frame-ancestors 'none';"} {
		if !strings.Contains(csp, want) {
			t.Errorf("page CSP %q lacks %q", csp, want)
		}
	}
	if res2, _ := get("/"); res2.Header.Get("Content-Security-Policy") == csp {
		t.Errorf("two responses share the nonce: %q", csp)
	}

	refs := pageRef.FindAllStringSubmatch(string(page), -1)
	var loaded []string
	for _, ref := range refs {
		url, integrity, nonce := html.UnescapeString(ref[1]), html.UnescapeString(ref[2]), ref[3]
		if url == "data:," { // the empty favicon
			continue
		}
		name, version, ok := strings.Cut(strings.TrimPrefix(url, "/playground/"), "?v=")
		if !ok || !strings.HasPrefix(url, "/playground/") {
			t.Errorf("page loads %q, want /playground/<file>?v=<version>", url)
			continue
		}
		loaded = append(loaded, name)
		if nonce != "" && !strings.Contains(csp, "'nonce-"+nonce+"'") {
			t.Errorf("%s: nonce %q is not the CSP's (%q)", name, nonce, csp)
		}
		res, body := get(url)
		if res.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d", url, res.StatusCode)
			continue
		}
		if got := sri(body); got != integrity {
			t.Errorf("%s: content %s, the page's integrity %s", url, got, integrity)
		}
		if f, ok := v.Files[name]; ok && f.Integrity != integrity {
			t.Errorf("%s: the page's integrity %s, VERSIONS.json %s", name, integrity, f.Integrity)
		}
		wantType := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}[path.Ext(name)]
		for k, want := range map[string]string{
			"Content-Type": wantType, "X-Content-Type-Options": "nosniff",
			"Cache-Control": "public, max-age=31536000, immutable", "ETag": `"` + version + `"`,
		} {
			if got := res.Header.Get(k); got != want {
				t.Errorf("%s %s: %q, want %q", url, k, got, want)
			}
		}
		// Revalidated, and kept only briefly when asked without its version.
		if res, _ := get(url, "If-None-Match", `"`+version+`"`); res.StatusCode != http.StatusNotModified {
			t.Errorf("%s with its ETag: status %d, want 304", url, res.StatusCode)
		}
		if res, _ := get("/playground/" + name); res.StatusCode != http.StatusOK || res.Header.Get("Cache-Control") != "no-cache" {
			t.Errorf("/playground/%s without ?v=: status %d, Cache-Control %q, want 200 no-cache", name, res.StatusCode, res.Header.Get("Cache-Control"))
		}
	}
	for name := range v.Files {
		if !slices.Contains(loaded, name) {
			t.Errorf("the page does not load %s (page loads %v)", name, loaded)
		}
	}
	if res, _ := get("/playground/nothing.js"); res.StatusCode != http.StatusNotFound {
		t.Errorf("/playground/nothing.js: status %d, want 404", res.StatusCode)
	}
	if res, body := get("/playground/licenses/react.LICENSE"); res.StatusCode != http.StatusOK || !strings.Contains(string(body), "MIT") {
		t.Errorf("react's license: status %d, %.40q", res.StatusCode, body)
	}

	// The style attributes the CSP allows by hash are exactly those
	// GraphiQL's bundle writes (CodeMirror's dialogs), so a refresh that
	// brings a new one fails here rather than in a user's console.
	bundle, err := os.ReadFile("playground/graphiql.min.js")
	if err != nil {
		t.Fatal(err)
	}
	var want, got []string
	for _, m := range styleRef.FindAllSubmatch(bundle, -1) {
		sum := sha256.Sum256(m[1])
		want = append(want, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
	}
	for _, directive := range strings.Split(csp, ";") {
		if sources, ok := strings.CutPrefix(strings.TrimSpace(directive), "style-src-attr "); ok {
			got = strings.Fields(strings.TrimPrefix(sources, "'unsafe-hashes' "))
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("style-src-attr allows %v; graphiql.min.js writes style attributes %v", got, want)
	}
}
