package graph_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base32"
	"encoding/binary"
	"encoding/xml"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/auth"
	"gatehouse/graph"
	"gatehouse/storage"
)

// totpCode is RFC 6238's code of secret (base32) for time step step,
// written out here rather than taken from the library the server uses, so
// that the two check each other (TestTOTPCodeMatchesRFC6238 checks this one).
func totpCode(secret string, step int64) string {
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(secret))
	if err != nil {
		panic(err)
	}
	m := hmac.New(sha1.New, key)
	_ = binary.Write(m, binary.BigEndian, step)
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0xf
	n := binary.BigEndian.Uint32(sum[off:]) & 0x7fffffff
	return fmt.Sprintf("%06d", n%1_000_000)
}

func TestTOTPCodeMatchesRFC6238(t *testing.T) {
	// RFC 6238, appendix B: the SHA-1 seed "12345678901234567890", its
	// 8-digit codes cut to the 6 digits gatehouse uses.
	secret := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte("12345678901234567890"))
	for unix, want := range map[int64]string{59: "287082", 1111111109: "081804", 1234567890: "005924", 2000000000: "279037"} {
		if got := totpCode(secret, unix/30); got != want {
			t.Errorf("code at %d = %s, want %s", unix, got, want)
		}
	}
}

// step is the TOTP time step of the env's clock.
func (e *env) step() int64 { return e.clock.Now().Unix() / 30 }

// withThrottle sets the throttle's per-user limit (and lifts the
// per-network one out of the way).
func withThrottle(userLimit int) envOption {
	return func(c *auth.Config, _ *graph.Options) {
		c.Throttle = auth.DefaultThrottle
		c.Throttle.UserLimit, c.Throttle.IPLimit = userLimit, 1000
	}
}

const enrollQuery = `mutation($p: String!) { beginTotpEnrollment(password: $p) { secret uri qrCodeSvg } }`

const verifyQuery = `mutation($c: String!) { verifySecondFactor(code: $c) {
	token secondFactorRequired session { id factors secondFactorPending current } } }`

type enrollment struct{ Secret, URI, QRCodeSvg string }

// enableTOTP sets up TOTP for c's user with password and returns the
// secret and the recovery codes. The clock moves to the next step after,
// so the caller's first code is not the confirmation's.
func (c *client) enableTOTP(t *testing.T, password string) (string, []string) {
	t.Helper()
	var out struct{ BeginTotpEnrollment enrollment }
	c.ok(t, enrollQuery, map[string]any{"p": password}, &out)
	secret := out.BeginTotpEnrollment.Secret
	var conf struct{ ConfirmTotpEnrollment []string }
	c.ok(t, `mutation($c: String!) { confirmTotpEnrollment(code: $c) }`, map[string]any{"c": totpCode(secret, c.e.step())}, &conf)
	c.e.clock.Advance(30 * time.Second)
	return secret, conf.ConfirmTotpEnrollment
}

type verified struct {
	VerifySecondFactor struct {
		Token                string
		SecondFactorRequired bool
		Session              struct {
			ID                  string
			Factors             []string
			SecondFactorPending bool
			Current             bool
		}
	}
}

// verify completes c's pending session with code and makes c use the new
// token.
func (c *client) verify(t *testing.T, code string) verified {
	t.Helper()
	var out verified
	c.ok(t, verifyQuery, map[string]any{"c": code}, &out)
	c.token = out.VerifySecondFactor.Token
	return out
}

// refusedCode checks that verifySecondFactor refuses code with code want.
func (c *client) refusedCode(t *testing.T, code, want string) {
	t.Helper()
	if got := c.do(t, verifyQuery, map[string]any{"c": code}).code(t); got != want {
		t.Fatalf("verifySecondFactor(%q): code %s, want %s", code, got, want)
	}
}

