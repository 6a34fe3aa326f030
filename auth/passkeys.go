package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"gatehouse/storage"
)

// Passkeys: WebAuthn discoverable credentials, registered by a signed-in
// user and signing in with no username or password. Every check of a
// ceremony (origin, RP ID hash, challenge, user verification, signature,
// attestation) is github.com/go-webauthn/webauthn's; this file keeps the
// state around them: challenges that are single-use (consumed by the one
// delete that succeeds), expire after challengeTTL and live in the
// database (a ceremony begun on one instance finishes on another), and
// sign counters that never lose a race (a compare-and-set on the count).

// FactorPasskey names a passkey in Session.factors. A passkey is both
// factors at once: something the user has, unlocked by something they are
// or know (user verification is required).
const FactorPasskey = "PASSKEY"

const (
	challengeTTL  = 5 * time.Minute
	maxPasskeys   = 20
	maxPasskeyLen = 64 // characters of a passkey's name
)

// PasskeyConfig is the relying party gatehouse is for passkeys.
type PasskeyConfig struct {
	// RPID is the domain passkeys are bound to; "" means "localhost".
	RPID string
	// RPName is what authenticators show; "" means "gatehouse".
	RPName string
	// Origins are the web origins ceremonies may come from; none means
	// http://localhost.
	Origins []string
	// Reauth is how recently a session must have proven a factor to
	// register a passkey; 0 means 10 minutes.
	Reauth time.Duration
}

func newWebAuthn(c *PasskeyConfig) (*webauthn.WebAuthn, error) {
	if c.RPID == "" {
		c.RPID = "localhost"
	}
	if c.RPName == "" {
		c.RPName = "gatehouse"
	}
	if len(c.Origins) == 0 { // the library needs one; AddPasskeyOrigin adds more
		c.Origins = []string{"http://localhost"}
	}
	if c.Reauth == 0 {
		c.Reauth = 10 * time.Minute
	}
	w, err := webauthn.New(&webauthn.Config{RPID: c.RPID, RPDisplayName: c.RPName, RPOrigins: c.Origins})
	if err != nil {
		return nil, fmt.Errorf("auth: webauthn: %w", err)
	}
	return w, nil
}

// AddPasskeyOrigin allows ceremonies from origin too: for the port
// listened on, once known (PORT=0). Call it before serving.
func (s *Service) AddPasskeyOrigin(origin string) {
	s.webauthn.Config.RPOrigins = append(s.webauthn.Config.RPOrigins, origin)
}

// Errors of passkeys.
var (
	// ErrPasskeyFailed: a sign-in assertion was refused; what was wrong
	// is for the log, not the client.
	ErrPasskeyFailed = &Error{Code: EUnauthenticated, Message: "passkey sign-in failed"}
	// ErrReauthRequired: registering a passkey needs a recent sign-in.
	ErrReauthRequired = &Error{Code: EForbidden, Message: "adding a passkey needs a recent sign-in: sign in again, then add it"}

	errChallenge       = &InputError{Field: "challengeId", Reason: "is unknown, used or expired: begin again"}
	errRegistration    = &InputError{Field: "credential", Reason: "is not a passkey registration this server accepts (origin, RP ID, challenge, user verification or format)"}
	errAssertionFormat = &InputError{Field: "credential", Reason: "is not a WebAuthn assertion (PublicKeyCredential.toJSON() of navigator.credentials.get())"}
	errTooManyPasskeys = &InputError{Reason: fmt.Sprintf("a user has at most %d passkeys: delete one first", maxPasskeys)}
	errPasskeyKnown    = &InputError{Field: "credential", Reason: "is registered already"}
	errPasskeyName     = &InputError{Field: "name", Reason: fmt.Sprintf("must be 1 to %d characters, some of them visible, none of them control or formatting characters", maxPasskeyLen)}
)

// webAuthnUser is a user as the library sees it: the user handle is the
// user's public id, keyed in storage's userHandles.
type webAuthnUser struct {
	u     *storage.User
	creds []webauthn.Credential
}

