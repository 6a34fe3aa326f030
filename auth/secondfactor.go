package auth

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"

	"gatehouse/storage"
)

// The second factor: time-based one-time passwords (RFC 6238: SHA-1, six
// digits, 30-second steps, as every authenticator app reads an otpauth
// URI) with single-use recovery codes.
//
// A user with TOTP enabled who signs in with the password gets a pending
// session: it can only show itself, end itself, or be completed by
// verifySecondFactor, and it ends after Config.SecondFactorTimeout. A code
// is accepted for the current step or one either side, each step at most
// once per secret and never at or before a step already accepted; a
// recovery code once. Both rules are claims (storage: the one insert of an
// _id that succeeds), so codes replayed in a burst pass at most once.
// Wrong codes count under the throttle like wrong passwords, under a key
// of their own per user: a right password must not give an attacker a
// fresh budget of code guesses.
//
// Secrets are stored sealed with AES-256-GCM under a key derived from the
// operator's TOTP key, bound to the user: a database dump alone yields no
// secret. Recovery codes are stored as keyed hashes only.

// Factor names, as sessions record them and GraphQL's AuthFactor shows them.
const (
	FactorPassword     = "PASSWORD"
	FactorTOTP         = "TOTP"
	FactorRecoveryCode = "RECOVERY_CODE"
)

// KeySize is the size of the operator's TOTP key (TOTP_KEY).
const KeySize = 32

const (
	totpPeriod = 30 // seconds per step
	totpDigits = otp.DigitsSix
	// recoveryCodes is how many recovery codes a user gets at a time, of
	// recoveryLength characters from recoveryAlphabet (Crockford's base 32
	// without 0 and 1, so nothing reads as O, I or L): about 59 bits each.
	recoveryCodes    = 10
	recoveryLength   = 12
	recoveryAlphabet = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
)

// Errors of the second factor.
var (
	// ErrSecondFactorRequired: the request's session waits for its second
	// factor, and the operation needs a full one.
	ErrSecondFactorRequired = &Error{Code: EUnauthenticated, Message: "a second factor is required: " +
		"call verifySecondFactor with a code from the authenticator app or a recovery code"}
	// ErrInvalidCode: verifySecondFactor's code is wrong, used, or too old.
	ErrInvalidCode = &Error{Code: EUnauthenticated, Message: "invalid code"}

	errNotPending    = &InputError{Reason: "this session has no second factor pending: it is signed in already"}
	errTOTPEnabled   = &InputError{Reason: "two-factor authentication is on already: turn it off first to set it up again"}
	errTOTPOff       = &InputError{Reason: "two-factor authentication is not on"}
	errNoEnrollment  = &InputError{Field: "code", Reason: "confirms nothing: call beginTotpEnrollment first"}
	errEnrollChanged = &InputError{Field: "code", Reason: "confirms an enrollment that was replaced or finished meanwhile: begin again"}
	errCodesChanged  = &InputError{Reason: "the second factor changed meanwhile (another request replaced the recovery codes or turned it off): " +
		"check it with me { totpEnabled recoveryCodesLeft } before trying again"}
	errVerifying = &ThrottledError{RetryAfter: time.Second} // this session's code is being checked
	errCodeForm  = &InputError{Field: "code", Reason: "must be the 6-digit code of the authenticator app or a recovery code"}
	errWrongCode = &InputError{Field: "code", Reason: "is incorrect, used already, or too old"}
	// errCodeRefused is checkCode's answer for a wrong, used or stale
	// code; callers say it their own way.
	errCodeRefused = errors.New("code refused")
)

// Enrollment is a TOTP secret being set up, for the user's app.
type Enrollment struct {
	Secret    string // base32
	URI       string // otpauth://totp/...
	QRCodeSVG string
}

// keys are what the operator's TOTP key is used for, each its own key.
type keys struct {
	seal        cipher.AEAD // TOTP secrets at rest
	codeKey     []byte      // HMAC key of recovery code hashes
	fingerprint string      // names the key (CheckTOTPKey) without revealing it
}