// pendingLogin logs c in as a user with TOTP and checks it is pending.
func (c *client) pendingLogin(t *testing.T, user, password string) {
	t.Helper()
	var out struct {
		Login struct {
			Token                string
			SecondFactorRequired bool
			Session              struct {
				Factors             []string
				SecondFactorPending bool
			}
		}
	}
	c.ok(t, `mutation($u: String!, $p: String!) { login(username: $u, password: $p) {
		token secondFactorRequired session { factors secondFactorPending } } }`, map[string]any{"u": user, "p": password}, &out)
	l := out.Login
	if !l.SecondFactorRequired || !l.Session.SecondFactorPending || !slices.Equal(l.Session.Factors, []string{"PASSWORD"}) {
		t.Fatalf("login of a TOTP user: %+v, want a pending session with factors [PASSWORD]", l)
	}
	c.token = l.Token
}

func TestTOTPEnrollmentAndSignIn(t *testing.T) {
	e := newEnv(t)
	owner, laptop := e.client(), e.client()
	owner.register(t, "Mallory2FA", "correct horse")
	laptop.login(t, "mallory2fa", "correct horse")

	if code := owner.do(t, enrollQuery, map[string]any{"p": "wrong password"}).code(t); code != "BAD_USER_INPUT" {
		t.Fatalf("enrollment with a wrong password: %s, want BAD_USER_INPUT", code)
	}
	if code := owner.do(t, `mutation { confirmTotpEnrollment(code: "123456") }`, nil).code(t); code != "BAD_USER_INPUT" {
		t.Fatalf("confirm without an enrollment: %s, want BAD_USER_INPUT", code)
	}
	var out struct{ BeginTotpEnrollment enrollment }
	owner.ok(t, enrollQuery, map[string]any{"p": "correct horse"}, &out)
	en := out.BeginTotpEnrollment
	u, err := url.Parse(en.URI)
	if err != nil || u.Scheme != "otpauth" || u.Host != "totp" || u.Query().Get("secret") != en.Secret ||
		u.Query().Get("issuer") != "gatehouse" || u.Path != "/gatehouse:Mallory2FA" {
		t.Fatalf("uri %q (secret %q): want otpauth://totp/gatehouse:Mallory2FA?secret=...&issuer=gatehouse", en.URI, en.Secret)
	}
	if !regexp.MustCompile(`^[A-Z2-7]{32}$`).MatchString(en.Secret) {
		t.Fatalf("secret %q: want 160 bits in base32", en.Secret)
	}
	var svg struct {
		XMLName xml.Name
		Path    []struct {
			D string `xml:"d,attr"`
		} `xml:"path"`
	}
	if err := xml.Unmarshal([]byte(en.QRCodeSvg), &svg); err != nil || svg.XMLName.Local != "svg" || len(svg.Path) != 1 ||
		strings.Count(svg.Path[0].D, "M") < 200 {
		t.Fatalf("qrCodeSvg is not an SVG of a QR code (%v): %.200s", err, en.QRCodeSvg)
	}

	// Nothing changes at sign-in until the enrollment is confirmed.
	other := e.client()
	if l := other.login(t, "mallory2fa", "correct horse"); l.SecondFactorRequired {
		t.Fatal("login is pending before the enrollment was confirmed")
	}
	if code := owner.do(t, `mutation($c: String!) { confirmTotpEnrollment(code: $c) }`,
		map[string]any{"c": totpCode(en.Secret, e.step()+2)}).code(t); code != "BAD_USER_INPUT" {
		t.Fatalf("confirm with a wrong code: %s, want BAD_USER_INPUT", code)
	}
	var conf struct{ ConfirmTotpEnrollment []string }
	owner.ok(t, `mutation($c: String!) { confirmTotpEnrollment(code: $c) }`, map[string]any{"c": totpCode(en.Secret, e.step())}, &conf)
	codes := conf.ConfirmTotpEnrollment
	if len(codes) != 10 || len(slices.Compact(slices.Sorted(slices.Values(codes)))) != 10 {
		t.Fatalf("recovery codes %q: want 10 distinct", codes)
	}
	for _, c := range codes {
		if !regexp.MustCompile(`^[2-9A-HJKMNP-TV-Z]{4}-[2-9A-HJKMNP-TV-Z]{4}-[2-9A-HJKMNP-TV-Z]{4}$`).MatchString(c) {
			t.Fatalf("recovery code %q: want XXXX-XXXX-XXXX of the unambiguous alphabet", c)
		}
	}
	// Turning it on ends the other sessions, as a password change does.
	if laptop.me(t) != "" || other.me(t) != "" {
		t.Fatal("sessions other than the enrolling one survived turning TOTP on")
	}
	var me struct {
		Me struct {
			TotpEnabled       bool
			RecoveryCodesLeft int
		}
	}
	owner.ok(t, `{ me { totpEnabled recoveryCodesLeft } }`, nil, &me)
	if !me.Me.TotpEnabled || me.Me.RecoveryCodesLeft != 10 {
		t.Fatalf("me after enrollment: %+v", me.Me)
	}
	if code := owner.do(t, enrollQuery, map[string]any{"p": "correct horse"}).code(t); code != "BAD_USER_INPUT" {
		t.Fatalf("beginTotpEnrollment while on: %s, want BAD_USER_INPUT", code)
	}

	// Sign in: password, then a pending session, then the code.
	e.clock.Advance(30 * time.Second) // the confirmation used this step
	phone := e.client()
	phone.pendingLogin(t, "MALLORY2FA", "correct horse")
	pendingToken := phone.token
	v := phone.verify(t, totpCode(en.Secret, e.step()))
	s := v.VerifySecondFactor
	if s.SecondFactorRequired || s.Session.SecondFactorPending || !s.Session.Current ||
		!slices.Equal(s.Session.Factors, []string{"PASSWORD", "TOTP"}) {
		t.Fatalf("verifySecondFactor: %+v", s)
	}
	if s.Token == pendingToken {
		t.Fatal("verifySecondFactor did not rotate the token")
	}
	if phone.me(t) != "Mallory2FA" {
		t.Fatal("the verified token does not sign in")
	}
	old := e.client()
	old.token = pendingToken
	if r := old.do(t, `{ session { id } }`, nil); string(r.Data) != `{"session":null}` {
		t.Fatalf("the pending token still opens a session: %s %+v", r.Data, r.Errors)
	}
	// A full session has no second factor to verify.
	if code := phone.do(t, verifyQuery, map[string]any{"c": totpCode(en.Secret, e.step()+1)}).code(t); code != "BAD_USER_INPUT" {
		t.Fatalf("verifySecondFactor on a full session: %s, want BAD_USER_INPUT", code)
	}
}

