package graph_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/auth"
	"gatehouse/graph"
	"gatehouse/graph/model"
	"gatehouse/internal/softauthn"
)

const passkeyOrigin = "http://localhost:8080"

func withPasskeys(c *auth.Config, _ *graph.Options) {
	c.Passkeys = auth.PasskeyConfig{RPID: "localhost", Origins: []string{passkeyOrigin}}
}

type challenge struct {
	ChallengeID string
	Options     json.RawMessage
}

const (
	beginRegistration  = `mutation { beginPasskeyRegistration { challengeId options } }`
	finishRegistration = `mutation($id: ID!, $c: JSONObject!, $n: String) {
		finishPasskeyRegistration(challengeId: $id, credential: $c, name: $n) { id name createdAt lastUsedAt } }`
	beginLogin  = `mutation { beginPasskeyLogin { challengeId options } }`
	finishLogin = `mutation($id: ID!, $c: JSONObject!) {
		finishPasskeyLogin(challengeId: $id, credential: $c) { token secondFactorRequired session { factors user { username } } } }`
)

type passkey struct {
	ID, Name   string
	CreatedAt  time.Time
	LastUsedAt *time.Time
}

// addPasskey registers a passkey of authenticator a for c's user.
func (c *client) addPasskey(t *testing.T, a *softauthn.Authenticator, name string) passkey {
	t.Helper()
	var b struct{ BeginPasskeyRegistration challenge }
	c.ok(t, beginRegistration, nil, &b)
	cred, err := a.Create(b.BeginPasskeyRegistration.Options)
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ FinishPasskeyRegistration passkey }
	c.ok(t, finishRegistration, map[string]any{"id": b.BeginPasskeyRegistration.ChallengeID, "c": json.RawMessage(cred), "n": name}, &f)
	return f.FinishPasskeyRegistration
}

