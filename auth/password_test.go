package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/text/unicode/norm"
)

func TestInputErrorError(t *testing.T) {
	tests := []struct {
		err  *InputError
		want string
	}{
		{&InputError{Field: "username", Reason: "taken"}, "username taken"},
		{&InputError{Reason: "bad input"}, "bad input"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("%#v.Error() = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// inputError returns err as an *InputError, failing the test if it is not.
func inputError(t *testing.T, err error) *InputError {
	t.Helper()
	var ie *InputError
	if !errors.As(err, &ie) {
		t.Fatalf("error %v (%T) is not an *InputError", err, err)
	}
	return ie
}

func TestValidatePassword(t *testing.T) {
	const (
		tooShort = "must be at least 8 bytes"
		tooLong  = "must be at most 72 bytes"
		badText  = "must be valid UTF-8 without NUL"
	)
	tests := []struct {
		name     string
		password string
		reason   string // "" means valid
	}{
		{"empty", "", tooShort},
		{"7 bytes", "1234567", tooShort},
		{"8 bytes", "12345678", ""},
		{"72 bytes", strings.Repeat("x", 72), ""},
		{"73 bytes", strings.Repeat("x", 73), tooLong},
		{"1000 bytes", strings.Repeat("x", 1000), tooLong},
		// Lengths are bytes, not characters.
		{"4 two-byte runes (8 bytes)", "éééé", ""},
		{"3 three-byte runes (9 bytes)", "€€€", ""},
		{"3 two-byte runes (6 bytes)", "ééé", tooShort},
		{"24 three-byte runes (72 bytes)", strings.Repeat("€", 24), ""},
		{"25 three-byte runes (75 bytes)", strings.Repeat("€", 25), tooLong},
		{"18 four-byte runes (72 bytes)", strings.Repeat("🔑", 18), ""},
		{"spaces only", "        ", ""},
		{"invalid UTF-8", "password\xff", badText},
		{"truncated rune", "password\xe2\x82", badText},
		{"NUL", "pass\x00word", badText},
		{"trailing NUL", "password\x00", badText},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, field := range []string{"password", "newPassword"} {
				err := validatePassword(field, tt.password)
				if tt.reason == "" {
					if err != nil {
						t.Errorf("validatePassword(%q, %q) = %v, want nil", field, tt.password, err)
					}
					continue
				}
				if err == nil {
					t.Fatalf("validatePassword(%q, %q) = nil, want error %q", field, tt.password, tt.reason)
				}
				got := inputError(t, err)
				want := &InputError{Field: field, Reason: tt.reason}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("validatePassword(%q, %q) error (-want +got):\n%s", field, tt.password, diff)
				}
			}
		})
	}
}

func TestNormalizeUsername(t *testing.T) {
	tests := []struct {
		name, raw, wantName, wantKey string
	}{
		{"plain", "alice", "alice", "alice"},
		{"case kept in name, folded in key", "Alice", "Alice", "alice"},
		{"upper", "ALICE", "ALICE", "alice"},
		{"trimmed", " \t alice \n", "alice", "alice"},
		{"trimmed NBSP", "\u00a0alice\u00a0", "alice", "alice"},
		{"trimmed ideographic space", "\u3000alice\u3000", "alice", "alice"},
		{"inner space kept", "alice smith", "alice smith", "alice smith"},
		{"fullwidth", "ＡＬＩＣＥ", "ALICE", "alice"},
		{"ligature", "ﬁona", "fiona", "fiona"},
		{"NFKC composes", "e\u0301mile", "\u00e9mile", "\u00e9mile"},
		{"sharp s", "Straße", "Straße", "strasse"},
		{"sharp s upper", "STRASSE", "STRASSE", "strasse"},
		{"capital sharp s", "STRAẞE", "STRAẞE", "strasse"},
		{"greek final sigma", "ΟΔΥΣΣΕΥΣ", "ΟΔΥΣΣΕΥΣ", "οδυσσευσ"},
		{"digits and punctuation", "bob_42.x-y", "bob_42.x-y", "bob_42.x-y"},
		{"3 chars", "abc", "abc", "abc"},
		{"3 chars after trim", "  abc  ", "abc", "abc"},
		{"64 chars", strings.Repeat("A", 64), strings.Repeat("A", 64), strings.Repeat("a", 64)},
		{"64 multibyte chars", strings.Repeat("Ж", 64), strings.Repeat("Ж", 64), strings.Repeat("ж", 64)},
		{"64 four-byte chars", strings.Repeat("𝔸", 64), strings.Repeat("A", 64), strings.Repeat("a", 64)},
		// The raw limit (4*64+64 = 320 bytes) leaves room for padding.
		{"320 bytes with padding", strings.Repeat("a", 64) + strings.Repeat(" ", 256), strings.Repeat("a", 64), strings.Repeat("a", 64)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name, key, err := NormalizeUsername(tt.raw)
			if err != nil {
				t.Fatalf("NormalizeUsername(%q) error: %v", tt.raw, err)
			}
			if name != tt.wantName || key != tt.wantKey {
				t.Errorf("NormalizeUsername(%q) = %q, %q; want %q, %q", tt.raw, name, key, tt.wantName, tt.wantKey)
			}
		})
	}
}