func TestSecondFactorCodeWindowAndReplay(t *testing.T) {
	e := newEnv(t, withThrottle(100))
	owner := e.client()
	owner.register(t, "windowed", "correct horse")
	secret, _ := owner.enableTOTP(t, "correct horse")
	e.clock.Advance(10 * time.Minute)
	now := e.step()

	c := e.client()
	c.pendingLogin(t, "windowed", "correct horse")
	c.refusedCode(t, totpCode(secret, now+2), "UNAUTHENTICATED")
	c.refusedCode(t, totpCode(secret, now-2), "UNAUTHENTICATED")
	c.refusedCode(t, "12345", "BAD_USER_INPUT")
	c.verify(t, totpCode(secret, now+1)) // one step ahead: a fast clock

	// Each step once, and never one at or before the last accepted.
	for _, step := range []int64{now + 1, now, now - 1} {
		d := e.client()
		d.pendingLogin(t, "windowed", "correct horse")
		d.refusedCode(t, totpCode(secret, step), "UNAUTHENTICATED")
	}
	e.clock.Advance(60 * time.Second) // now+2 is the current step
	d := e.client()
	d.pendingLogin(t, "windowed", "correct horse")
	d.refusedCode(t, totpCode(secret, now+1), "UNAUTHENTICATED")
	d.verify(t, totpCode(secret, now+2))
	e.clock.Advance(30 * time.Second) // now+3: now+2 is one behind, and used
	f := e.client()
	f.pendingLogin(t, "windowed", "correct horse")
	f.verify(t, fmt.Sprintf(" %s-%s ", totpCode(secret, now+3)[:3], totpCode(secret, now+3)[3:])) // spaces and a dash
}