func newKeys(key []byte) (*keys, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("auth: the TOTP key must be %d bytes, not %d", KeySize, len(key))
	}
	sealKey, err := hkdf.Key(sha256.New, key, nil, "gatehouse totp secret", 32)
	if err != nil {
		return nil, err
	}
	codeKey, err := hkdf.Key(sha256.New, key, nil, "gatehouse recovery code", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(sealKey)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	check, err := hkdf.Key(sha256.New, key, nil, "gatehouse key check", 16)
	if err != nil {
		return nil, err
	}
	return &keys{seal: aead, codeKey: codeKey, fingerprint: hex.EncodeToString(check)}, nil
}

// sealSecret encrypts the TOTP secret of user userID: nonce, then the
// sealed secret, bound to the user (a sealed secret copied to another
// user's document does not open).
func (k *keys) sealSecret(userID, secret string) []byte {
	nonce := make([]byte, k.seal.NonceSize())
	_, _ = rand.Read(nonce)
	return k.seal.Seal(nonce, nonce, []byte(secret), []byte("totp:"+userID))
}

func (k *keys) openSecret(userID string, sealed []byte) (string, error) {
	n := k.seal.NonceSize()
	if len(sealed) < n {
		return "", errors.New("auth: sealed TOTP secret too short")
	}
	secret, err := k.seal.Open(nil, sealed[:n], sealed[n:], []byte("totp:"+userID))
	if err != nil {
		// A different TOTP_KEY, or a document edited by hand.
		return "", fmt.Errorf("auth: the TOTP secret of user %s does not open with this TOTP key: %w", userID, err)
	}
	return string(secret), nil
}

// codeHash is the stored form of recovery code code (normalised) of user
// userID.
func (k *keys) codeHash(userID, code string) string {
	m := hmac.New(sha256.New, k.codeKey)
	m.Write([]byte(userID + ":" + code))
	return hex.EncodeToString(m.Sum(nil))
}

// newRecoveryCodes returns fresh recovery codes of user userID as shown
// (XXXX-XXXX-XXXX) and their hashes.
func (k *keys) newRecoveryCodes(userID string) (codes, hashes []string) {
	for range recoveryCodes {
		b := make([]byte, recoveryLength)
		for i := range b {
			b[i] = recoveryAlphabet[randIntn(len(recoveryAlphabet))]
		}
		code := string(b)
		codes = append(codes, code[:4]+"-"+code[4:8]+"-"+code[8:])
		hashes = append(hashes, k.codeHash(userID, code))
	}
	return codes, hashes
}

// randIntn is a uniform random number in [0, n) from crypto/rand.
func randIntn(n int) int {
	limit := 256 - 256%n // reject what would bias the modulo
	var b [1]byte
	for {
		_, _ = rand.Read(b[:])
		if int(b[0]) < limit {
			return int(b[0]) % n
		}
	}
}

// parseCode tells a TOTP code from a recovery code, ignoring case, spaces
// and dashes, and returns it normalised; kind is "" for neither.
func parseCode(code string) (kind, norm string) {
	norm = strings.ToUpper(strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' || r == '\t' {
			return -1
		}
		return r
	}, code))
	switch {
	case len(norm) == totpDigits.Length() && strings.Trim(norm, "0123456789") == "":
		return FactorTOTP, norm
	case len(norm) == recoveryLength && strings.Trim(norm, recoveryAlphabet) == "":
		return FactorRecoveryCode, norm
	}
	return "", ""
}

// factor is a user's second factor as checkCode needs it: the TOTP secret
// (sealed) and its id, and the recovery codes' hashes (none while
// enrolling).
type factor struct {
	id       string
	sealed   []byte
	recovery []string
}

func enabled(u *storage.User) factor {
	return factor{id: u.TOTPID, sealed: u.TOTPSecret, recovery: u.RecoveryCodes}
}