func TestNormalizeUsernameSharedKeys(t *testing.T) {
	groups := [][]string{
		{"alice", "Alice", "ALICE", "aLiCe", "  alice  ", "ＡＬＩＣＥ", "ａｌｉｃｅ"},
		{"Straße", "STRASSE", "strasse", "STRAẞE", "straße"},
		{"émile", "Émile", "e\u0301mile", "E\u0301MILE"},
		{"fiona", "ﬁona", "FIONA"},
	}
	keyOf := map[string]string{} // key → first raw name that had it
	for _, group := range groups {
		_, want, err := NormalizeUsername(group[0])
		if err != nil {
			t.Fatalf("NormalizeUsername(%q) error: %v", group[0], err)
		}
		for _, raw := range group[1:] {
			_, got, err := NormalizeUsername(raw)
			if err != nil {
				t.Errorf("NormalizeUsername(%q) error: %v", raw, err)
				continue
			}
			if got != want {
				t.Errorf("key of %q = %q, want %q (the key of %q)", raw, got, want, group[0])
			}
		}
		// Different names must not collide.
		if other, ok := keyOf[want]; ok {
			t.Errorf("%q and %q share key %q", group[0], other, want)
		}
		keyOf[want] = group[0]
	}
}

func TestNormalizeUsernameRejects(t *testing.T) {
	const (
		tooShort  = "must be at least 3 characters"
		tooLong   = "must be at most 64 characters"
		invisible = "must not contain control, separator or invisible characters"
		badUTF8   = "must be valid UTF-8"
	)
	tests := []struct {
		name, raw, reason string
	}{
		{"empty", "", tooShort},
		{"blank", "    ", tooShort},
		{"2 chars", "ab", tooShort},
		{"2 chars after trim", "  ab  ", tooShort},
		{"2 chars after NFKC", "e\u0301a", tooShort},
		{"65 chars", strings.Repeat("a", 65), tooLong},
		{"65 multibyte chars", strings.Repeat("Ж", 65), tooLong},
		{"ligatures expand past 64", strings.Repeat("ﬃ", 22), tooLong}, // 22 runes, 66 after NFKC
		{"1025 bytes with padding", strings.Repeat("a", 64) + strings.Repeat(" ", 961), tooLong},
		{"NUL", "ali\x00ce", invisible},
		{"tab inside", "ali\tce", invisible},
		{"newline inside", "ali\nce", invisible},
		{"DEL", "ali\x7fce", invisible},
		{"C1 control", "ali\u0085ce", invisible},
		{"zero-width joiner", "ali\u200dce", invisible},
		{"zero-width space", "ali\u200bce", invisible},
		{"right-to-left override", "ali\u202ece", invisible},
		{"left-to-right mark", "\u200ealice", invisible},
		{"soft hyphen", "ali\u00adce", invisible},
		{"byte order mark", "\ufeffalice", invisible},
		{"invalid UTF-8", "ali\xffce", badUTF8},
		{"truncated rune", "alice\xe2\x82", badUTF8},
		{"surrogate half", "ali\xed\xa0\x80ce", badUTF8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name, key, err := NormalizeUsername(tt.raw)
			if err == nil {
				t.Fatalf("NormalizeUsername(%q) = %q, %q, nil; want error %q", tt.raw, name, key, tt.reason)
			}
			if name != "" || key != "" {
				t.Errorf("NormalizeUsername(%q) returned %q, %q with its error; want empty strings", tt.raw, name, key)
			}
			got := inputError(t, err)
			want := &InputError{Field: "username", Reason: tt.reason}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("NormalizeUsername(%q) error (-want +got):\n%s", tt.raw, diff)
			}
		})
	}
}