func (w *webAuthnUser) WebAuthnID() []byte                         { return []byte(w.u.ID) }
func (w *webAuthnUser) WebAuthnName() string                       { return w.u.Name }
func (w *webAuthnUser) WebAuthnDisplayName() string                { return w.u.Name }
func (w *webAuthnUser) WebAuthnCredentials() []webauthn.Credential { return w.creds }

// loadWebAuthnUser returns u with its valid passkeys as the library's
// credentials.
func (s *Service) loadWebAuthnUser(ctx context.Context, u *storage.User) (*webAuthnUser, []*storage.Passkey, error) {
	keys, err := s.validPasskeys(ctx, u)
	if err != nil {
		return nil, nil, err
	}
	w := &webAuthnUser{u: u}
	for _, p := range keys {
		var c webauthn.Credential
		if err := json.Unmarshal(p.Credential, &c); err != nil {
			return nil, nil, fmt.Errorf("auth: passkey %s: %w", p.ID, err)
		}
		c.Authenticator.SignCount = p.SignCount
		w.creds = append(w.creds, c)
	}
	return w, keys, nil
}

// callerWebAuthnUser returns the caller's user with its valid passkeys,
// for a registration.
func (s *Service) callerWebAuthnUser(ctx context.Context, caller *storage.Session) (*webAuthnUser, error) {
	u, err := s.store.UserByKey(ctx, caller.UserKey)
	if err != nil {
		return nil, err
	}
	w, _, err := s.loadWebAuthnUser(ctx, u)
	return w, err
}

// validPasskeys returns u's passkeys of its current epoch (see
// ResetPasskeys), newest first.
func (s *Service) validPasskeys(ctx context.Context, u *storage.User) ([]*storage.Passkey, error) {
	all, err := s.store.PasskeysOfUser(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	valid := all[:0]
	for _, p := range all {
		if p.Epoch == u.PasskeyEpoch {
			valid = append(valid, p)
		}
	}
	return valid, nil
}

// stillValid reports whether passkey id is still stored and of its user's
// current epoch: the re-check after a sign-in or registration is stored.
func (s *Service) stillValid(ctx context.Context, id, userKey string) (bool, error) {
	p, err := s.store.PasskeyByID(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	u, err := s.store.UserByKey(ctx, userKey)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	return p.Epoch == u.PasskeyEpoch, nil
}

// PasskeyChallenge is a ceremony begun: its id and the options for the
// browser, as JSON.
type PasskeyChallenge struct {
	ID      string
	Options []byte
}

// challengesPerWindow multiplies THROTTLE_IP_LIMIT into the ceremonies
// one client network may begin within a throttle window: each stores a
// challenge, so their number is bounded before they are stored.
const challengesPerWindow = 10

func (s *Service) newChallenge(ctx context.Context, kind, sessionID, userID string, options any, data *webauthn.SessionData) (*PasskeyChallenge, error) {
	budget := "passkey:" + clientNetwork(ClientFrom(ctx).IP) // sign-ins, per client network
	if userID != "" {
		budget = "passkey:user:" + userID // registrations, per user: a flood from the network does not block them
	}
	r, err := s.reserve(ctx, reserved{budget, challengesPerWindow * s.cfg.Throttle.IPLimit})
	if err != nil {
		return nil, err
	}
	defer func() { _ = r.spent(ctx) }() // counted whatever happens
	opts, err := json.Marshal(options)
	if err != nil {
		return nil, err
	}
	sd, err := json.Marshal(data)
	if err != nil {
		return nil, err
	}
	c := &storage.Challenge{ID: NewID(), Kind: kind, SessionID: sessionID, Data: sd, ExpiresAt: s.now().Add(challengeTTL)}
	if err := s.store.CreateChallenge(ctx, c); err != nil {
		return nil, err
	}
	return &PasskeyChallenge{ID: c.ID, Options: opts}, nil
}

// takeChallenge consumes challenge id of kind, begun by session sessionID
// ("" for a sign-in), and returns its session data; errChallenge for one
// that is unknown, used, expired, of another kind or another session's
// (which stays for its own session to finish).
func (s *Service) takeChallenge(ctx context.Context, id, kind, sessionID string) (*webauthn.SessionData, error) {
	if !validID(id) {
		return nil, errChallenge
	}
	c, err := s.store.TakeChallenge(ctx, id, kind, sessionID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errChallenge
	} else if err != nil {
		return nil, err
	}
	if !s.cfg.Now().Before(c.ExpiresAt) {
		return nil, errChallenge
	}
	var sd webauthn.SessionData
	if err := json.Unmarshal(c.Data, &sd); err != nil {
		return nil, fmt.Errorf("auth: challenge %s: %w", id, err)
	}
	return &sd, nil
}

// BeginPasskeyRegistration starts registering a passkey for the caller,
// whose session must have proven a factor within PasskeyConfig.Reauth.
func (s *Service) BeginPasskeyRegistration(ctx context.Context, caller *storage.Session) (*PasskeyChallenge, error) {
	if err := s.recentSignIn(caller); err != nil {
		return nil, err
	}
	w, err := s.callerWebAuthnUser(ctx, caller)
	if err != nil {
		return nil, err
	}
	u := w.u
	if len(w.creds) >= maxPasskeys {
		return nil, errTooManyPasskeys
	}
	if err := s.store.UserHandle(ctx, u.ID, u.Key); err != nil {
		return nil, err
	}
	required := true
	creation, sd, err := s.webauthn.BeginRegistration(w,
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			ResidentKey:        protocol.ResidentKeyRequirementRequired,
			RequireResidentKey: &required,
			UserVerification:   protocol.VerificationRequired,
		}),
		webauthn.WithExclusions(webauthn.Credentials(w.creds).CredentialDescriptors()),
	)
	if err != nil {
		return nil, fmt.Errorf("auth: begin passkey registration: %w", err)
	}
	return s.newChallenge(ctx, "registration", caller.ID, u.ID, creation.Response, sd)
}