// checkCode checks code against factor f of user u, after reserving the
// check under the throttle, and claims what it used. It returns the kind
// of factor proven; errCodeRefused for a wrong, used or stale code.
func (s *Service) checkCode(ctx context.Context, u *storage.User, f factor, code string) (string, error) {
	kind, norm := parseCode(code)
	if kind == "" {
		return "", errCodeForm
	}
	if err := s.requireKey(ctx); err != nil {
		return "", err
	}
	user, network := throttleKeys(u.Key, ClientFrom(ctx))
	tc := s.cfg.Throttle
	r, err := s.reserve(ctx, reserved{"2fa:" + user, tc.UserLimit}, reserved{network, tc.IPLimit})
	if err != nil {
		return "", err
	}
	ok, err := s.matchCode(ctx, u, f, kind, norm)
	if err != nil {
		r.release(ctx, false)
		return "", err
	}
	if !ok {
		locked, err := r.failed(ctx)
		sessionID := ""
		if caller, _ := CallerFrom(ctx); caller != nil {
			sessionID = caller.ID
		}
		s.recordFailure(ctx, EventLoginFailed, u.ID, sessionID)
		if locked {
			s.recordFailure(ctx, EventThrottled, u.ID, sessionID)
		}
		if err != nil {
			return "", err
		}
		return "", errCodeRefused
	}
	r.succeeded(ctx)
	return kind, nil
}

func (s *Service) matchCode(ctx context.Context, u *storage.User, f factor, kind, code string) (bool, error) {
	if kind == FactorRecoveryCode {
		h := s.keys.codeHash(u.ID, code)
		found := 0
		for _, stored := range f.recovery {
			found |= subtle.ConstantTimeCompare([]byte(stored), []byte(h))
		}
		if found == 0 {
			return false, nil
		}
		err := s.store.ClaimRecoveryCode(ctx, h)
		if errors.Is(err, storage.ErrDuplicate) {
			return false, nil // used before
		} else if err != nil {
			return false, err
		}
		// Replaced since u was read (regenerateRecoveryCodes forgets the
		// claims of the codes it replaces, so the claim alone does not
		// tell): the code no longer counts.
		cur, err := s.store.UserByKey(ctx, u.Key)
		if err != nil {
			return false, err
		}
		return cur.TOTPID == f.id && slices.Contains(cur.RecoveryCodes, h), nil
	}
	secret, err := s.keys.openSecret(u.ID, f.sealed)
	if err != nil {
		return false, err
	}
	step, ok, err := s.matchStep(secret, code)
	if err != nil || !ok {
		return false, err
	}
	return s.claimStep(ctx, f.id, step)
}