// passkeyLogin begins a sign-in from c and answers it with a, with opts.
func (c *client) passkeyLogin(t *testing.T, a *softauthn.Authenticator, opts ...softauthn.Option) *response {
	t.Helper()
	var b struct{ BeginPasskeyLogin challenge }
	c.ok(t, beginLogin, nil, &b)
	cred, err := a.Get(b.BeginPasskeyLogin.Options, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c.do(t, finishLogin, map[string]any{"id": b.BeginPasskeyLogin.ChallengeID, "c": json.RawMessage(cred)})
}

type passkeySignIn struct {
	FinishPasskeyLogin struct {
		Token                string
		SecondFactorRequired bool
		Session              struct {
			Factors []string
			User    struct{ Username string }
		}
	}
}

func (c *client) passkeyLoginOK(t *testing.T, a *softauthn.Authenticator) passkeySignIn {
	t.Helper()
	r := c.passkeyLogin(t, a)
	if len(r.Errors) > 0 {
		t.Fatalf("passkey sign-in: %+v\nserver log:\n%s", r.Errors, c.e.logs)
	}
	var out passkeySignIn
	if err := json.Unmarshal(r.Data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPasskeyRegistrationAndSignIn(t *testing.T) {
	e := newEnv(t, withPasskeys)
	owner := e.client()
	owner.header.Set("User-Agent", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Version/17.0 Safari/605.1.15")
	owner.register(t, "Petra", "correct horse")
	phone := softauthn.New(passkeyOrigin)
	pk := owner.addPasskey(t, phone, "My phone")
	if pk.Name != "My phone" || pk.LastUsedAt != nil || pk.ID == "" {
		t.Fatalf("registered passkey: %+v", pk)
	}
	laptop := softauthn.New(passkeyOrigin)
	var b struct{ BeginPasskeyRegistration challenge }
	owner.ok(t, beginRegistration, nil, &b)
	var opts struct {
		ExcludeCredentials     []struct{ ID string }
		AuthenticatorSelection struct{ ResidentKey, UserVerification string }
		RP                     struct{ ID string }
	}
	if err := json.Unmarshal(b.BeginPasskeyRegistration.Options, &opts); err != nil {
		t.Fatal(err)
	}
	if len(opts.ExcludeCredentials) != 1 || opts.AuthenticatorSelection.ResidentKey != "required" ||
		opts.AuthenticatorSelection.UserVerification != "required" || opts.RP.ID != "localhost" {
		t.Fatalf("creation options %s: want the existing passkey excluded, a resident key and user verification required", b.BeginPasskeyRegistration.Options)
	}
	if _, err := phone.Create(b.BeginPasskeyRegistration.Options); err == nil {
		t.Fatal("the phone registered a second passkey despite excludeCredentials")
	}
	cred, err := laptop.Create(b.BeginPasskeyRegistration.Options)
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ FinishPasskeyRegistration passkey }
	owner.ok(t, finishRegistration, map[string]any{"id": b.BeginPasskeyRegistration.ChallengeID, "c": json.RawMessage(cred)}, &f)
	if f.FinishPasskeyRegistration.Name != "Safari on macOS" {
		t.Errorf("default name %q, want one from the user agent", f.FinishPasskeyRegistration.Name)
	}

	// Sign in with no username: a full session, even for a TOTP user.
	owner.enableTOTP(t, "correct horse")
	s := e.client().passkeyLoginOK(t, phone).FinishPasskeyLogin
	if s.SecondFactorRequired || !slices.Equal(s.Session.Factors, []string{"PASSKEY"}) || s.Session.User.Username != "Petra" {
		t.Fatalf("passkey sign-in: %+v", s)
	}
	var list struct{ Passkeys []passkey }
	owner.ok(t, `{ passkeys { id name createdAt lastUsedAt } }`, nil, &list)
	if len(list.Passkeys) != 2 || list.Passkeys[1].ID != pk.ID || list.Passkeys[1].LastUsedAt == nil || list.Passkeys[0].LastUsedAt != nil {
		t.Fatalf("passkeys, newest first: %+v", list.Passkeys)
	}

	// Rename and delete: the caller's own only.
	var rn struct{ RenamePasskey *passkey }
	owner.ok(t, `mutation($id: ID!) { renamePasskey(id: $id, name: " Work phone ") { id name } }`, map[string]any{"id": pk.ID}, &rn)
	if rn.RenamePasskey == nil || rn.RenamePasskey.Name != "Work phone" {
		t.Fatalf("rename: %+v", rn.RenamePasskey)
	}
	if code := owner.do(t, `mutation($id: ID!) { renamePasskey(id: $id, name: "") { id } }`, map[string]any{"id": pk.ID}).code(t); code != "BAD_USER_INPUT" {
		t.Errorf("empty name: %s", code)
	}
	mallory := e.client()
	mallory.register(t, "mallory-pk", "correct horse")
	mallory.ok(t, `mutation($id: ID!) { renamePasskey(id: $id, name: "mine") { id } }`, map[string]any{"id": pk.ID}, &rn)
	var del struct{ DeletePasskey bool }
	mallory.ok(t, `mutation($id: ID!) { deletePasskey(id: $id) }`, map[string]any{"id": pk.ID}, &del)
	if rn.RenamePasskey != nil || del.DeletePasskey {
		t.Fatal("another user renamed or deleted the passkey")
	}
	owner.ok(t, `mutation($id: ID!) { deletePasskey(id: $id) }`, map[string]any{"id": pk.ID}, &del)
	if !del.DeletePasskey {
		t.Fatal("the owner could not delete the passkey")
	}
	if code := e.client().passkeyLogin(t, phone).code(t); code != "UNAUTHENTICATED" {
		t.Fatalf("sign-in with a deleted passkey: %s", code)
	}
}

func TestPasskeyForgeriesAreRefused(t *testing.T) {
	e := newEnv(t, withPasskeys, withThrottle(1000))
	owner := e.client()
	owner.register(t, "forged", "correct horse")
	a := softauthn.New(passkeyOrigin)
	owner.addPasskey(t, a, "key")
	otherRP := sha256.Sum256([]byte("evil.example"))
	for name, opt := range map[string]softauthn.Option{
		"another origin":       softauthn.WithOrigin("http://evil.localhost:8080"),
		"another RP ID":        softauthn.WithRPIDHash(otherRP[:]),
		"no user verification": softauthn.WithoutUserVerification(),
	} {
		if code := e.client().passkeyLogin(t, a, opt).code(t); code != "UNAUTHENTICATED" {
			t.Errorf("sign-in with %s: %s, want UNAUTHENTICATED", name, code)
		}
	}
	e.client().passkeyLoginOK(t, a)

	// A replayed assertion: the same challenge twice, and an old
	// assertion against a new challenge.
	c := e.client()
	var b struct{ BeginPasskeyLogin challenge }
	c.ok(t, beginLogin, nil, &b)
	cred, _ := a.Get(b.BeginPasskeyLogin.Options)
	vars := map[string]any{"id": b.BeginPasskeyLogin.ChallengeID, "c": json.RawMessage(cred)}
	if r := c.do(t, finishLogin, vars); len(r.Errors) > 0 {
		t.Fatalf("sign-in: %+v", r.Errors)
	}
	if code := c.do(t, finishLogin, vars).code(t); code != "BAD_USER_INPUT" {
		t.Errorf("a challenge used twice: %s, want BAD_USER_INPUT", code)
	}
	c.ok(t, beginLogin, nil, &b)
	if code := c.do(t, finishLogin, map[string]any{"id": b.BeginPasskeyLogin.ChallengeID, "c": json.RawMessage(a.LastAssertion())}).code(t); code != "UNAUTHENTICATED" {
		t.Errorf("an old assertion on a new challenge: %s, want UNAUTHENTICATED", code)
	}

	// An expired challenge.
	c.ok(t, beginLogin, nil, &b)
	cred, _ = a.Get(b.BeginPasskeyLogin.Options)
	e.clock.Advance(5*time.Minute + time.Second)
	if code := c.do(t, finishLogin, map[string]any{"id": b.BeginPasskeyLogin.ChallengeID, "c": json.RawMessage(cred)}).code(t); code != "BAD_USER_INPUT" {
		t.Errorf("an expired challenge: %s, want BAD_USER_INPUT", code)
	}
	// A registration challenge does not finish a sign-in.
	var reg struct{ BeginPasskeyRegistration challenge }
	owner.ok(t, beginRegistration, nil, &reg)
	cred, _ = a.Get(json.RawMessage(`{"challenge":"AAAAAAAAAAAAAAAAAAAAAA","rpId":"localhost"}`))
	if code := c.do(t, finishLogin, map[string]any{"id": reg.BeginPasskeyRegistration.ChallengeID, "c": json.RawMessage(cred)}).code(t); code != "BAD_USER_INPUT" {
		t.Errorf("a registration challenge at sign-in: %s, want BAD_USER_INPUT", code)
	}
	if code := c.do(t, finishLogin, map[string]any{"id": "not-an-id", "c": map[string]any{"id": "x"}}).code(t); code != "BAD_USER_INPUT" {
		t.Errorf("garbage: %s", code)
	}
	if strings.Contains(e.logs.String(), "panic") {
		t.Errorf("a panic in the log:\n%s", e.logs)
	}
}

func TestClonedPasskeyIsRefused(t *testing.T) {
	e := newEnv(t, withPasskeys, withThrottle(1000))
	owner := e.client()
	owner.register(t, "cloned", "correct horse")
	a := softauthn.New(passkeyOrigin)
	owner.addPasskey(t, a, "key")
	e.client().passkeyLoginOK(t, a)
	e.client().passkeyLoginOK(t, a) // counter 2
	clone := softauthn.New(passkeyOrigin)
	clone.Import(a.Credentials()[0]) // counter 2 too: its next is 3
	e.client().passkeyLoginOK(t, a)  // 3
	if code := e.client().passkeyLogin(t, clone).code(t); code != "UNAUTHENTICATED" {
		t.Fatalf("a clone whose counter is not ahead: %s, want UNAUTHENTICATED", code)
	}
	if !strings.Contains(e.logs.String(), "possible clone") {
		t.Errorf("the clone is not logged:\n%s", e.logs)
	}
	if err := a.SetSignCount(a.Credentials()[0].ID, 1); err != nil {
		t.Fatal(err)
	}
	if code := e.client().passkeyLogin(t, a).code(t); code != "UNAUTHENTICATED" {
		t.Fatalf("a counter that went backwards: %s", code)
	}
	// The owner's log shows both: someone holds the passkey's key.
	if got := owner.eventTypes(t, 2); !slices.Equal(got, []string{"LOGIN_FAILED", "LOGIN_FAILED"}) {
		t.Errorf("the owner's newest events %v, want two LOGIN_FAILED", got)
	}
}

// Of many sign-ins presenting one counter value at once, one wins.
func TestConcurrentPasskeySignInsCountOnce(t *testing.T) {
	e := newPatientEnv(t, withPasskeys, withThrottle(1000))
	owner := e.client()
	owner.register(t, "racer", "correct horse")
	a := softauthn.New(passkeyOrigin)
	owner.addPasskey(t, a, "key")
	const n = 10
	clones := make([]*softauthn.Authenticator, n)
	for i := range clones {
		clones[i] = softauthn.New(passkeyOrigin)
		clones[i].Import(a.Credentials()[0])
	}
	won := make([]bool, n)
	var wg sync.WaitGroup
	for i, c := range clones {
		wg.Go(func() { won[i] = len(e.client().passkeyLogin(t, c).Errors) == 0 })
	}
	wg.Wait()
	if w := count(won, true); w != 1 {
		t.Fatalf("%d sign-ins with one counter value: %d accepted, want 1", n, w)
	}
}

func TestPasskeyRegistrationNeedsARecentSignIn(t *testing.T) {
	e := newEnv(t, withPasskeys)
	owner := e.client()
	owner.register(t, "stale", "correct horse")
	e.clock.Advance(11 * time.Minute)
	r := owner.do(t, beginRegistration, nil)
	if r.code(t) != "FORBIDDEN" || !strings.Contains(r.Errors[0].Message, "sign in again") {
		t.Fatalf("registration 11 minutes after sign-in: %+v", r.Errors)
	}
	owner.login(t, "stale", "correct horse")
	owner.addPasskey(t, softauthn.New(passkeyOrigin), "fresh")
	// A challenge begun by one session is not finished by another.
	other := e.client()
	other.login(t, "stale", "correct horse")
	var b struct{ BeginPasskeyRegistration challenge }
	owner.ok(t, beginRegistration, nil, &b)
	cred, _ := softauthn.New(passkeyOrigin).Create(b.BeginPasskeyRegistration.Options)
	if code := other.do(t, finishRegistration, map[string]any{"id": b.BeginPasskeyRegistration.ChallengeID, "c": json.RawMessage(cred)}).code(t); code != "BAD_USER_INPUT" {
		t.Fatalf("another session finished the registration: %s", code)
	}
}

func TestAtMost20Passkeys(t *testing.T) {
	e := newEnv(t, withPasskeys)
	owner := e.client()
	owner.register(t, "collector", "correct horse")
	for range 20 {
		owner.addPasskey(t, softauthn.New(passkeyOrigin), "one more")
	}
	if code := owner.do(t, beginRegistration, nil).code(t); code != "BAD_USER_INPUT" {
		t.Fatalf("a 21st passkey: %s, want BAD_USER_INPUT", code)
	}
	ids, err := e.store.PasskeysOfUser(context.Background(), idOf(t, owner))
	if err != nil || len(ids) != 20 {
		t.Fatalf("%d passkeys stored (%v)", len(ids), err)
	}
}

// Each ceremony begun stores a challenge: a client network may begin
// THROTTLE_IP_LIMIT × 10 per window, counted before they are stored.
func TestPasskeyCeremoniesAreBounded(t *testing.T) {
	e := newEnv(t, withPasskeys, func(c *auth.Config, _ *graph.Options) {
		c.Throttle = auth.DefaultThrottle
		c.Throttle.IPLimit = 2
	})
	c := e.client()
	codes := make([]string, 30)
	var wg sync.WaitGroup
	for i := range codes {
		wg.Go(func() {
			if r := c.do(t, beginLogin, nil); len(r.Errors) > 0 {
				codes[i], _ = r.Errors[0].Extensions["code"].(string)
			}
		})
	}
	wg.Wait()
	if begun := count(codes, ""); begun != 20 || count(codes, "TOO_MANY_REQUESTS") != 10 {
		t.Fatalf("30 ceremonies at once with a budget of 20: %d begun, answers %v", begun, codes)
	}
}

// A password change proves the password: the session may add a passkey
// for PASSKEY_REAUTH after it.
func TestPasswordChangeCountsAsARecentSignIn(t *testing.T) {
	e := newEnv(t, withPasskeys)
	owner := e.client()
	owner.register(t, "renewed", "correct horse")
	e.clock.Advance(11 * time.Minute)
	if code := owner.do(t, beginRegistration, nil).code(t); code != "FORBIDDEN" {
		t.Fatalf("11 minutes after sign-in: %s", code)
	}
	var out struct{ ChangePassword struct{ Token string } }
	owner.ok(t, `mutation { changePassword(currentPassword: "correct horse", newPassword: "another horse") { token } }`, nil, &out)
	owner.token = out.ChangePassword.Token
	owner.addPasskey(t, softauthn.New(passkeyOrigin), "after the change")
}

// Deleting a passkey ends the sessions it opened: its holder is evicted.
func TestDeletingAPasskeyEndsItsSessions(t *testing.T) {
	e := newEnv(t, withPasskeys)
	owner := e.client()
	owner.register(t, "evicting", "correct horse")
	stolen := softauthn.New(passkeyOrigin)
	pk := owner.addPasskey(t, stolen, "stolen laptop")
	thief := e.client()
	thief.token = thief.passkeyLoginOK(t, stolen).FinishPasskeyLogin.Token
	other := e.client()
	other.login(t, "evicting", "correct horse")
	var del struct{ DeletePasskey bool }
	owner.ok(t, `mutation($id: ID!) { deletePasskey(id: $id) }`, map[string]any{"id": pk.ID}, &del)
	if !del.DeletePasskey || thief.me(t) != "" || other.me(t) != "evicting" || owner.me(t) != "evicting" {
		t.Fatal("deletePasskey did not end exactly the sessions the passkey opened")
	}
}

// A registration challenge is finished only by the session that began it,
// another session's attempt leaves it usable, and the sign-in must still
// be recent when it finishes.
func TestPasskeyRegistrationChallengeIsTheSessions(t *testing.T) {
	e := newEnv(t, withPasskeys)
	owner := e.client()
	owner.register(t, "bound", "correct horse")
	a := softauthn.New(passkeyOrigin)
	var b struct{ BeginPasskeyRegistration challenge }
	owner.ok(t, beginRegistration, nil, &b)
	cred, err := a.Create(b.BeginPasskeyRegistration.Options)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]any{"id": b.BeginPasskeyRegistration.ChallengeID, "c": json.RawMessage(cred)}
	other := e.client()
	other.login(t, "bound", "correct horse")
	if code := other.do(t, finishRegistration, vars).code(t); code != "BAD_USER_INPUT" {
		t.Fatalf("another session's finish: %s", code)
	}
	var f struct{ FinishPasskeyRegistration passkey }
	owner.ok(t, finishRegistration, vars, &f) // not burned by the other

	owner.ok(t, beginRegistration, nil, &b)
	cred, _ = softauthn.New(passkeyOrigin).Create(b.BeginPasskeyRegistration.Options)
	e.clock.Advance(10*time.Minute + time.Second)
	vars = map[string]any{"id": b.BeginPasskeyRegistration.ChallengeID, "c": json.RawMessage(cred)}
	if code := owner.do(t, finishRegistration, vars).code(t); code != "FORBIDDEN" {
		t.Fatalf("a finish after PASSKEY_REAUTH: %s, want FORBIDDEN", code)
	}
}

func TestPasskeyNamesShowWhatTheySay(t *testing.T) {
	e := newEnv(t, withPasskeys)
	owner := e.client()
	owner.register(t, "namer", "correct horse")
	pk := owner.addPasskey(t, softauthn.New(passkeyOrigin), "Ключ 🔑")
	for _, name := range []string{"👩\u200d💻 laptop", "می\u200cخواهم", "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f", "ශ්\u200dරී",
		"क्\u200dष", "👨\u200d👩\u200d👧", "🏳\ufe0f\u200d🌈"} {
		if r := owner.do(t, `mutation($id: ID!, $n: String!) { renamePasskey(id: $id, name: $n) { id } }`,
			map[string]any{"id": pk.ID, "n": name}); len(r.Errors) > 0 {
			t.Errorf("name %q refused: %+v", name, r.Errors)
		}
	}
	for _, name := range []string{"\u202eSOcam no emorhC", "a\u0085b", "\u200b", "\ufeff", "a\u2028b", "a\tb", strings.Repeat("x", 65),
		"\u3164\u3164", "\u2800", "\u200d", "YubiKey\u200d", "Yubi\u200c\u200cKey", "x\U000e0049\U000e0047\U000e004e",
		"Yubi\u200cKey", "Pay\u200dPal", "🏴\U000e0048\U000e0041\U000e0043\U000e004b\U000e007f", "🏴\U000e007f"} {
		if code := owner.do(t, `mutation($id: ID!, $n: String!) { renamePasskey(id: $id, name: $n) { id } }`,
			map[string]any{"id": pk.ID, "n": name}).code(t); code != "BAD_USER_INPUT" {
			t.Errorf("name %q: %s, want BAD_USER_INPUT", name, code)
		}
	}
}

// A sign-in at the instant its passkey is deleted never keeps a session.
func TestPasskeyDeletionRacingSignIns(t *testing.T) {
	e := newPatientEnv(t, withPasskeys, withThrottle(1000))
	owner := e.client()
	owner.register(t, "racing-delete", "correct horse")
	for round := range 10 {
		a := softauthn.New(passkeyOrigin)
		pk := owner.addPasskey(t, a, "doomed")
		const n = 6
		tokens := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			clone := softauthn.New(passkeyOrigin)
			clone.Import(a.Credentials()[0])
			clone.SetSignCount(clone.Credentials()[0].ID, uint32(1000*(i+1))) // each ahead of the others
			wg.Go(func() {
				c := e.client()
				if r := c.passkeyLogin(t, clone); len(r.Errors) == 0 {
					var out passkeySignIn
					_ = json.Unmarshal(r.Data, &out)
					tokens[i] = out.FinishPasskeyLogin.Token
				}
			})
		}
		wg.Go(func() {
			var del struct{ DeletePasskey bool }
			owner.ok(t, `mutation($id: ID!) { deletePasskey(id: $id) }`, map[string]any{"id": pk.ID}, &del)
		})
		wg.Wait()
		for i, tok := range tokens {
			c := e.client()
			c.token = tok
			if tok != "" && c.me(t) != "" {
				t.Fatalf("round %d: sign-in %d kept a session of a deleted passkey", round, i)
			}
		}
	}
}

// A credential is held to the JSONObject ceiling (MaxObjectBytes), not to
// the session data limit: an attestation with its certificate chain is
// larger than session data may be. Data is still held to MaxDataBytes on
// every mutation that stores it, and a refusal of either consumes nothing.
func TestCredentialsMayBeLargerThanSessionData(t *testing.T) {
	e := newEnv(t, withPasskeys)
	owner := e.client()
	owner.register(t, "chained", "correct horse")
	a, other := softauthn.New(passkeyOrigin), softauthn.New(passkeyOrigin)
	credential := func(a *softauthn.Authenticator, options json.RawMessage, pad int) json.RawMessage {
		t.Helper()
		key, x5c, err := softauthn.AttestationChain(8, pad)
		if err != nil {
			t.Fatal(err)
		}
		cred, err := a.Create(options, softauthn.WithPackedAttestation(key, x5c...))
		if err != nil {
			t.Fatal(err)
		}
		return cred
	}
	var b struct{ BeginPasskeyRegistration challenge }
	owner.ok(t, beginRegistration, nil, &b)
	id := b.BeginPasskeyRegistration.ChallengeID
	large, tooLarge := credential(a, b.BeginPasskeyRegistration.Options, 1200), credential(other, b.BeginPasskeyRegistration.Options, 3500)
	if len(large) <= model.MaxDataBytes || len(large) > model.MaxObjectBytes || len(tooLarge) <= model.MaxObjectBytes {
		t.Fatalf("credentials of %d and %d bytes: want one above %d within %d, one above it",
			len(large), len(tooLarge), model.MaxDataBytes, model.MaxObjectBytes)
	}
	r := owner.do(t, finishRegistration, map[string]any{"id": id, "c": tooLarge})
	if r.code(t) != "BAD_USER_INPUT" || r.Errors[0].Message != "credential must be at most 32768 bytes of JSON" {
		t.Fatalf("a credential of %d bytes: %+v, want BAD_USER_INPUT naming the limit", len(tooLarge), r.Errors)
	}
	var f struct{ FinishPasskeyRegistration passkey }
	owner.ok(t, finishRegistration, map[string]any{"id": id, "c": large, "n": "chained"}, &f)

	// Data over its limit on each mutation that stores it: refused, and
	// nothing is spent.
	big := map[string]any{"s": strings.Repeat("x", model.MaxDataBytes)}
	small := map[string]any{"s": "x"}
	tooBig := func(what string, r *response) {
		t.Helper()
		if r.code(t) != "BAD_USER_INPUT" || r.Errors[0].Message != "data must be at most 16384 bytes of JSON" {
			t.Fatalf("%s with data over the limit: %+v, want BAD_USER_INPUT naming 16384 bytes", what, r.Errors)
		}
	}
	c := e.client()
	tooBig("register", c.do(t, registerQuery, map[string]any{"u": "newcomer", "p": "correct horse", "d": big}))
	c.ok(t, registerQuery, map[string]any{"u": "newcomer", "p": "correct horse", "d": small}, &struct{}{})
	tooBig("login", c.do(t, loginQuery, map[string]any{"u": "chained", "p": "correct horse", "d": big}))
	tooBig("updateSessionData", owner.do(t, `mutation($d: JSONObject!) { updateSessionData(data: $d) { id } }`, map[string]any{"d": big}))

	const finishLoginWithData = `mutation($id: ID!, $c: JSONObject!, $d: JSONObject) {
		finishPasskeyLogin(challengeId: $id, credential: $c, data: $d) { session { data } } }`
	var l struct{ BeginPasskeyLogin challenge }
	c.ok(t, beginLogin, nil, &l)
	assertion, err := a.Get(l.BeginPasskeyLogin.Options)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]any{"id": l.BeginPasskeyLogin.ChallengeID, "c": json.RawMessage(assertion), "d": big}
	tooBig("finishPasskeyLogin", c.do(t, finishLoginWithData, vars))
	vars["d"] = small
	var s struct {
		FinishPasskeyLogin struct{ Session sessionWithData }
	}
	c.ok(t, finishLoginWithData, vars, &s)
	if s.FinishPasskeyLogin.Session.Data["s"] != "x" {
		t.Fatalf("session data %v, want the small data", s.FinishPasskeyLogin.Session.Data)
	}
}
