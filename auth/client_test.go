package auth

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var tenSlash8 = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}

func TestClientIP(t *testing.T) {
	tests := []struct {
		name    string
		trusted []netip.Prefix
		remote  string
		xff     []string // one entry per header line
		want    string
	}{
		{
			name:   "no proxies, no header",
			remote: "203.0.113.7:1234",
			want:   "203.0.113.7",
		},
		{
			name:   "no trusted proxies ignores X-Forwarded-For",
			remote: "203.0.113.7:1234",
			xff:    []string{"198.51.100.9"},
			want:   "203.0.113.7",
		},
		{
			name:   "no trusted proxies ignores header even from a private peer",
			remote: "10.0.0.1:1234",
			xff:    []string{"198.51.100.9"},
			want:   "10.0.0.1",
		},
		{
			name:    "untrusted peer's header ignored",
			trusted: tenSlash8,
			remote:  "203.0.113.7:1234",
			xff:     []string{"198.51.100.9"},
			want:    "203.0.113.7",
		},
		{
			name:    "trusted peer without header",
			trusted: tenSlash8,
			remote:  "10.0.0.1:1234",
			want:    "10.0.0.1",
		},
		{
			name:    "trusted peer with empty header",
			trusted: tenSlash8,
			remote:  "10.0.0.1:1234",
			xff:     []string{""},
			want:    "10.0.0.1",
		},
		{
			name:    "trusted peer, one hop",
			trusted: tenSlash8,
			remote:  "10.0.0.1:1234",
			xff:     []string{"198.51.100.9"},
			want:    "198.51.100.9",
		},
		{
			name:    "trusted hops skipped right to left",
			trusted: tenSlash8,
			remote:  "10.0.0.1:1234",
			xff:     []string{"198.51.100.9, 10.0.0.3, 10.0.0.2"},
			want:    "198.51.100.9",
		},
		{
			name:    "spoofed left-most entries ignored",
			trusted: tenSlash8,
			remote:  "10.0.0.1:1234",
			xff:     []string{"6.6.6.6, 7.7.7.7, 198.51.100.9, 10.0.0.2"},
			want:    "198.51.100.9",
		},
		{
			name:    "spoofed trusted-looking entry left of the client ignored",
			trusted: tenSlash8,
			remote:  "10.0.0.1:1234",
			xff:     []string{"10.9.9.9, 198.51.100.9"},
			want:    "198.51.100.9",
		},
		{
			name:    "garbage entry stops the walk at the last trusted hop",
			trusted: tenSlash8,
			remote:  "10.0.0.1:1234",
			xff:     []string{"198.51.100.9, garbage, 10.0.0.2"},
			want:    "10.0.0.2",
		},
		{
			name:    "garbage right-most entry leaves the peer",
			trusted: tenSlash8,
			remote:  "10.0.0.1:1234",
			xff:     []string{"198.51.100.9, unknown"},
			want:    "10.0.0.1",
		},
		{
			name:    "entry with a port is not an address",
			trusted: tenSlash8,
			remote:  "10.0.0.1:1234",
			xff:     []string{"198.51.100.9:5555"},
			want:    "10.0.0.1",
		},
		{
			name:    "empty entry stops the walk",
			trusted: tenSlash8,
			remote:  "10.0.0.1:1234",
			xff:     []string{"198.51.100.9,,10.0.0.2"},
			want:    "10.0.0.2",
		},
		{
			name:    "all hops trusted gives the left-most",
			trusted: tenSlash8,
			remote:  "10.0.0.1:1234",
			xff:     []string{"10.1.1.1, 10.2.2.2"},
			want:    "10.1.1.1",
		},
		{
			name:    "spaces around entries",
			trusted: tenSlash8,
			remote:  "10.0.0.1:1234",
			xff:     []string{"  198.51.100.9  ,   10.0.0.2 "},
			want:    "198.51.100.9",
		},
		{
			name:    "multiple header lines are one list",
			trusted: tenSlash8,
			remote:  "10.0.0.1:1234",
			xff:     []string{"6.6.6.6", "198.51.100.9", "10.0.0.2"},
			want:    "198.51.100.9",
		},
		{
			name:    "multiple header lines with lists",
			trusted: tenSlash8,
			remote:  "10.0.0.1:1234",
			xff:     []string{"6.6.6.6, 198.51.100.9", "10.0.0.3, 10.0.0.2"},
			want:    "198.51.100.9",
		},
		{
			name:   "IPv4-mapped IPv6 peer unmapped",
			remote: "[::ffff:203.0.113.7]:443",
			want:   "203.0.113.7",
		},
		{
			name:    "IPv4-mapped IPv6 peer matches an IPv4 prefix",
			trusted: tenSlash8,
			remote:  "[::ffff:10.0.0.1]:443",
			xff:     []string{"198.51.100.9"},
			want:    "198.51.100.9",
		},
		{
			name:    "IPv4-mapped hops unmapped",
			trusted: tenSlash8,
			remote:  "10.0.0.1:443",
			xff:     []string{"::ffff:198.51.100.9, ::ffff:10.0.0.2"},
			want:    "198.51.100.9",
		},
		{
			name:   "IPv6 peer",
			remote: "[2001:db8::1]:443",
			want:   "2001:db8::1",
		},
		{
			name:    "IPv6 trusted proxy",
			trusted: []netip.Prefix{netip.MustParsePrefix("fd00::/8")},
			remote:  "[fd00::1]:443",
			xff:     []string{"2001:db8::5, fd00::2"},
			want:    "2001:db8::5",
		},
		{
			name:    "several trusted prefixes",
			trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.0.0/16")},
			remote:  "192.168.1.1:443",
			xff:     []string{"198.51.100.9, 10.0.0.2"},
			want:    "198.51.100.9",
		},
		{
			name:   "remote address without a port",
			remote: "203.0.113.7",
			want:   "203.0.113.7",
		},
		{
			name:   "unparsable remote address",
			remote: "not-an-address:80",
			want:   "",
		},
		{
			name:   "empty remote address",
			remote: "",
			want:   "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := apiRequest()
			r.RemoteAddr = tt.remote
			for _, line := range tt.xff {
				r.Header.Add("X-Forwarded-For", line)
			}
			if got := clientIP(r, tt.trusted); got != tt.want {
				t.Errorf("clientIP(remote %q, X-Forwarded-For %q) = %q, want %q", tt.remote, tt.xff, got, tt.want)
			}
		})
	}
}

