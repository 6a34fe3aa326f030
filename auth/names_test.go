package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"gatehouse/internal/dbtest"
	"gatehouse/storage"
)

func TestNewUsername(t *testing.T) {
	const (
		spaces  = "must not contain two spaces in a row"
		letters = "may contain only letters, digits, ASCII punctuation and single spaces"
		bidi    = "must not mix right-to-left and left-to-right letters in one word"
	)
	tests := []struct {
		raw, wantName, reason string // reason "" means accepted
	}{
		{"alice", "alice", ""},
		{" Alice Smith ", "Alice Smith", ""},
		{"ＡＬＩＣＥ", "ALICE", ""}, // NFKC first, as for every name
		{"bob_42.x-y", "bob_42.x-y", ""},
		{"I'm~@home!", "I'm~@home!", ""},
		{"Straße", "Straße", ""},
		{"Жанна", "Жанна", ""},
		{"ΟΔΥΣΣΕΥΣ", "ΟΔΥΣΣΕΥΣ", ""},
		{"日本語", "日本語", ""},
		{"אבג 123", "אבג 123", ""}, // one script per word
		{"ali  ce", "", spaces},
		{"ali \u3000ce", "", spaces}, // NFKC makes the ideographic space a space
		{"alice\U0001F600", "", letters},
		{"★alice", "", letters},
		{"a·b", "", letters}, // a middle dot only between Catalan l's
		{"l·l", "l·l", ""},
		{"alice\u05D0", "", bidi},
		{"1\u05D0\u05D1", "", bidi},
		// NormalizeUsername's refusals come first.
		{"ab", "", "must be at least 3 characters"},
		{"ab\u200Bc", "", "must not contain control, separator or invisible characters"},
	}
	for _, tt := range tests {
		name, key, err := newUsername(tt.raw)
		if tt.reason != "" {
			if err == nil {
				t.Errorf("newUsername(%+q) = %q, want refused: %s", tt.raw, name, tt.reason)
				continue
			}
			if diff := cmp.Diff(&InputError{Field: "username", Reason: tt.reason}, inputError(t, err)); diff != "" {
				t.Errorf("newUsername(%+q) (-want +got):\n%s", tt.raw, diff)
			}
			continue
		}
		if err != nil {
			t.Errorf("newUsername(%+q): %v", tt.raw, err)
			continue
		}
		// A new name's key is what NormalizeUsername makes of it: logins
		// use that.
		_, oldKey, _ := NormalizeUsername(tt.raw)
		if name != tt.wantName || key != oldKey {
			t.Errorf("newUsername(%+q) = %q, %q; want %q, %q", tt.raw, name, key, tt.wantName, oldKey)
		}
	}
}

// lookalikes of "alice": each must share a look-alike key with it.
var lookalikes = []string{
	"\u0430lice",           // Cyrillic а
	"\u0251lice",           // Latin alpha ɑ
	"al\u0131ce",           // dotless ı
	"aIice",                // capital I, displayed like l
	"AIice",                // the same, capitalised
	"al\u0456ce",           // Cyrillic і
	"\u0430l\u0456c\u0435", // Cyrillic а, і, е
	"a\u217Cice",           // small roman numeral fifty ⅼ
}

func TestLookalikeKeysMeet(t *testing.T) {
	shares := func(a, b string) bool {
		an, ak, err := NormalizeUsername(a)
		if err != nil {
			t.Fatalf("%+q: %v", a, err)
		}
		bn, bk, err := NormalizeUsername(b)
		if err != nil {
			t.Fatalf("%+q: %v", b, err)
		}
		for _, x := range lookalikeKeys(an, ak) {
			for _, y := range lookalikeKeys(bn, bk) {
				if x == y {
					return true
				}
			}
		}
		return false
	}
	for _, base := range []string{"alice", "Alice", "ALICE"} {
		for _, l := range lookalikes {
			if !shares(base, l) {
				t.Errorf("%+q and %+q share no look-alike key", base, l)
			}
		}
	}
	for _, pair := range [][2]string{
		{"ali ce", "ali  ce"},          // runs of spaces count as one
		{"rn.smith", "m.smith"},        // rn looks like m
		{"b0b", "bob"},                 // 0 and o meet through O
		{"l33t", "I33T"},               // I looks like l
		{"paypal", "р\u0430yp\u0430l"}, // Cyrillic р and а
	} {
		if !shares(pair[0], pair[1]) {
			t.Errorf("%+q and %+q share no look-alike key", pair[0], pair[1])
		}
	}
	for _, pair := range [][2]string{
		{"alice", "aiice"}, {"alice", "alice2"}, {"alice", "ali ce"}, {"bob", "rob"}, {"alice", "álice"},
	} {
		if shares(pair[0], pair[1]) {
			t.Errorf("%+q and %+q share a look-alike key; they look different", pair[0], pair[1])
		}
	}
}

