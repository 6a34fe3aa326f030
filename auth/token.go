package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"strings"
)

// A token is "<session id>.<secret>", both base64url without padding: the
// id (128 random bits) names the session document, the secret (256 random
// bits) proves the bearer holds it. Only SHA-256 of the secret is stored, so
// a copy of the database opens no session.
const (
	idBytes     = 16
	secretBytes = 32
	idLen       = 22 // base64url of 16 bytes
	secretLen   = 43 // base64url of 32 bytes
	// TokenLen is the exact length of every token.
	TokenLen = idLen + 1 + secretLen
)

var b64 = base64.RawURLEncoding.Strict()

// Token is a freshly minted credential.
type Token struct {
	SessionID string
	Secret    string
}

// String returns the form clients send back.
func (t Token) String() string { return t.SessionID + "." + t.Secret }

// Digest returns what the database stores for the token's secret.
func (t Token) Digest() []byte {
	d := sha256.Sum256([]byte(t.Secret))
	return d[:]
}

// NewToken returns a token for a new session.
func NewToken() Token {
	return Token{SessionID: randomString(idBytes), Secret: randomString(secretBytes)}
}

// newSecret returns a token for an existing session with a fresh secret.
func newSecret(sessionID string) Token {
	return Token{SessionID: sessionID, Secret: randomString(secretBytes)}
}

// NewID returns a random public identifier (128 bits, base64url).
func NewID() string { return randomString(idBytes) }

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails: crypto/rand panics rather than return weak bytes
	return b64.EncodeToString(b)
}

// parseToken splits a token into its session id and the digest of its
// secret. ok is false for anything that is not exactly a token gatehouse
// could have issued, so junk never reaches the database. It allocates
// nothing: every authenticated request runs it.
func parseToken(s string) (sessionID string, digest [sha256.Size]byte, ok bool) {
	if len(s) != TokenLen || s[idLen] != '.' {
		return "", digest, false
	}
	id, secret := s[:idLen], s[idLen+1:]
	if !validID(id) || !validB64(secret, secretBytes) {
		return "", digest, false
	}
	var b [secretLen]byte // on the stack, unlike []byte(secret)
	copy(b[:], secret)
	return id, sha256.Sum256(b[:]), true
}

// validID reports whether s has the shape of an identifier from NewID.
func validID(s string) bool { return len(s) == idLen && validB64(s, idBytes) }

// validB64 reports whether s is the strict base64url of n bytes, for
// strings no longer than a secret.
func validB64(s string, n int) bool {
	if len(s) > secretLen || strings.ContainsAny(s, "=+/") {
		return false
	}
	var src [secretLen]byte
	var dst [secretBytes]byte
	m, err := b64.Decode(dst[:], src[:copy(src[:], s)])
	return err == nil && m == n
}

// digestsEqual compares two secret digests in constant time.
func digestsEqual(a, b []byte) bool {
	return len(a) == sha256.Size && subtle.ConstantTimeCompare(a, b) == 1
}
