package auth

import (
	"crypto/sha256"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// b64url matches unpadded base64url text and nothing else.
var b64url = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Hand-made, well-formed parts, so that the rejection cases below are
// deterministic. 22 'A's decode to 16 zero bytes; 43 'A's to 32 zero bytes.
const (
	goodID     = "AAAAAAAAAAAAAAAAAAAAAA"
	goodSecret = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	goodToken  = goodID + "." + goodSecret
)

func TestTokenLen(t *testing.T) {
	if got, want := TokenLen, 66; got != want {
		t.Errorf("TokenLen = %d, want %d", got, want)
	}
	if got, want := len(goodToken), TokenLen; got != want {
		t.Fatalf("len(goodToken) = %d, want %d (fixture is wrong)", got, want)
	}
}

func checkTokenShape(t *testing.T, tok Token) {
	t.Helper()
	if got, want := len(tok.SessionID), 22; got != want {
		t.Errorf("len(SessionID %q) = %d, want %d", tok.SessionID, got, want)
	}
	if got, want := len(tok.Secret), 43; got != want {
		t.Errorf("len(Secret %q) = %d, want %d", tok.Secret, got, want)
	}
	for _, part := range []string{tok.SessionID, tok.Secret} {
		if !b64url.MatchString(part) {
			t.Errorf("%q is not unpadded base64url", part)
		}
	}
	s := tok.String()
	if got, want := len(s), TokenLen; got != want {
		t.Errorf("len(String() %q) = %d, want %d", s, got, want)
	}
	if got, want := s, tok.SessionID+"."+tok.Secret; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, want := strings.Count(s, "."), 1; got != want {
		t.Errorf("String() %q has %d dots, want %d", s, got, want)
	}
}

func TestNewTokenShape(t *testing.T) {
	for range 50 {
		checkTokenShape(t, NewToken())
	}
}

func TestNewTokenDistinct(t *testing.T) {
	const n = 1000
	ids := make(map[string]bool, n)
	secrets := make(map[string]bool, n)
	for range n {
		tok := NewToken()
		if ids[tok.SessionID] {
			t.Fatalf("NewToken repeated session id %q", tok.SessionID)
		}
		if secrets[tok.Secret] {
			t.Fatalf("NewToken repeated secret %q", tok.Secret)
		}
		ids[tok.SessionID], secrets[tok.Secret] = true, true
	}
}

func TestNewSecret(t *testing.T) {
	old := NewToken()
	tok := newSecret(old.SessionID)
	checkTokenShape(t, tok)
	if got, want := tok.SessionID, old.SessionID; got != want {
		t.Errorf("newSecret SessionID = %q, want %q", got, want)
	}
	if tok.Secret == old.Secret {
		t.Errorf("newSecret kept the old secret %q", tok.Secret)
	}
	if cmp.Equal(tok.Digest(), old.Digest()) {
		t.Errorf("newSecret digest equals the old token's digest")
	}
}

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id := NewID()
		if got, want := len(id), 22; got != want {
			t.Errorf("len(NewID() %q) = %d, want %d", id, got, want)
		}
		if !validID(id) {
			t.Errorf("validID(NewID() %q) = false, want true", id)
		}
		if seen[id] {
			t.Fatalf("NewID repeated %q", id)
		}
		seen[id] = true
	}
}

func TestTokenDigest(t *testing.T) {
	tok := NewToken()
	want := sha256.Sum256([]byte(tok.Secret))
	if diff := cmp.Diff(want[:], tok.Digest()); diff != "" {
		t.Errorf("Digest() (-want +got):\n%s", diff)
	}
	// The digest covers the secret only, not the public id.
	other := Token{SessionID: NewID(), Secret: tok.Secret}
	if diff := cmp.Diff(tok.Digest(), other.Digest()); diff != "" {
		t.Errorf("Digest depends on SessionID (-first +second):\n%s", diff)
	}
}

func TestParseTokenRoundTrip(t *testing.T) {
	for range 50 {
		tok := NewToken()
		id, digest, ok := parseToken(tok.String())
		if !ok {
			t.Fatalf("parseToken(%q) ok = false, want true", tok.String())
		}
		if got, want := id, tok.SessionID; got != want {
			t.Errorf("parseToken(%q) id = %q, want %q", tok.String(), got, want)
		}
		if diff := cmp.Diff(tok.Digest(), digest[:]); diff != "" {
			t.Errorf("parseToken(%q) digest (-want +got):\n%s", tok.String(), diff)
		}
	}
}

