package auth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestCSRFPrevention(t *testing.T) {
	s := &Service{cfg: Config{MaxAge: time.Hour, Now: time.Now}}
	token := NewToken().String()
	for _, tc := range []struct {
		name        string
		method, ct  string
		header      string
		cookie      bool
		wantRefused bool
	}{
		{"GET with cookie", http.MethodGet, "", "", true, true},
		{"GET with cookie and preflight header", http.MethodGet, "", "Apollo-Require-Preflight", true, false},
		{"GET with cookie and operation name header", http.MethodGet, "", "X-Apollo-Operation-Name", true, false},
		{"POST text/plain with cookie", http.MethodPost, "text/plain", "", true, true},
		{"POST form with cookie", http.MethodPost, "application/x-www-form-urlencoded", "", true, true},
		{"POST multipart with cookie", http.MethodPost, "multipart/form-data; boundary=x", "", true, true},
		{"POST without content type with cookie", http.MethodPost, "", "", true, true},
		{"POST JSON with cookie", http.MethodPost, "application/json; charset=utf-8", "", true, false},
		{"GET JSON with cookie (Apollo useGETForQueries)", http.MethodGet, "application/json", "", true, false},
		{"POST text/plain with charset and cookie", http.MethodPost, "text/plain; charset=utf-8", "", true, true},
		{"GET without cookie", http.MethodGet, "", "", false, false},
		{"POST text/plain without cookie", http.MethodPost, "text/plain", "", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "/", strings.NewReader("{}"))
			if tc.ct != "" {
				r.Header.Set("Content-Type", tc.ct)
			}
			if tc.header != "" {
				r.Header.Set(tc.header, "1")
			}
			if tc.cookie {
				r.AddCookie(&http.Cookie{Name: DefaultCookieName, Value: token})
			}
			reached := false
			w := httptest.NewRecorder()
			s.Middleware(HTTPConfig{}, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached = true })).ServeHTTP(w, r)
			if refused := !reached; refused != tc.wantRefused {
				t.Errorf("refused = %v, want %v", refused, tc.wantRefused)
			}
			if tc.wantRefused && (w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "Apollo-Require-Preflight")) {
				t.Errorf("refusal: status %d body %s; want 400 naming the header", w.Code, w.Body)
			}
		})
	}
}