// recentSignIn refuses a session that proved no factor within
// PasskeyConfig.Reauth.
func (s *Service) recentSignIn(caller *storage.Session) error {
	authAt := caller.AuthAt
	if authAt.IsZero() {
		authAt = caller.CreatedAt
	}
	if s.cfg.Now().Sub(authAt) > s.cfg.Passkeys.Reauth {
		return ErrReauthRequired
	}
	return nil
}

// FinishPasskeyRegistration checks the browser's credential against the
// caller's registration challenge and stores the passkey.
func (s *Service) FinishPasskeyRegistration(ctx context.Context, caller *storage.Session, challengeID, credential string, name *string) (*storage.Passkey, error) {
	label, err := passkeyName(name, ClientFrom(ctx).UserAgent)
	if err != nil {
		return nil, err
	}
	// Recent when it finishes too: a challenge lives longer than that.
	if err := s.recentSignIn(caller); err != nil {
		return nil, err
	}
	sd, err := s.takeChallenge(ctx, challengeID, "registration", caller.ID)
	if err != nil {
		return nil, err
	}
	w, err := s.callerWebAuthnUser(ctx, caller)
	if err != nil {
		return nil, err
	}
	u := w.u
	parsed, err := protocol.ParseCredentialCreationResponseBytes([]byte(credential))
	if err != nil {
		s.log.InfoContext(ctx, "passkey registration refused", "user", u.ID, "err", err)
		return nil, errRegistration
	}
	cred, err := s.webauthn.CreateCredential(w, *sd, parsed)
	if err != nil {
		s.log.InfoContext(ctx, "passkey registration refused", "user", u.ID, "err", err)
		return nil, errRegistration
	}
	// Keep what signs in and what the issue of clones needs; not the raw
	// attestation, whose unchecked parts a client chooses.
	cred.Attestation = webauthn.CredentialAttestation{}
	cred.Transport = knownTransports(cred.Transport)
	record, err := json.Marshal(cred)
	if err != nil {
		return nil, err
	}
	p := &storage.Passkey{ID: NewID(), UserID: u.ID, CredentialID: cred.ID, Credential: record,
		SignCount: cred.Authenticator.SignCount, Name: label, CreatedAt: s.now(), Epoch: u.PasskeyEpoch}
	switch err := s.store.CreatePasskey(ctx, p, maxPasskeys); {
	case errors.Is(err, storage.ErrDuplicate):
		return nil, errPasskeyKnown
	case errors.Is(err, storage.ErrLimit):
		return nil, errTooManyPasskeys
	case err != nil:
		return nil, err
	}
	// The session that adds it must still be alive once it is stored, and
	// the epoch the same: one ended meanwhile (its passkey deleted) or a
	// reset does not leave one.
	valid, verr := s.stillValid(ctx, p.ID, u.Key)
	if cur, err := s.store.SessionByID(ctx, caller.ID); err != nil || verr != nil || !valid || !digestsEqual(cur.SecretHash, caller.SecretHash) {
		if err == nil {
			err = verr
		}
		if _, derr := s.store.DeletePasskey(context.WithoutCancel(ctx), p.ID, u.ID); derr != nil {
			return nil, derr
		}
		if err == nil || errors.Is(err, storage.ErrNotFound) {
			err = ErrUnauthenticated
		}
		return nil, err
	}
	s.log.InfoContext(ctx, "passkey added", "user", u.ID, "passkey", p.ID, "session", caller.ID)
	s.record(ctx, EventPasskeyAdded, u.ID, caller.ID)
	return p, nil
}