func TestNormalizeUsernameHugeInput(t *testing.T) {
	for _, raw := range []string{
		strings.Repeat("a", 100<<10),
		strings.Repeat("\u0301", 50<<10), // combining marks: costly to normalise
		strings.Repeat("\xff", 100<<10),  // invalid, but too long first
	} {
		name, key, err := NormalizeUsername(raw)
		if err == nil {
			t.Errorf("NormalizeUsername(%d bytes) = %q, %q, nil; want error", len(raw), name, key)
			continue
		}
		if got := inputError(t, err); got.Field != "username" {
			t.Errorf("NormalizeUsername(%d bytes) error field = %q, want %q", len(raw), got.Field, "username")
		}
	}
}

func TestHashPassword(t *testing.T) {
	const password = "correct horse"
	hash, err := HashPassword(password, bcrypt.MinCost)
	if err != nil {
		t.Fatalf("HashPassword: %v", err)
	}
	if !strings.HasPrefix(hash, "$2a$04$") {
		t.Errorf("HashPassword = %q, want a $2a$04$ bcrypt hash", hash)
	}
	if got, want := hashCost(hash), bcrypt.MinCost; got != want {
		t.Errorf("hashCost = %d, want %d", got, want)
	}
	if !passwordMatches(hash, password) {
		t.Errorf("passwordMatches(hash, %q) = false, want true", password)
	}
	for _, wrong := range []string{"", "correct hors", "correct horse ", "Correct horse"} {
		if passwordMatches(hash, wrong) {
			t.Errorf("passwordMatches(hash, %q) = true, want false", wrong)
		}
	}

	again, err := HashPassword(password, bcrypt.MinCost)
	if err != nil {
		t.Fatalf("HashPassword: %v", err)
	}
	if again == hash {
		t.Errorf("two hashes of one password are equal (%q): salt missing", hash)
	}
	if !passwordMatches(again, password) {
		t.Errorf("passwordMatches(second hash, %q) = false, want true", password)
	}
}

func TestHashPasswordCost(t *testing.T) {
	for _, cost := range []int{bcrypt.MinCost, bcrypt.MinCost + 1} {
		hash, err := HashPassword("password", cost)
		if err != nil {
			t.Fatalf("HashPassword(cost %d): %v", cost, err)
		}
		if got := hashCost(hash); got != cost {
			t.Errorf("hashCost(HashPassword(cost %d)) = %d, want %d", cost, got, cost)
		}
	}
}

func TestHashPasswordTooLong(t *testing.T) {
	hash, err := HashPassword(strings.Repeat("x", 73), bcrypt.MinCost)
	if !errors.Is(err, bcrypt.ErrPasswordTooLong) {
		t.Errorf("HashPassword(73 bytes) error = %v, want %v", err, bcrypt.ErrPasswordTooLong)
	}
	if hash != "" {
		t.Errorf("HashPassword(73 bytes) hash = %q, want empty", hash)
	}
}

func TestPasswordMatchesBadHash(t *testing.T) {
	for _, hash := range []string{"", "password", "$2a$04$short", "$1$md5$crypt"} {
		if passwordMatches(hash, "password") {
			t.Errorf("passwordMatches(%q, %q) = true, want false", hash, "password")
		}
		if got := hashCost(hash); got != -1 {
			t.Errorf("hashCost(%q) = %d, want -1", hash, got)
		}
	}
}

func TestValidateCost(t *testing.T) {
	tests := []struct {
		cost int
		ok   bool
	}{
		{-1, false},
		{0, false},
		{bcrypt.MinCost - 1, false},
		{bcrypt.MinCost, true},
		{bcrypt.DefaultCost, true},
		{12, true},
		{bcrypt.MaxCost, true},
		{bcrypt.MaxCost + 1, false},
		{1000, false},
	}
	for _, tt := range tests {
		err := ValidateCost(tt.cost)
		if got := err == nil; got != tt.ok {
			t.Errorf("ValidateCost(%d) = %v, want ok %v", tt.cost, err, tt.ok)
		}
	}
}