func TestRegisterRefusesLookalikes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestService(t, 4)
	if _, _, err := s.Register(ctx, "alice", "correct horse", "", client(100)); err != nil {
		t.Fatal(err)
	}
	for i, name := range append(lookalikes, "ALICE", " alice ") {
		_, _, err := s.Register(ctx, name, "correct horse", "", client(i))
		if err == nil {
			t.Errorf("Register(%+q) succeeded beside alice", name)
			continue
		}
		if diff := cmp.Diff(&InputError{Field: "username", Reason: "taken"}, inputError(t, err)); diff != "" {
			t.Errorf("Register(%+q) (-want +got):\n%s", name, diff)
		}
	}
	if n, err := s.store.CountUsers(ctx); err != nil || n != 1 {
		t.Errorf("users: %d, %v; want 1", n, err)
	}
	// Look-alikes of a name that is not alice's register as before.
	if _, _, err := s.Register(ctx, "aiice", "correct horse", "", client(101)); err != nil {
		t.Errorf("Register(aiice): %v", err)
	}
}

// Of 50 concurrent registrations of look-alikes of one name, on the real
// engine, exactly one succeeds: the claim is an insert with a unique _id.
func TestConcurrentLookalikeRegistrationsOneWins(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// On a busy machine 50 hashes may queue for long.
	s, err := NewService(dbtest.Open(t), Config{TTL: time.Hour, MaxAge: time.Hour, BcryptCost: 4, AllowSignup: true, BcryptWait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	names := append([]string{"alice", "Alice", "ALICE"}, lookalikes...)
	const n = 50
	var wg sync.WaitGroup
	var mu sync.Mutex
	var won []string
	taken := 0
	for i := range n {
		name := names[i%len(names)]
		wg.Go(func() {
			_, _, err := s.Register(ctx, name, "correct horse", "", client(i))
			mu.Lock()
			defer mu.Unlock()
			var ie *InputError
			switch {
			case err == nil:
				won = append(won, name)
			case errors.As(err, &ie) && *ie == InputError{Field: "username", Reason: "taken"}:
				taken++
			default:
				t.Errorf("Register(%+q): %v", name, err)
			}
		})
	}
	wg.Wait()
	if len(won) != 1 || taken != n-1 {
		t.Errorf("%d registrations won (%+q), %d were taken; want 1 and %d", len(won), won, taken, n-1)
	}
	if c, err := s.store.CountUsers(ctx); err != nil || c != 1 {
		t.Errorf("users: %d, %v; want 1", c, err)
	}
}

// Users created before look-alikes were refused get their claims at start:
// look-alikes of them are refused from then on, existing look-alike pairs
// are logged and keep signing in, and a second start reads one document.
func TestClaimExistingNames(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := dbtest.Open(t)
	var logs bytes.Buffer
	s, err := NewService(st, Config{TTL: time.Hour, MaxAge: time.Hour, BcryptCost: 4, AllowSignup: true,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	hash, err := HashPassword("correct horse", 4)
	if err != nil {
		t.Fatal(err)
	}
	// As the previous version created them: no claims, any name
	// NormalizeUsername accepts.
	for i, raw := range []string{"alice", "\u0430lice", "bob", "ali  ce", "emoji\U0001F600"} {
		name, key, err := NormalizeUsername(raw)
		if err != nil {
			t.Fatal(err)
		}
		u := &storage.User{Key: key, ID: fmt.Sprint("uid-", i), Name: name, PasswordHash: hash, CreatedAt: time.Now()}
		if err := st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.Register(ctx, "b\u043Eb", "correct horse", "", client(0)); err != nil {
		t.Fatalf("before the claims, a look-alike of bob registers (the hole closed here): %v", err)
	}
	if err := s.ClaimExistingNames(ctx); err != nil {
		t.Fatal(err)
	}
	// alice and аlice collide (whichever the engine lists first claims);
	// bob and bоb collide, bоb having claimed first.
	if got := strings.Count(logs.String(), "existing usernames look alike"); got != 2 {
		t.Errorf("%d collisions logged, want 2:\n%s", got, &logs)
	}
	for i, name := range []string{"\u0251lice", "ali ce", "B0B"} {
		_, _, err := s.Register(ctx, name, "correct horse", "", client(i))
		if err == nil {
			t.Errorf("Register(%+q) succeeded after the claims", name)
		} else if ie := inputError(t, err); ie.Reason != "taken" {
			t.Errorf("Register(%+q): %v, want taken", name, err)
		}
	}
	for _, name := range []string{"alice", "\u0430lice", "ali  ce", "emoji\U0001F600"} {
		if _, _, err := s.Login(ctx, name, "correct horse", "", client(0)); err != nil {
			t.Errorf("Login(%+q) after the claims: %v", name, err)
		}
	}
	logs.Reset()
	if err := s.ClaimExistingNames(ctx); err != nil {
		t.Fatal(err)
	}
	if logs.Len() != 0 {
		t.Errorf("second start logged:\n%s", &logs)
	}
}

// client is the i-th of distinct clients, so that no per-client budget
// counts one test's registrations together.
func client(i int) Client { return Client{IP: fmt.Sprintf("192.0.2.%d", i%250+1)} }