// TestParseTokenAcceptsEdges pins down that the strict trailing-bits rule
// still accepts the encodings whose unused bits are zero, so the rejection
// cases below fail for the reason they name.
func TestParseTokenAcceptsEdges(t *testing.T) {
	tests := []struct {
		name, id, secret string
	}{
		{"all zero", goodID, goodSecret},
		// 'Q' is 0b010000: the 4 unused bits of the id's last char are zero.
		{"id last char Q", goodID[:21] + "Q", goodSecret},
		// 'E' is 0b000100: the 2 unused bits of the secret's last char are zero.
		{"secret last char E", goodID, goodSecret[:42] + "E"},
		{"url alphabet", "-_-_-_-_-_-_-_-_-_-_-w", goodSecret[:41] + "_8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.id + "." + tt.secret
			id, digest, ok := parseToken(s)
			if !ok {
				t.Fatalf("parseToken(%q) ok = false, want true", s)
			}
			if got, want := id, tt.id; got != want {
				t.Errorf("id = %q, want %q", got, want)
			}
			want := sha256.Sum256([]byte(tt.secret))
			if diff := cmp.Diff(want, digest); diff != "" {
				t.Errorf("digest (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseTokenRejects(t *testing.T) {
	tests := []struct {
		name, s string
	}{
		{"empty", ""},
		{"one short", goodToken[:TokenLen-1]},
		{"one long", goodToken + "A"},
		{"id only", goodID},
		{"token twice", goodToken + goodToken},
	}
	// Each of these is exactly TokenLen bytes long, so it is the check its
	// name gives that must reject it, not the length check.
	shaped := []struct {
		name, s string
	}{
		{"no dot", goodID + "A" + goodSecret},
		{"dot one left", goodID[:21] + ".A" + goodSecret},
		{"dot one right", goodID + "A." + goodSecret[1:]},
		{"dot at end", goodID + "A" + goodSecret[1:] + "."},
		{"second dot in secret", goodID + "." + goodSecret[:20] + "." + goodSecret[21:]},
		{"padding in id", goodID[:20] + "==" + "." + goodSecret},
		{"padding in secret", goodID + "." + goodSecret[:42] + "="},
		{"plus in id", goodID[:10] + "+" + goodID[11:] + "." + goodSecret},
		{"slash in id", goodID[:10] + "/" + goodID[11:] + "." + goodSecret},
		{"plus in secret", goodID + "." + goodSecret[:10] + "+" + goodSecret[11:]},
		{"slash in secret", goodID + "." + goodSecret[:10] + "/" + goodSecret[11:]},
		{"non-ASCII in id", goodID[:20] + "é" + "." + goodSecret},
		{"non-ASCII in secret", goodID + "." + goodSecret[:41] + "é"},
		{"non-ASCII dot", goodID[:21] + "．" + goodSecret[1:]}, // fullwidth full stop, 3 bytes
		// 'B' is 0b000001: its unused trailing bits are not zero.
		{"id trailing bits", goodID[:21] + "B" + "." + goodSecret},
		{"secret trailing bits", goodID + "." + goodSecret[:42] + "B"},
		{"NUL in id", goodID[:5] + "\x00" + goodID[6:] + "." + goodSecret},
		{"NUL in secret", goodID + "." + goodSecret[:5] + "\x00" + goodSecret[6:]},
		{"NUL for dot", goodID + "\x00" + goodSecret},
		// The base64 decoder skips CR and LF; the length rules must still hold.
		{"LF in secret", goodID + "." + goodSecret[:20] + "\n" + goodSecret[21:]},
		{"CRLF in secret", goodID + "." + goodSecret[:20] + "\r\n" + goodSecret[22:]},
		{"LF in id", goodID[:10] + "\n" + goodID[11:] + "." + goodSecret},
		{"leading space", " " + goodToken[1:]},
		{"trailing space", goodToken[:TokenLen-1] + " "},
	}
	for _, tt := range shaped {
		if len(tt.s) != TokenLen {
			t.Fatalf("fixture %q is %d bytes, want %d", tt.name, len(tt.s), TokenLen)
		}
	}
	for _, tt := range append(tests, shaped...) {
		t.Run(tt.name, func(t *testing.T) {
			id, digest, ok := parseToken(tt.s)
			if ok || id != "" || digest != [32]byte{} {
				t.Errorf("parseToken(%q) = %q, %x, %v; want \"\", zero digest, false", tt.s, id, digest, ok)
			}
		})
	}
}

func TestValidID(t *testing.T) {
	tests := []struct {
		name string
		s    string
		want bool
	}{
		{"new id", NewID(), true},
		{"all zero", goodID, true},
		{"unused bits zero", goodID[:21] + "Q", true},
		{"url alphabet", "-_-_-_-_-_-_-_-_-_-_-w", true},
		{"empty", "", false},
		{"21 chars", goodID[:21], false},
		{"23 chars", goodID + "A", false},
		{"unused bits set", goodID[:21] + "B", false},
		{"padding", goodID[:20] + "==", false},
		{"24 chars padded", goodID + "==", false},
		{"plus", "+" + goodID[1:], false},
		{"slash", "/" + goodID[1:], false},
		{"NUL", goodID[:21] + "\x00", false},
		{"LF", goodID[:21] + "\n", false},
		// The base64 decoder skips CR and LF, so these decode to 16 bytes.
		{"22 chars and LF", goodID + "\n", false},
		{"22 chars and CRLF", goodID[:11] + "\r\n" + goodID[11:], false},
		{"non-ASCII", goodID[:20] + "é", false},
		{"token", goodToken, false},
		{"secret", goodSecret, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := validID(tt.s); got != tt.want {
				t.Errorf("validID(%q) = %v, want %v", tt.s, got, tt.want)
			}
		})
	}
}

func TestDigestsEqual(t *testing.T) {
	a := sha256.Sum256([]byte("one"))
	b := sha256.Sum256([]byte("two"))
	aCopy := a // a distinct array with the same bytes
	flipped := a
	flipped[31] ^= 1
	long := append(a[:], 0)
	tests := []struct {
		name string
		x, y []byte
		want bool
	}{
		{"equal", a[:], aCopy[:], true},
		{"different", a[:], b[:], false},
		{"last bit differs", a[:], flipped[:], false},
		{"second shorter", a[:], a[:31], false},
		{"second longer", a[:], long, false},
		{"both short and equal", a[:31], aCopy[:31], false},
		{"both long and equal", long, append(aCopy[:], 0), false},
		{"second nil", a[:], nil, false},
		{"first nil", nil, a[:], false},
		{"both nil", nil, nil, false},
		{"both empty", []byte{}, []byte{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := digestsEqual(tt.x, tt.y); got != tt.want {
				t.Errorf("digestsEqual(%x, %x) = %v, want %v", tt.x, tt.y, got, tt.want)
			}
		})
	}
}