func TestRecoveryCodes(t *testing.T) {
	e := newEnv(t, withThrottle(100))
	owner := e.client()
	owner.register(t, "recovering", "correct horse")
	secret, codes := owner.enableTOTP(t, "correct horse")

	c := e.client()
	c.pendingLogin(t, "recovering", "correct horse")
	// Case, spaces and dashes do not matter.
	typed := strings.ToLower(strings.ReplaceAll(codes[0], "-", " "))
	v := c.verify(t, typed)
	if f := v.VerifySecondFactor.Session.Factors; !slices.Equal(f, []string{"PASSWORD", "RECOVERY_CODE"}) {
		t.Fatalf("factors %v, want [PASSWORD RECOVERY_CODE]", f)
	}
	var me struct {
		Me struct{ RecoveryCodesLeft int }
	}
	c.ok(t, `{ me { recoveryCodesLeft } }`, nil, &me)
	if me.Me.RecoveryCodesLeft != 9 {
		t.Fatalf("recoveryCodesLeft %d, want 9", me.Me.RecoveryCodesLeft)
	}
	d := e.client()
	d.pendingLogin(t, "recovering", "correct horse")
	d.refusedCode(t, codes[0], "UNAUTHENTICATED") // used up

	// New codes replace the old ones, and need the password and a code.
	const regen = `mutation($p: String!, $c: String!) { regenerateRecoveryCodes(password: $p, code: $c) }`
	if code := c.do(t, regen, map[string]any{"p": "wrong", "c": codes[1]}).code(t); code != "BAD_USER_INPUT" {
		t.Fatalf("regenerate with a wrong password: %s", code)
	}
	if code := c.do(t, regen, map[string]any{"p": "correct horse", "c": "222222"}).code(t); code != "BAD_USER_INPUT" {
		t.Fatalf("regenerate with a wrong code: %s", code)
	}
	var out struct{ RegenerateRecoveryCodes []string }
	c.ok(t, regen, map[string]any{"p": "correct horse", "c": totpCode(secret, e.step())}, &out)
	fresh := out.RegenerateRecoveryCodes
	if len(fresh) != 10 || slices.Contains(fresh, codes[2]) {
		t.Fatalf("regenerated codes %q", fresh)
	}
	d.refusedCode(t, codes[2], "UNAUTHENTICATED") // an old, unused code
	c.ok(t, `{ me { recoveryCodesLeft } }`, nil, &me)
	if me.Me.RecoveryCodesLeft != 10 {
		t.Fatalf("recoveryCodesLeft after regenerating: %d", me.Me.RecoveryCodesLeft)
	}

	// Turning it off takes the password and a code (a recovery code will
	// do), ends the other sessions, and sign-in is one step again.
	d.verify(t, fresh[0])
	var off struct{ DisableTotp bool }
	c.ok(t, `mutation($p: String!, $c: String!) { disableTotp(password: $p, code: $c) }`,
		map[string]any{"p": "correct horse", "c": fresh[1]}, &off)
	if !off.DisableTotp || d.me(t) != "" || c.me(t) != "recovering" {
		t.Fatal("disableTotp did not end the other session or ended its own")
	}
	if l := e.client().login(t, "recovering", "correct horse"); l.SecondFactorRequired {
		t.Fatal("login still pending after disableTotp")
	}
}

