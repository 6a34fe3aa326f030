package auth

import "testing"

// Every authenticated request parses its token and compares the digest of
// its secret with the stored one before anything else; junk is refused
// here, before the database.

func BenchmarkParseToken(b *testing.B) {
	tok := NewToken().String()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := parseToken(tok); !ok {
			b.Fatal("parseToken refused a fresh token")
		}
	}
}

// BenchmarkCheckToken is the whole CPU side of a token check: parse, hash
// the secret, compare in constant time with the stored digest.
func BenchmarkCheckToken(b *testing.B) {
	t := NewToken()
	tok, stored := t.String(), t.Digest()
	b.ReportAllocs()
	for b.Loop() {
		_, digest, ok := parseToken(tok)
		if !ok || !digestsEqual(stored, digest[:]) {
			b.Fatal("token refused")
		}
	}
}

func BenchmarkParseTokenMalformed(b *testing.B) {
	junk := NewToken().String()[:TokenLen-1] + "!"
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := parseToken(junk); ok {
			b.Fatal("parseToken accepted junk")
		}
	}
}