func TestClientOf(t *testing.T) {
	long := strings.Repeat("a", 600)
	tests := []struct {
		name string
		ua   string
		want string
	}{
		{"none", "", ""},
		{"short", "curl/8.0", "curl/8.0"},
		{"exactly 512", long[:512], long[:512]},
		{"truncated to 512", long, long[:512]},
		// "é" is 2 bytes: the cut falls inside it, and the half rune goes.
		{"cut inside a rune", long[:511] + "é" + "tail", long[:511]},
		{"rune ending at 512", long[:510] + "é" + "tail", long[:510] + "é"},
		{"invalid UTF-8 stripped", "Mozilla\xff/5.0\xc3", "Mozilla/5.0"},
		{"valid UTF-8 kept", "Navigateur été", "Navigateur été"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := apiRequest()
			r.RemoteAddr = "203.0.113.7:1234"
			if tt.ua != "" {
				r.Header.Set("User-Agent", tt.ua)
			}
			got := clientOf(r, nil)
			want := Client{UserAgent: tt.want, IP: "203.0.113.7"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("clientOf (-want +got):\n%s", diff)
			}
			if len(got.UserAgent) > maxUserAgent {
				t.Errorf("len(UserAgent) = %d, want at most %d", len(got.UserAgent), maxUserAgent)
			}
		})
	}
}

func TestMiddlewareClient(t *testing.T) {
	r := apiRequest()
	r.RemoteAddr = "10.0.0.1:1234"
	r.Header.Set("X-Forwarded-For", "6.6.6.6, 198.51.100.9")
	r.Header.Set("User-Agent", "test-agent/1.0")
	var got Client
	serve(t, &Service{}, HTTPConfig{TrustedProxies: tenSlash8}, r, func(ctx context.Context) { got = ClientFrom(ctx) })
	want := Client{UserAgent: "test-agent/1.0", IP: "198.51.100.9"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ClientFrom (-want +got):\n%s", diff)
	}
}