func TestPendingSessionCanOnlyVerifyShowOrEndItself(t *testing.T) {
	e := newEnv(t)
	owner := e.client()
	owner.register(t, "halfway", "correct horse")
	owner.enableTOTP(t, "correct horse")
	c := e.client()
	c.pendingLogin(t, "halfway", "correct horse")

	if c.me(t) != "" {
		t.Fatal("me answers for a pending session")
	}
	var cur struct {
		Session struct {
			ID                  string
			SecondFactorPending bool
			Factors             []string
		}
	}
	c.ok(t, `{ session { id secondFactorPending factors } }`, nil, &cur)
	if !cur.Session.SecondFactorPending {
		t.Fatalf("session of a pending token: %+v", cur.Session)
	}
	for _, q := range []string{
		`{ sessions { id } }`,
		`{ session { user { totpEnabled } } }`,
		`{ session { user { recoveryCodesLeft } } }`,
		`{ session(id: "` + cur.Session.ID + `") { id } }`,
		`mutation { updateSessionData(data: {a: 1}) { id } }`,
		`mutation { deleteOtherSessions }`,
		`mutation { deleteSession(id: "` + cur.Session.ID + `") }`,
		`mutation { changePassword(currentPassword: "correct horse", newPassword: "another horse") { token } }`,
		`mutation { beginTotpEnrollment(password: "correct horse") { secret } }`,
		`mutation { confirmTotpEnrollment(code: "123456") }`,
		`mutation { disableTotp(password: "correct horse", code: "123456") }`,
		`mutation { regenerateRecoveryCodes(password: "correct horse", code: "123456") }`,
	} {
		r := c.do(t, q, nil)
		if r.code(t) != "UNAUTHENTICATED" || r.Errors[0].Extensions["secondFactorRequired"] != true ||
			!strings.Contains(r.Errors[0].Message, "second factor") {
			t.Errorf("%s from a pending session: %+v, want UNAUTHENTICATED with secondFactorRequired", q, r.Errors)
		}
	}

	// The user sees it among their sessions, and can end it.
	var list struct {
		Sessions []struct {
			ID                  string
			SecondFactorPending bool
		}
	}
	owner.ok(t, `{ sessions { id secondFactorPending } }`, nil, &list)
	if !slices.ContainsFunc(list.Sessions, func(s struct {
		ID                  string
		SecondFactorPending bool
	}) bool {
		return s.ID == cur.Session.ID && s.SecondFactorPending
	}) {
		t.Fatalf("the owner's sessions %+v do not show the pending one", list.Sessions)
	}
	var n struct{ DeleteOtherSessions int }
	owner.ok(t, `mutation { deleteOtherSessions }`, nil, &n)
	if n.DeleteOtherSessions != 1 {
		t.Fatalf("deleteOtherSessions ended %d", n.DeleteOtherSessions)
	}
	if r := c.do(t, `{ session { id } }`, nil); string(r.Data) != `{"session":null}` {
		t.Fatalf("the pending session survived deleteOtherSessions: %s", r.Data)
	}

	// Cancelling a sign-in: deleteSession without an id.
	d := e.client()
	d.pendingLogin(t, "halfway", "correct horse")
	var del struct{ DeleteSession bool }
	d.ok(t, `mutation { deleteSession }`, nil, &del)
	if !del.DeleteSession {
		t.Fatal("a pending session could not end itself")
	}
	d.refusedCode(t, "123456", "UNAUTHENTICATED")
}

func TestPendingSessionExpiresWithoutSliding(t *testing.T) {
	e := newEnv(t, func(c *auth.Config, _ *graph.Options) { c.SecondFactorTimeout = 5 * time.Minute })
	owner := e.client()
	owner.register(t, "slowpoke", "correct horse")
	secret, _ := owner.enableTOTP(t, "correct horse")
	c := e.client()
	c.pendingLogin(t, "slowpoke", "correct horse")
	var cur struct {
		Session *struct{ ExpiresAt time.Time }
	}
	c.ok(t, `{ session { expiresAt } }`, nil, &cur)
	if want := e.clock.Now().Add(5 * time.Minute); cur.Session == nil || !cur.Session.ExpiresAt.Equal(want) {
		t.Fatalf("pending session expires at %+v, want %v", cur.Session, want)
	}
	for range 4 { // used every minute, it still ends 5 minutes after the password
		e.clock.Advance(time.Minute)
		c.ok(t, `{ session { expiresAt } }`, nil, &cur)
		if cur.Session == nil {
			t.Fatal("pending session ended early")
		}
	}
	e.clock.Advance(time.Minute)
	c.ok(t, `{ session { expiresAt } }`, nil, &cur)
	if cur.Session != nil {
		t.Fatal("pending session outlived SECOND_FACTOR_TIMEOUT")
	}
	c.refusedCode(t, totpCode(secret, e.step()), "UNAUTHENTICATED")
}