// matchStep returns the step, the current one or one either side, whose
// code is code.
func (s *Service) matchStep(secret, code string) (step uint64, ok bool, err error) {
	now := uint64(s.cfg.Now().Unix() / totpPeriod)
	match := 0
	for _, c := range []uint64{now - 1, now, now + 1} {
		want, err := hotp.GenerateCodeCustom(secret, c, hotp.ValidateOpts{Digits: totpDigits, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			return 0, false, fmt.Errorf("auth: totp: %w", err)
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			step, match = c, 1
		}
	}
	return step, match == 1, nil
}

// claimStep uses up step of TOTP secret id, and reports whether it was
// free and no later step has been accepted. The claim comes first: of two
// requests with codes of steps n and n+1, either the second sees the
// first's claim, or the first's check came before the second's claim, so
// the order of acceptance is the order of the steps.
func (s *Service) claimStep(ctx context.Context, id string, step uint64) (bool, error) {
	// A step is acceptable until the end of the step after next; its
	// claim outlives that (and the claims of the two steps after it).
	expires := time.Unix(int64(step+4)*totpPeriod, 0).UTC()
	err := s.store.ClaimStep(ctx, stepKey(id, step), expires)
	if errors.Is(err, storage.ErrDuplicate) {
		return false, nil // replayed
	} else if err != nil {
		return false, err
	}
	for _, later := range []uint64{step + 1, step + 2} {
		if taken, err := s.store.StepClaimed(ctx, stepKey(id, later)); err != nil || taken {
			return false, err
		}
	}
	return true, nil
}

func stepKey(id string, step uint64) string { return fmt.Sprintf("%s:%d", id, step) }

// VerifySecondFactor completes the caller's pending session with code, a
// TOTP code or a recovery code: the session becomes a full one, its token
// is rotated (the pending one stops working) and the new one is returned.
func (s *Service) VerifySecondFactor(ctx context.Context, caller *storage.Session, code string) (*storage.Session, Token, error) {
	if !caller.Pending {
		return nil, Token{}, errNotPending
	}
	u, err := s.store.UserByKey(ctx, caller.UserKey)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, Token{}, ErrUnauthenticated
	} else if err != nil {
		return nil, Token{}, err
	}
	if u.TOTPID == "" { // removed since the login: its sessions are ending
		return nil, Token{}, ErrUnauthenticated
	}
	// One code at a time per session: a burst of requests on one pending
	// token must not use up several recovery codes for one sign-in.
	release, err := s.lockVerification(ctx, caller.ID)
	if err != nil {
		return nil, Token{}, err
	}
	defer release()
	kind, err := s.checkCode(ctx, u, enabled(u), code)
	if errors.Is(err, errCodeRefused) {
		return nil, Token{}, ErrInvalidCode
	} else if err != nil {
		return nil, Token{}, err
	}
	now := s.now()
	tok := newSecret(caller.ID)
	sess := *caller
	sess.Factors = append(slices.Clip(Factors(caller)), kind)
	sess.SecretHash, sess.Pending = tok.Digest(), false
	sess.LastSeenAt, sess.ExpiresAt, sess.AuthAt = now, s.slide(caller.CreatedAt, now), now
	err = s.store.CompleteSecondFactor(ctx, caller, sess.SecretHash, sess.Factors, sess.LastSeenAt, sess.ExpiresAt)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, Token{}, ErrUnauthenticated // ended, or completed by another request
	} else if err != nil {
		return nil, Token{}, err
	}
	if kind == FactorRecoveryCode {
		s.log.InfoContext(ctx, "recovery code used", "user", u.ID, "session", caller.ID)
	}
	s.record(ctx, EventSignedIn, u.ID, caller.ID)
	if ids, err := s.store.SessionIDsOfUser(ctx, u.ID); err == nil {
		s.endOverCap(ctx, u, ids, &sess)
	}
	return &sess, tok, nil
}

// verifyLockTTL bounds how long a process that stopped mid-verification
// holds a pending session's lock: the next request after takes it over.
const verifyLockTTL = 30 * time.Second

// lockVerification claims the verification of pending session id, or
// refuses (TOO_MANY_REQUESTS) while another request holds it. The claim is
// a unique insert, like the codes', so it holds across instances.
func (s *Service) lockVerification(ctx context.Context, id string) (release func(), err error) {
	key := "verifying:" + id
	now := s.now()
	err = s.store.ClaimLock(ctx, key, now.Add(verifyLockTTL), now)
	if errors.Is(err, storage.ErrDuplicate) {
		return nil, errVerifying
	} else if err != nil {
		return nil, err
	}
	return func() {
		if err := s.store.UnclaimStep(context.WithoutCancel(ctx), key); err != nil {
			s.log.WarnContext(ctx, "release a verification lock failed", "session", id, "err", err)
		}
	}, nil
}

// Factors returns the factors sess has proven; a session from before
// factors were recorded proved the password.
func Factors(sess *storage.Session) []string {
	if len(sess.Factors) == 0 {
		return []string{FactorPassword}
	}
	return sess.Factors
}