func TestNormalizeUsernameFoldsCherokee(t *testing.T) {
	_, upper, err := NormalizeUsername("ᎠᎡᎢxx")
	if err != nil {
		t.Fatal(err)
	}
	_, lower, err := NormalizeUsername("ꭰꭱꭲxx")
	if err != nil {
		t.Fatal(err)
	}
	if upper != lower {
		t.Errorf("Cherokee names differing in case: keys %q and %q, want one key", upper, lower)
	}
	if _, again, _ := NormalizeUsername(upper); again != upper {
		t.Errorf("key of a key: got %q, want %q (stable)", again, upper)
	}
}

func TestNormalizeUsernameRefusesInvisible(t *testing.T) {
	for _, raw := range []string{
		"\u3164\u3164\u3164", "\u2800\u2800\u2800", "ab\u034Fc", "abc\uFE0F", "ab\u2028c", "ab\u00A0c\u200B",
	} {
		if _, _, err := NormalizeUsername(raw); err == nil {
			t.Errorf("NormalizeUsername(%+q): got nil error", raw)
		}
	}
}

func TestNormalizeUsernameAcceptsDecomposedKorean(t *testing.T) {
	decomposed := norm.NFD.String(strings.Repeat("한", 36))
	if len(decomposed) <= 320 {
		t.Fatalf("test input is only %d bytes", len(decomposed))
	}
	name, _, err := NormalizeUsername(decomposed)
	if err != nil {
		t.Fatal(err)
	}
	if name != strings.Repeat("한", 36) {
		t.Errorf("name: got %q", name)
	}
}

func passwordMatches(hash, password string) bool {
	ok, _, err := newHasher(1, time.Second, func(time.Duration) {}).compare(context.Background(), hash, password)
	return ok && err == nil
}

// A login's rehash (after a cost change) never undoes a password change
// that lands meanwhile, round after round.
func TestRehashNeverUndoesAPasswordChange(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t, 5)
	s.cfg.Throttle.UserLimit, s.cfg.Throttle.IPLimit = 1<<30, 1<<30
	if _, _, err := s.Register(ctx, "mover", "password 0 moves", "", Client{}); err != nil {
		t.Fatal(err)
	}
	for round := range 40 {
		old, next := fmt.Sprintf("password %d moves", round), fmt.Sprintf("password %d moves", round+1)
		low, err := HashPassword(old, 4) // a login rehashes it to cost 5
		if err != nil {
			t.Fatal(err)
		}
		if err := s.store.SetPassword(ctx, "mover", low, NewID()); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Go(func() { _, _, _ = s.Login(ctx, "mover", old, "", Client{}) })
		wg.Go(func() {
			if err := s.SetPassword(ctx, "mover", next); err != nil {
				t.Error(err)
			}
		})
		wg.Wait()
		u, err := s.store.UserByKey(ctx, "mover")
		if err != nil {
			t.Fatal(err)
		}
		if !passwordMatches(u.PasswordHash, next) {
			t.Fatalf("round %d: the stored hash is not the new password's: a racing rehash undid the change", round)
		}
	}
}

// A password change whose session ends meanwhile (a logout elsewhere)
// says the password did change, rather than "not signed in".
func TestPasswordChangeOfAnEndedSessionSaysItChanged(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t, 4)
	sess, _, err := s.Register(ctx, "leaver", "password before", "", Client{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.store.DeleteSession(ctx, sess.ID, sess.UserID); err != nil { // logged out elsewhere
		t.Fatal(err)
	}
	_, _, err = s.ChangePassword(ctx, sess, "password before", "password after")
	if ErrorCode(err) != EIncomplete || !strings.Contains(ErrorMessage(err), "password was changed") {
		t.Fatalf("ChangePassword of an ended session: %v (code %q), want the password-changed answer", err, ErrorCode(err))
	}
	if _, _, err := s.Login(ctx, "leaver", "password after", "", Client{}); err != nil {
		t.Errorf("the new password: %v", err)
	}
}