func TestSecondFactorGuessBurstIsThrottled(t *testing.T) {
	e := newPatientEnv(t)
	owner := e.client()
	owner.register(t, "guessed", "correct horse")
	secret, _ := owner.enableTOTP(t, "correct horse")
	right := totpCode(secret, e.step())
	wrong := fmt.Sprintf("%06d", (mustAtoi(right)+1)%1_000_000)

	// A session per guess: one session's guesses go one at a time.
	const n = 40
	clients := make([]*client, n)
	for i := range clients {
		clients[i] = e.client()
		clients[i].pendingLogin(t, "guessed", "correct horse")
	}
	codes := make([]string, n)
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			r := c.do(t, verifyQuery, map[string]any{"c": wrong})
			if len(r.Errors) == 1 {
				codes[i], _ = r.Errors[0].Extensions["code"].(string)
				if codes[i] == "TOO_MANY_REQUESTS" && r.Errors[0].Extensions["retryAfter"] == nil {
					codes[i] = "no retryAfter"
				}
			}
		})
	}
	wg.Wait()
	checked := count(codes, "UNAUTHENTICATED")
	if limit := auth.DefaultThrottle.UserLimit; checked > limit || checked+count(codes, "TOO_MANY_REQUESTS") != n {
		t.Fatalf("a burst of %d wrong codes: %d checked (limit %d), answers %v", n, checked, limit, codes)
	}
	// Locked: even the right code waits, and a new password login does
	// not reset the count of wrong codes.
	d := e.client()
	d.pendingLogin(t, "guessed", "correct horse")
	d.refusedCode(t, right, "TOO_MANY_REQUESTS")
}

// One pending session checks one code at a time: a burst of recovery codes
// on one token uses up one of them.
func TestOneSessionChecksOneCodeAtATime(t *testing.T) {
	e := newPatientEnv(t, withThrottle(1000))
	owner := e.client()
	owner.register(t, "hasty", "correct horse")
	_, codes := owner.enableTOTP(t, "correct horse")
	c := e.client()
	c.pendingLogin(t, "hasty", "correct horse")
	answers := make([]string, len(codes))
	var wg sync.WaitGroup
	for i, code := range codes {
		wg.Go(func() {
			if r := c.do(t, verifyQuery, map[string]any{"c": code}); len(r.Errors) > 0 {
				answers[i], _ = r.Errors[0].Extensions["code"].(string)
			}
		})
	}
	wg.Wait()
	var me struct {
		Me struct{ RecoveryCodesLeft int }
	}
	owner.ok(t, `{ me { recoveryCodesLeft } }`, nil, &me)
	won := count(answers, "")
	if won != 1 || me.Me.RecoveryCodesLeft != 10-won {
		t.Fatalf("10 recovery codes at once on one pending session: %d accepted, %d codes left, answers %v", won, me.Me.RecoveryCodesLeft, answers)
	}
}

func TestOneCodeCompletesOneSessionWhateverTheBurst(t *testing.T) {
	e := newPatientEnv(t, withThrottle(1000))
	owner := e.client()
	owner.register(t, "replayed", "correct horse")
	secret, codes := owner.enableTOTP(t, "correct horse")
	for _, code := range []string{totpCode(secret, e.step()), codes[0]} {
		const n = 12
		clients := make([]*client, n)
		for i := range clients {
			clients[i] = e.client()
			clients[i].pendingLogin(t, "replayed", "correct horse")
		}
		won := make([]bool, n)
		var wg sync.WaitGroup
		for i, c := range clients {
			wg.Go(func() { won[i] = len(c.do(t, verifyQuery, map[string]any{"c": code}).Errors) == 0 })
		}
		wg.Wait()
		if w := count(won, true); w != 1 {
			t.Fatalf("code %s presented by %d sessions at once: %d accepted, want 1", code, n, w)
		}
	}
}