// knownTransports keeps the transports WebAuthn defines: the client's list
// is not checked by the library.
func knownTransports(ts []protocol.AuthenticatorTransport) []protocol.AuthenticatorTransport {
	var out []protocol.AuthenticatorTransport
	for _, t := range ts {
		switch t {
		case protocol.USB, protocol.NFC, protocol.BLE, protocol.SmartCard, protocol.Hybrid, protocol.Internal:
			out = append(out, t)
		}
	}
	return out
}

// passkeyName is name, trimmed, or one made from the user agent.
func passkeyName(name *string, userAgent string) (string, error) {
	if name == nil {
		return defaultPasskeyName(userAgent), nil
	}
	n := strings.TrimSpace(*name)
	if l := utf8.RuneCountInString(n); l < 1 || l > maxPasskeyLen || !utf8.ValidString(n) ||
		strings.ContainsFunc(n, hidden) || !strings.ContainsFunc(n, visible) || !joinersJoin([]rune(n)) {
		return "", errPasskeyName
	}
	return n, nil
}

// joinersJoin reports whether every zero-width joiner or non-joiner in rs
// stands between two visible characters (as in 👩‍💻 or می‌خواهم), and every
// tag character is part of the tag sequence of a subdivision flag (🏴 then
// tags up to the cancel tag): they then show as part of what they join,
// never alone, nor hide text of their own.
func joinersJoin(rs []rune) bool {
	isTag := func(r rune) bool { return 0xE0020 <= r && r <= 0xE007F }
	// What a joiner may follow: an emoji (a symbol, its variation
	// selector), a mark (a virama), or a letter of a script that joins
	// (Arabic, Indic, ...); never a letter of the scripts whose names it
	// would only disguise (Yubi‌Key looks like YubiKey).
	joins := func(r rune) bool {
		return unicode.In(r, unicode.S, unicode.M) || r == '\ufe0f' ||
			unicode.IsLetter(r) && !unicode.In(r, unicode.Latin, unicode.Greek, unicode.Cyrillic, unicode.Han,
				unicode.Hiragana, unicode.Katakana, unicode.Hangul, unicode.Common)
	}
	// A subdivision flag's tags are lower-case letters and digits.
	flagTag := func(r rune) bool { return 0xE0061 <= r && r <= 0xE007A || 0xE0030 <= r && r <= 0xE0039 }
	for i, r := range rs {
		switch {
		case r == '\u200c' || r == '\u200d':
			if i == 0 || i == len(rs)-1 || !joins(rs[i-1]) || !visible(rs[i+1]) {
				return false
			}
		case isTag(r):
			j := i // the start of its run of tags
			for j > 0 && isTag(rs[j-1]) {
				j--
			}
			end := i // the end of its run
			for end+1 < len(rs) && isTag(rs[end+1]) {
				end++
			}
			if j == 0 || rs[j-1] != '\U0001F3F4' || rs[end] != 0xE007F || end-j < 3 || end-j > 7 {
				return false
			}
			for _, t := range rs[j:end] {
				if !flagTag(t) {
					return false
				}
			}
		}
	}
	return true
}

