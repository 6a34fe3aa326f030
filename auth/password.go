package auth

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/text/cases"
	"golang.org/x/text/secure/precis"
	"golang.org/x/text/unicode/norm"
)

// Limits on credentials.
const (
	minPasswordBytes = 8
	maxPasswordBytes = 72 // bcrypt ignores everything after byte 72
	minUsernameRunes = 3
	maxUsernameRunes = 64
)

// HashPassword returns the bcrypt hash of password at cost.
func HashPassword(password string, cost int) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return "", fmt.Errorf("auth: hash password: %w", err)
	}
	return string(h), nil
}

// validatePassword returns an *InputError unless password is 8 to 72 bytes
// of valid UTF-8. Longer passwords are refused, never silently truncated.
func validatePassword(field, password string) error {
	switch {
	case len(password) < minPasswordBytes:
		return &InputError{Field: field, Reason: fmt.Sprintf("must be at least %d bytes", minPasswordBytes)}
	case len(password) > maxPasswordBytes:
		return &InputError{Field: field, Reason: fmt.Sprintf("must be at most %d bytes", maxPasswordBytes)}
	case !utf8.ValidString(password) || strings.ContainsRune(password, 0):
		return &InputError{Field: field, Reason: "must be valid UTF-8 without NUL"}
	}
	return nil
}

var fold = cases.Fold()

// maxUsernameBytes bounds the raw input before any normalisation work; it
// leaves room for 64 characters typed in decomposed form.
const maxUsernameBytes = 1024

// NormalizeUsername returns the display form of a username (trimmed, NFKC)
// and its key (the display form case-folded), which is what uniqueness and
// look-ups use. It returns an *InputError for names that are too short, too
// long, or contain control, separator or invisible characters.
func NormalizeUsername(raw string) (name, key string, err error) {
	if len(raw) > maxUsernameBytes { // before any work on hostile input
		return "", "", usernameErr("must be at most %d characters", maxUsernameRunes)
	}
	// U+FFFD is what a JSON decoder makes of invalid UTF-8.
	if !utf8.ValidString(raw) || strings.ContainsRune(raw, utf8.RuneError) {
		return "", "", usernameErr("must be valid UTF-8")
	}
	name = strings.TrimSpace(norm.NFKC.String(raw))
	if n := utf8.RuneCountInString(name); n < minUsernameRunes {
		return "", "", usernameErr("must be at least %d characters", minUsernameRunes)
	} else if n > maxUsernameRunes {
		return "", "", usernameErr("must be at most %d characters", maxUsernameRunes)
	}
	for _, r := range name {
		if invisible(r) {
			return "", "", usernameErr("must not contain control, separator or invisible characters")
		}
	}
	return name, foldKey(name), nil
}

// invisible reports characters that cannot be told apart on screen:
// controls, format characters, separators other than the plain space,
// and Unicode's default-ignorable and blank code points.
func invisible(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) ||
		(unicode.IsSpace(r) && r != ' ') || unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r) ||
		unicode.Is(unicode.Variation_Selector, r) || r == '\u2800' /* blank braille */ ||
		r == '\u3164' || r == '\uFFA0' || r == '\u115F' || r == '\u1160' /* Hangul fillers */
}

// foldKey case-folds name. x/text's Fold swaps Cherokee upper and lower case
// instead of folding both to upper case as Unicode specifies
// (golang/go#46101), so Cherokee lowercase is mapped to uppercase after it.
func foldKey(name string) string {
	folded := fold.String(name)
	folded = strings.Map(func(r rune) rune {
		switch {
		case r >= 0xAB70 && r <= 0xABBF:
			return r - 0xAB70 + 0x13A0
		case r >= 0x13F8 && r <= 0x13FD:
			return r - 8
		}
		return r
	}, folded)
	return norm.NFKC.String(folded)
}

// identifier is RFC 8264's IdentifierClass alone: letters, digits and
// ASCII printable characters, without the profile's mappings or Bidi Rule.
var identifier = precis.NewIdentifier()

// newUsername is NormalizeUsername with the stricter rules of names chosen
// from now on (names that exist already keep signing in as they are, and
// their keys never change): RFC 8265's usernames, which are words of
// letters, digits and ASCII punctuation (its UsernameCasePreserved profile)
// separated by single spaces.
func newUsername(raw string) (name, key string, err error) {
	name, key, err = NormalizeUsername(raw)
	if err != nil {
		return "", "", err
	}
	for word := range strings.SplitSeq(name, " ") {
		switch {
		case word == "":
			return "", "", usernameErr("must not contain two spaces in a row")
		case !enforced(identifier, word):
			return "", "", usernameErr("may contain only letters, digits, ASCII punctuation and single spaces")
		case !enforced(precis.UsernameCasePreserved, word):
			return "", "", usernameErr("must not mix right-to-left and left-to-right letters in one word")
		}
	}
	return name, key, nil
}

// enforced reports whether s is valid in profile p and left as it is.
func enforced(p *precis.Profile, s string) bool {
	out, err := p.String(s)
	return err == nil && out == s
}

func usernameErr(format string, args ...any) error {
	return &InputError{Field: "username", Reason: fmt.Sprintf(format, args...)}
}

// ValidateCost checks a bcrypt cost from configuration.
func ValidateCost(cost int) error {
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return fmt.Errorf("bcrypt cost must be %d to %d", bcrypt.MinCost, bcrypt.MaxCost)
	}
	return nil
}

func hashCost(hash string) int {
	c, err := bcrypt.Cost([]byte(hash))
	if err != nil {
		return -1
	}
	return c
}