// BeginTOTPEnrollment starts setting up a TOTP second factor for the
// caller, after checking the password, replacing any enrollment not yet
// confirmed.
func (s *Service) BeginTOTPEnrollment(ctx context.Context, caller *storage.Session, password string) (*Enrollment, error) {
	u, err := s.recheckPassword(ctx, caller, password)
	if err != nil {
		return nil, err
	}
	if u.TOTPID != "" {
		return nil, errTOTPEnabled
	}
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer: s.cfg.TOTPIssuer, AccountName: u.Name, Period: totpPeriod,
		Digits: totpDigits, Algorithm: otp.AlgorithmSHA1, Rand: rand.Reader,
	})
	if err != nil {
		return nil, fmt.Errorf("auth: totp: %w", err)
	}
	svg, err := qrCodeSVG(key.URL())
	if err != nil {
		return nil, err
	}
	if err := s.requireKey(ctx); err != nil {
		return nil, err
	}
	err = s.store.BeginTOTP(ctx, u.Key, NewID(), s.keys.sealSecret(u.ID, key.Secret()))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errTOTPEnabled // turned on meanwhile
	} else if err != nil {
		return nil, err
	}
	return &Enrollment{Secret: key.Secret(), URI: key.URL(), QRCodeSVG: svg}, nil
}

// ConfirmTOTPEnrollment turns the caller's enrollment on with code, a
// current code of its secret, ends the user's other sessions, and returns
// the recovery codes (the only time they are shown).
func (s *Service) ConfirmTOTPEnrollment(ctx context.Context, caller *storage.Session, code string) ([]string, error) {
	u, err := s.store.UserByKey(ctx, caller.UserKey)
	if err != nil {
		return nil, err
	}
	if u.TOTPID != "" {
		return nil, errTOTPEnabled
	}
	if u.TOTPPendingID == "" {
		return nil, errNoEnrollment
	}
	if kind, _ := parseCode(code); kind != FactorTOTP {
		return nil, &InputError{Field: "code", Reason: "must be the 6-digit code the authenticator app shows"}
	}
	_, err = s.checkCode(ctx, u, factor{id: u.TOTPPendingID, sealed: u.TOTPPendingSecret}, code)
	if errors.Is(err, errCodeRefused) {
		return nil, &InputError{Field: "code", Reason: "is not a current code of this secret: check the app's clock, and enter the next code"}
	} else if err != nil {
		return nil, err
	}
	codes, hashes := s.keys.newRecoveryCodes(u.ID)
	ctx = context.WithoutCancel(ctx) // from the write on, to the end: no half-done change
	err = s.store.EnableTOTP(ctx, u.Key, u.TOTPPendingID, u.TOTPPendingSecret, hashes, NewID())
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errEnrollChanged
	} else if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "second factor turned on", "user", u.ID, "session", caller.ID)
	// The codes are shown whatever happens next: they are the only copy.
	_ = s.endOtherSessions(ctx, u, caller.ID)
	s.record(ctx, EventSecondFactorEnabled, u.ID, caller.ID) // after: subscribers re-check their sessions
	return codes, nil
}

// DisableTOTP turns the caller's second factor off, after checking the
// password and a code, and ends the user's other sessions.
func (s *Service) DisableTOTP(ctx context.Context, caller *storage.Session, password, code string) error {
	u, err := s.stepUp(ctx, caller, password, code)
	if err != nil {
		return err
	}
	ctx = context.WithoutCancel(ctx) // from the write on, to the end: no half-done change
	if err := s.store.DisableTOTP(ctx, u.Key, u.TOTPID, NewID()); errors.Is(err, storage.ErrNotFound) {
		return errTOTPOff // turned off or replaced meanwhile
	} else if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "second factor turned off", "user", u.ID, "session", caller.ID)
	s.forgetRecoveryCodes(ctx, u)
	err = s.endOtherSessions(ctx, u, caller.ID)
	s.record(ctx, EventSecondFactorDisabled, u.ID, caller.ID)
	if err != nil {
		return &Error{Code: EIncomplete, Message: "two-factor authentication was turned off, " +
			"but ending the other sessions failed: call deleteOtherSessions to end them"}
	}
	return nil
}