// hidden are the characters a name must not hold: controls, formatting
// (bidirectional overrides, zero-width spaces), line and paragraph
// separators, and fillers that show as nothing. The joiners that emoji and
// some scripts need, and the tags of subdivision flags, stay.
func hidden(r rune) bool {
	switch {
	case r == '\u200c' || r == '\u200d' || 0xE0020 <= r && r <= 0xE007F:
		return false
	case r == '\u034f' || r == '\u115f' || r == '\u1160' || r == '\u3164' || r == '\uffa0' || r == '\u2800' ||
		r == '\u17b4' || r == '\u17b5' || r == '\U0001D159':
		return true
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp)
}

func visible(r rune) bool {
	return !hidden(r) && unicode.In(r, unicode.L, unicode.N, unicode.P, unicode.S)
}

// defaultPasskeyName names a passkey after the browser and system in
// userAgent, as far as a few well-known words tell them.
func defaultPasskeyName(userAgent string) string {
	pick := func(pairs ...string) string {
		for i := 0; i < len(pairs); i += 2 {
			if strings.Contains(userAgent, pairs[i]) {
				return pairs[i+1]
			}
		}
		return ""
	}
	browser := pick("Edg/", "Edge", "OPR/", "Opera", "Firefox/", "Firefox", "Chrome/", "Chrome", "Safari/", "Safari")
	system := pick("iPhone", "iPhone", "iPad", "iPad", "Android", "Android", "Mac OS X", "macOS", "Windows", "Windows", "CrOS", "ChromeOS", "Linux", "Linux")
	switch {
	case browser != "" && system != "":
		return browser + " on " + system
	case browser != "" || system != "":
		return browser + system
	}
	return "Passkey"
}

// BeginPasskeyLogin starts a passwordless sign-in. A client locked out by
// the throttle is refused here already.
func (s *Service) BeginPasskeyLogin(ctx context.Context, c Client) (*PasskeyChallenge, error) {
	_, network := throttleKeys("", c)
	if err := s.checkLock(ctx, network); err != nil {
		return nil, err
	}
	assertion, sd, err := s.webauthn.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return nil, fmt.Errorf("auth: begin passkey login: %w", err)
	}
	return s.newChallenge(ctx, "login", "", "", assertion.Response, sd)
}

// FinishPasskeyLogin checks an assertion against a login challenge and
// opens a full session for the passkey's user (factors [PASSKEY], even
// for a user with TOTP). Every failure counts against the client's
// throttle budget.
func (s *Service) FinishPasskeyLogin(ctx context.Context, challengeID, credential, data string, c Client) (*storage.Session, Token, error) {
	sess, tok, err := s.finishPasskeyLogin(ctx, challengeID, credential, data, c)
	s.meter().Login(loginOutcome(err)) // a sign-in like any other in the metrics
	return sess, tok, err
}