func TestPendingSignInsNeverEndSignedInSessions(t *testing.T) {
	e := newEnv(t, func(c *auth.Config, _ *graph.Options) { c.MaxSessions = 3 })
	owner := e.client()
	owner.register(t, "capped", "correct horse")
	_, codes := owner.enableTOTP(t, "correct horse")
	devices := []*client{owner}
	for _, code := range codes[:2] { // signed in: 3 full sessions, the cap
		d := e.client()
		d.pendingLogin(t, "capped", "correct horse")
		d.verify(t, code)
		devices = append(devices, d)
	}
	for range 10 { // someone with the password, again and again
		e.client().pendingLogin(t, "capped", "correct horse")
	}
	for i, d := range devices {
		if d.me(t) != "capped" {
			t.Fatalf("pending sign-ins ended signed-in session %d", i)
		}
	}
	ids, err := e.store.SessionIDsOfUser(context.Background(), idOf(t, owner))
	if err != nil || len(ids) != 6 {
		t.Fatalf("%d sessions listed: want the 3 full ones and the newest 3 pending ones (%v)", len(ids), err)
	}
	// A sign-in that completes counts among the full sessions only: the
	// oldest full one ends, not the other devices.
	d := e.client()
	d.pendingLogin(t, "capped", "correct horse")
	d.verify(t, codes[2])
	if owner.me(t) != "" || devices[1].me(t) != "capped" || devices[2].me(t) != "capped" || d.me(t) != "capped" {
		t.Fatal("a completed sign-in over the cap did not end exactly the oldest full session")
	}
	if ids, _ = e.store.SessionIDsOfUser(context.Background(), idOf(t, d)); len(ids) != 5 {
		t.Fatalf("after a verified login over the cap: %d sessions, want 3 full and 2 pending", len(ids))
	}
}

func idOf(t *testing.T, c *client) string {
	t.Helper()
	var me struct{ Me struct{ ID string } }
	c.ok(t, `{ me { id } }`, nil, &me)
	return me.Me.ID
}

func TestSessionsFromBeforeFactorsReadAsPassword(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	reg := c.register(t, "veteran", "correct horse")
	tok := auth.NewToken()
	old := &storage.Session{ID: tok.SessionID, SecretHash: tok.Digest(), UserID: reg.Session.User.ID, UserKey: "veteran",
		UserName: "veteran", CreatedAt: e.clock.Now(), LastSeenAt: e.clock.Now(), ExpiresAt: e.clock.Now().Add(time.Hour)}
	if _, err := e.store.CreateSession(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	v := e.client()
	v.token = tok.String()
	var out struct {
		Session struct {
			Factors             []string
			SecondFactorPending bool
		}
	}
	v.ok(t, `{ session { factors secondFactorPending } }`, nil, &out)
	if !slices.Equal(out.Session.Factors, []string{"PASSWORD"}) || out.Session.SecondFactorPending {
		t.Fatalf("a session stored without factors reads %+v", out.Session)
	}
}

func TestOneCodeCheckPerOperation(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	c.register(t, "aliased", "correct horse")
	r := c.do(t, `mutation { a: verifySecondFactor(code: "111111") { token } b: verifySecondFactor(code: "222222") { token } }`, nil)
	if r.code(t) != "BAD_USER_INPUT" || !strings.Contains(r.Errors[0].Message, "at most one") {
		t.Fatalf("two code checks in one operation: %+v", r.Errors)
	}
}

func mustAtoi(s string) int {
	var n int
	fmt.Sscanf(s, "%d", &n)
	return n
}

func count[T comparable](xs []T, x T) int {
	n := 0
	for _, y := range xs {
		if y == x {
			n++
		}
	}
	return n
}
