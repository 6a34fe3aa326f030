package auth

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzParseToken(f *testing.F) {
	good := NewToken()
	f.Add(good.String())
	f.Add("")
	f.Add(strings.Repeat("A", TokenLen))
	f.Add(good.SessionID + "." + good.Secret[:42] + "=")
	f.Fuzz(func(t *testing.T, s string) {
		id, digest, ok := parseToken(s)
		if !ok {
			if id != "" || digest != [32]byte{} {
				t.Fatalf("refused token %q returned %q, %x", s, id, digest)
			}
			return
		}
		if len(s) != TokenLen || !validID(id) || !strings.HasPrefix(s, id+".") {
			t.Fatalf("accepted %q as id %q digest %x", s, id, digest)
		}
		if tok := (Token{SessionID: id, Secret: s[idLen+1:]}); tok.String() != s || !digestsEqual(tok.Digest(), digest[:]) {
			t.Fatalf("round trip of %q differs", s)
		}
	})
}

func FuzzNormalizeUsername(f *testing.F) {
	for _, s := range []string{"alice", "  Alice ", "ＡＬＩＣＥ", "Straße", "ᎠᎡᎢxx", "a\u0000b", "\u3164\u3164\u3164", "ab\xffc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		name, key, err := NormalizeUsername(raw)
		if err != nil {
			if _, ok := err.(*InputError); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if n := utf8.RuneCountInString(name); n < minUsernameRunes || n > maxUsernameRunes {
			t.Fatalf("accepted %q: %d characters", name, n)
		}
		for _, r := range name {
			if invisible(r) {
				t.Fatalf("accepted %q with invisible %U", name, r)
			}
		}
		// The display form is a fixed point: normalising it again gives
		// the same account.
		name2, key2, err := NormalizeUsername(name)
		if err != nil || name2 != name || key2 != key {
			t.Fatalf("NormalizeUsername(%q) = %q, %q, %v; want %q, %q", name, name2, key2, err, name, key)
		}
		// A new name's rules are stricter, its key the same.
		if name3, key3, err := newUsername(raw); err == nil && (name3 != name || key3 != key) {
			t.Fatalf("newUsername(%q) = %q, %q; NormalizeUsername: %q, %q", raw, name3, key3, name, key)
		} else if _, ok := err.(*InputError); err != nil && !ok {
			t.Fatalf("newUsername error of type %T: %v", err, err)
		}
		// Look-alike keys are never empty, nor the claims marker's kind.
		for _, l := range lookalikeKeys(name, key) {
			if l == "" || strings.ContainsRune(l, '\t') {
				t.Fatalf("lookalikeKeys(%q, %q) contains %q", name, key, l)
			}
		}
	})
}