func (s *Service) finishPasskeyLogin(ctx context.Context, challengeID, credential, data string, c Client) (*storage.Session, Token, error) {
	_, network := throttleKeys("", c)
	r, err := s.reserve(ctx, reserved{network, s.cfg.Throttle.IPLimit})
	if err != nil {
		return nil, Token{}, err
	}
	u, passkeyID, err := s.passkeyLogin(ctx, challengeID, credential)
	var input *InputError
	switch {
	case err == nil:
		r.release(ctx, false) // the client's failures for other names stay
	case errors.As(err, &input) || errors.Is(err, ErrPasskeyFailed):
		if _, ferr := r.failed(ctx); ferr != nil {
			return nil, Token{}, ferr
		}
		return nil, Token{}, err
	default:
		r.release(ctx, false)
		return nil, Token{}, err
	}
	sess, tok, err := s.openSession(ctx, u, data, c, opening{factor: FactorPasskey, passkeyID: passkeyID})
	if err != nil {
		return nil, Token{}, err
	}
	// A deletion of the passkey ends the sessions it finds; this one it may
	// not have found yet, so after storing it, read the passkey again and
	// take the session back if it is gone (as openSession does for the
	// credential).
	if valid, err := s.stillValid(ctx, passkeyID, u.Key); err != nil || !valid {
		if _, derr := s.store.DeleteSession(context.WithoutCancel(ctx), sess.ID, u.ID); derr != nil {
			return nil, Token{}, derr
		}
		if err == nil {
			err = ErrPasskeyFailed
		}
		return nil, Token{}, err
	}
	return sess, tok, nil
}