// RegenerateRecoveryCodes replaces the caller's recovery codes, after
// checking the password and a code, and returns the new ones.
func (s *Service) RegenerateRecoveryCodes(ctx context.Context, caller *storage.Session, password, code string) ([]string, error) {
	u, err := s.stepUp(ctx, caller, password, code)
	if err != nil {
		return nil, err
	}
	codes, hashes := s.keys.newRecoveryCodes(u.ID)
	if err := s.store.SetRecoveryCodes(ctx, u.Key, u.TOTPID, u.RecoveryCodes, hashes); errors.Is(err, storage.ErrNotFound) {
		return nil, errCodesChanged
	} else if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "recovery codes replaced", "user", u.ID, "session", caller.ID)
	s.forgetRecoveryCodes(ctx, u)
	return codes, nil
}

// ResetTOTP removes a user's second factor from the shell (a lost phone)
// and ends all of the user's sessions. It reports whether there was one;
// storage.ErrNotFound for an unknown user.
func (s *Service) ResetTOTP(ctx context.Context, username string) (bool, error) {
	_, key, err := NormalizeUsername(username)
	if err != nil {
		return false, err
	}
	u, err := s.store.UserByKey(ctx, key)
	if err != nil {
		return false, err
	}
	return u.TOTPID != "", s.resetTOTP(ctx, key)
}

func (s *Service) resetTOTP(ctx context.Context, key string) error {
	u, err := s.store.UserByKey(ctx, key)
	if err != nil {
		return err
	}
	ctx = context.WithoutCancel(ctx) // from the write on, to the end: no half-done change
	if err := s.store.DisableTOTP(ctx, u.Key, "", NewID()); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "second factor reset by an administrator", "user", u.ID, "had", u.TOTPID != "")
	s.forgetRecoveryCodes(ctx, u)
	n, err := s.store.DeleteSessionsOfUser(context.WithoutCancel(ctx), u.ID, "")
	s.meter().SessionsEnded(int(n), "second_factor")
	if u.TOTPID != "" {
		s.record(ctx, EventSecondFactorDisabled, u.ID, "")
	}
	return err
}

// ErrWrongTOTPKey: the database's second-factor secrets were sealed with
// another key than this process has.
var ErrWrongTOTPKey = errors.New("the second-factor secrets in this database were sealed with another key " +
	"than this TOTP_KEY (or DATA_DIR/totp.key): every instance needs the same key, and a restored database " +
	"the key it had. Give it that key; if the key is lost for good, `gatehouse user totp reset-all` " +
	"removes every user's second factor (they sign in with the password, and set one up again)")

// CheckTOTPKey makes sure, at start, that the key this service seals with
// is the database's: the one whose fingerprint the database records (the
// first service to check records its own). Another key is refused while
// any second factor or enrollment exists, so that a lost key file or an
// instance with another TOTP_KEY is refused at start, not discovered as
// users locked out; with none, this key becomes the database's (a restore
// without the key file, of a database where nobody enrolled).
func (s *Service) CheckTOTPKey(ctx context.Context) error {
	recorded, err := s.store.KeyFingerprint(ctx, s.keys.fingerprint)
	if err != nil || recorded == s.keys.fingerprint {
		return err
	}
	users, err := s.store.UsersWithTOTP(ctx)
	if err != nil {
		return err
	}
	if len(users) > 0 {
		return ErrWrongTOTPKey
	}
	s.log.InfoContext(ctx, "TOTP key: the database had another one, with no second factor sealed by it; this one is the database's now")
	return s.store.SetKeyFingerprint(ctx, s.keys.fingerprint)
}

// errKeyChanged is what a client is told (as an internal error) when the
// database's key changed under a running service: another instance took
// over with another TOTP_KEY.
var errKeyChanged = errors.New("auth: the database's TOTP key is not this instance's (another instance has another TOTP_KEY)")