// passkeyLogin verifies the assertion and counts the passkey's use; it
// returns the user signed in and the passkey's id.
func (s *Service) passkeyLogin(ctx context.Context, challengeID, credential string) (*storage.User, string, error) {
	sd, err := s.takeChallenge(ctx, challengeID, "login", "")
	if err != nil {
		return nil, "", err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes([]byte(credential))
	if err != nil {
		s.log.InfoContext(ctx, "passkey sign-in refused", "err", err)
		return nil, "", errAssertionFormat
	}
	var (
		user    *storage.User
		passkey *storage.Passkey
	)
	handler := func(rawID, userHandle []byte) (webauthn.User, error) {
		u, err := s.store.UserByHandle(ctx, string(userHandle))
		if err != nil {
			return nil, err
		}
		w, keys, err := s.loadWebAuthnUser(ctx, u)
		if err != nil {
			return nil, err
		}
		for _, p := range keys {
			if bytes.Equal(p.CredentialID, rawID) {
				passkey = p
			}
		}
		user = u
		return w, nil
	}
	_, cred, err := s.webauthn.ValidatePasskeyLogin(handler, *sd, parsed)
	if err != nil || passkey == nil {
		s.log.InfoContext(ctx, "passkey sign-in refused", "err", err)
		return nil, "", ErrPasskeyFailed
	}
	if cred.Authenticator.CloneWarning {
		s.log.WarnContext(ctx, "passkey sign-in refused: its signature counter went backwards, a possible clone",
			"user", user.ID, "passkey", passkey.ID, "stored", passkey.SignCount, "presented", cred.Authenticator.SignCount)
		// A valid signature: someone holds the key. The owner should know.
		s.recordFailure(ctx, EventLoginFailed, user.ID, "")
		return nil, "", ErrPasskeyFailed
	}
	record, err := json.Marshal(cred)
	if err != nil {
		return nil, "", err
	}
	// The count moves only from the value this check saw: of two sign-ins
	// with one counter value, one wins, and the other is a replay or a clone.
	if err := s.store.UsePasskey(ctx, passkey, cred.Authenticator.SignCount, record, s.now()); errors.Is(err, storage.ErrNotFound) {
		s.log.WarnContext(ctx, "passkey sign-in refused: its counter moved meanwhile", "user", user.ID, "passkey", passkey.ID)
		s.recordFailure(ctx, EventLoginFailed, user.ID, "")
		return nil, "", ErrPasskeyFailed
	} else if err != nil {
		return nil, "", err
	}
	s.log.InfoContext(ctx, "passkey sign-in", "user", user.ID, "passkey", passkey.ID)
	return user, passkey.ID, nil
}

// Passkeys returns the caller's passkeys, newest first.
func (s *Service) Passkeys(ctx context.Context, caller *storage.Session) ([]*storage.Passkey, error) {
	u, err := s.store.UserByKey(ctx, caller.UserKey)
	if err != nil {
		return nil, err
	}
	return s.validPasskeys(ctx, u)
}

// RenamePasskey renames one of the caller's passkeys; nil when the caller
// has no such passkey.
func (s *Service) RenamePasskey(ctx context.Context, caller *storage.Session, id, name string) (*storage.Passkey, error) {
	label, err := passkeyName(&name, "")
	if err != nil {
		return nil, err
	}
	if !validID(id) {
		return nil, nil
	}
	p, err := s.store.RenamePasskey(ctx, id, caller.UserID, label)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	return p, err
}

// DeletePasskey deletes one of the caller's passkeys and reports whether
// there was one.
func (s *Service) DeletePasskey(ctx context.Context, caller *storage.Session, id string) (bool, error) {
	if !validID(id) {
		return false, nil
	}
	ctx = context.WithoutCancel(ctx) // from the write on, to the end: no half-done change
	deleted, err := s.store.DeletePasskey(ctx, id, caller.UserID)
	if !deleted || err != nil {
		return deleted, err
	}
	s.log.InfoContext(ctx, "passkey removed", "user", caller.UserID, "passkey", id, "session", caller.ID)
	// The sessions it opened end with it (the caller's own stays: it is
	// the one asking), so that deleting a stolen passkey evicts its holder.
	all, err := s.store.SessionsOfUser(ctx, caller.UserID, math.MaxInt)
	if err != nil {
		return true, err
	}
	var ended []string
	for _, sess := range all {
		if sess.PasskeyID == id && sess.ID != caller.ID {
			ended = append(ended, sess.ID)
		}
	}
	n, err := s.store.DeleteSessions(ctx, caller.UserID, ended)
	s.meter().SessionsEnded(int(n), "revoked")
	s.record(ctx, EventPasskeyRemoved, caller.UserID, caller.ID)
	return true, err
}

// ResetPasskeys deletes every passkey of a user from the shell (a device
// lost or a passkey planted) and ends all of the user's sessions. It
// returns how many passkeys it deleted; storage.ErrNotFound for an
// unknown user.
func (s *Service) ResetPasskeys(ctx context.Context, username string) (int, error) {
	_, key, err := NormalizeUsername(username)
	if err != nil {
		return 0, err
	}
	u, err := s.store.UserByKey(ctx, key)
	if err != nil {
		return 0, err
	}
	// A new epoch first: in that one write every passkey of the user is
	// void, including any a session registers while the reset runs (a
	// sign-in and a registration each re-check the epoch once stored, and
	// give back what they stored if it moved). Then the sessions, and the
	// passkeys' documents.
	ctx = context.WithoutCancel(ctx)
	if err := s.store.NewPasskeyEpoch(ctx, u.Key, NewID()); err != nil {
		return 0, err
	}
	first, err := s.store.DeleteSessionsOfUser(ctx, u.ID, "")
	if err != nil {
		return 0, err
	}
	keys, err := s.store.PasskeysOfUser(ctx, u.ID)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, p := range keys {
		deleted, err := s.store.DeletePasskey(ctx, p.ID, u.ID)
		if err != nil {
			return n, err
		}
		if deleted {
			n++
		}
	}
	ended, err := s.store.DeleteSessionsOfUser(ctx, u.ID, "")
	s.meter().SessionsEnded(int(first+ended), "revoked")
	s.log.InfoContext(ctx, "passkeys reset by an administrator", "user", u.ID, "passkeys", n)
	if n > 0 {
		s.record(ctx, EventPasskeyRemoved, u.ID, "")
	}
	return n, err
}