// requireKey refuses to seal or check anything while the database's key is
// another (see CheckTOTPKey): a right code must never count as a wrong one.
func (s *Service) requireKey(ctx context.Context) error {
	recorded, err := s.store.KeyFingerprint(ctx, s.keys.fingerprint)
	if err != nil {
		return err
	}
	if recorded != s.keys.fingerprint {
		s.log.ErrorContext(ctx, "TOTP key mismatch: every instance needs the same TOTP_KEY; second factors cannot be set up or checked here")
		return errKeyChanged
	}
	return nil
}

// ResetAllTOTP removes every user's second factor and enrollment, ends
// their sessions, and makes this service's key the database's: for a key
// lost for good. It refuses when this key is the database's already
// (nothing is lost: `user totp reset NAME` resets one user). It returns
// how many users it reset.
func (s *Service) ResetAllTOTP(ctx context.Context) (int, error) {
	recorded, err := s.store.RecordedKeyFingerprint(ctx)
	if err != nil {
		return 0, err
	}
	if recorded == "" || recorded == s.keys.fingerprint {
		return 0, errors.New("this TOTP key is the database's already: no second factor is lost " +
			"(to remove one user's, run `gatehouse user totp reset NAME`)")
	}
	keys, err := s.store.UsersWithTOTP(ctx)
	if err != nil {
		return 0, err
	}
	for i, key := range keys {
		if err := s.resetTOTP(ctx, key); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return i, err
		}
	}
	return len(keys), s.store.SetKeyFingerprint(ctx, s.keys.fingerprint)
}

// TOTPStatus tells whether the user with key has TOTP on, and how many of
// its recovery codes are unused.
func (s *Service) TOTPStatus(ctx context.Context, key string) (on bool, codesLeft int, err error) {
	u, err := s.store.UserByKey(ctx, key)
	if err != nil || u.TOTPID == "" {
		return false, 0, err
	}
	used, err := s.store.RecoveryCodesUsed(ctx, u.RecoveryCodes)
	return true, len(u.RecoveryCodes) - used, err
}

// recheckPassword checks the caller's password again, for a change of
// credentials, under the password throttle.
func (s *Service) recheckPassword(ctx context.Context, caller *storage.Session, password string) (*storage.User, error) {
	if len(password) > maxPasswordBytes { // bcrypt would ignore the excess
		return nil, ErrWrongPassword
	}
	u, err := s.checkPassword(ctx, caller.UserKey, password, ClientFrom(ctx))
	if errors.Is(err, errWrongPassword) {
		return nil, ErrWrongPassword
	}
	return u, err
}

// stepUp checks the caller's password and a current code of its second
// factor, for a change of the second factor.
func (s *Service) stepUp(ctx context.Context, caller *storage.Session, password, code string) (*storage.User, error) {
	u, err := s.recheckPassword(ctx, caller, password)
	if err != nil {
		return nil, err
	}
	if u.TOTPID == "" {
		return nil, errTOTPOff
	}
	if _, err := s.checkCode(ctx, u, enabled(u), code); errors.Is(err, errCodeRefused) {
		return nil, errWrongCode
	} else if err != nil {
		return nil, err
	}
	return u, nil
}

// endOtherSessions ends every session of u but keep after a change of its
// second factor. It runs to the end even if the client goes away; a
// failure is logged and returned.
func (s *Service) endOtherSessions(ctx context.Context, u *storage.User, keep string) error {
	ctx = context.WithoutCancel(ctx)
	n, err := s.store.DeleteSessionsOfUser(ctx, u.ID, keep)
	s.meter().SessionsEnded(int(n), "second_factor")
	if err != nil {
		s.log.ErrorContext(ctx, "end sessions after a second factor change failed", "user", u.ID, "err", err)
	}
	return err
}

// forgetRecoveryCodes deletes the use marks of u's replaced recovery
// codes; a failure leaves marks of codes that no longer exist.
func (s *Service) forgetRecoveryCodes(ctx context.Context, u *storage.User) {
	if err := s.store.ForgetRecoveryCodes(context.WithoutCancel(ctx), u.RecoveryCodes); err != nil {
		s.log.WarnContext(ctx, "forget replaced recovery codes failed", "user", u.ID, "err", err)
	}
}
