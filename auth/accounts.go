package auth

import (
	"context"
	"errors"
	"math"
	"slices"
	"time"

	"gatehouse/storage"
)

// Register creates a user and opens its first session. Registrations are
// throttled per client network, like password guesses: each one costs a
// bcrypt hash, and its answer says whether a name is taken.
func (s *Service) Register(ctx context.Context, username, password string, data string, c Client) (*storage.Session, Token, error) {
	if !s.cfg.AllowSignup {
		return nil, Token{}, ErrSignupDisabled
	}
	name, key, err := newUsername(username)
	if err != nil {
		return nil, Token{}, err
	}
	if err := validatePassword("password", password); err != nil {
		return nil, Token{}, err
	}
	r, err := s.reserveRegistration(ctx, c)
	if err != nil {
		return nil, Token{}, err
	}
	u, err := s.createUser(ctx, name, key, password)
	if serr := r.spent(ctx); err == nil {
		err = serr
	}
	if err != nil {
		return nil, Token{}, err
	}
	return s.openSession(ctx, u, data, c, opening{factor: FactorPassword})
}

// Login checks a username and password and opens a new session: a pending
// one (see secondfactor.go) when the user has a second factor. Unknown
// users and wrong passwords both give ErrInvalidCredentials, after the same
// bcrypt work.
func (s *Service) Login(ctx context.Context, username, password string, data string, c Client) (*storage.Session, Token, error) {
	sess, tok, err := s.login(ctx, username, password, data, c)
	s.meter().Login(loginOutcome(err))
	return sess, tok, err
}

// loginOutcome is the metrics label of a login's result, from its error's
// code: a bad username or password, however it was bad, counts as one.
func loginOutcome(err error) string {
	switch ErrorCode(err) {
	case "":
		return "ok"
	case EUnauthenticated, EInvalid:
		return "bad_credentials"
	case EThrottled:
		return "throttled"
	}
	return "error"
}

func (s *Service) login(ctx context.Context, username, password string, data string, c Client) (*storage.Session, Token, error) {
	_, key, err := NormalizeUsername(username)
	if err != nil {
		return nil, Token{}, err
	}
	if err := validatePassword("password", password); err != nil {
		return nil, Token{}, err
	}
	u, err := s.checkPassword(ctx, key, password, c)
	if errors.Is(err, errWrongPassword) {
		return nil, Token{}, ErrInvalidCredentials
	} else if err != nil {
		return nil, Token{}, err
	}
	return s.openSession(ctx, u, data, c, opening{factor: FactorPassword, pending: u.TOTPID != ""})
}

// errWrongPassword is checkPassword's answer for a wrong password or an
// unknown name; callers say it their own way.
var errWrongPassword = errors.New("wrong password")

// checkPassword returns user key if password is theirs, after reserving
// the check under the throttle; errWrongPassword if it is not or there is
// no such user. An unknown user costs one comparison against a dummy hash,
// exactly like a known one, and every wrong password takes as long as a
// comparison at the slowest cost this process has seen, so that timing
// tells nothing about which names exist, whatever BCRYPT_COST was when
// their hashes were made. A right password at another cost than the
// configured one is rehashed.
func (s *Service) checkPassword(ctx context.Context, key, password string, c Client) (*storage.User, error) {
	r, err := s.reservePasswordCheck(ctx, key, c)
	if err != nil {
		return nil, err
	}
	u, err := s.store.UserByKey(ctx, key)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		r.release(ctx, false)
		return nil, err
	}
	hash := s.dummyHash
	if u != nil {
		hash = u.PasswordHash
	}
	ok, took, err := s.hasher.compare(ctx, hash, password)
	if err != nil {
		r.release(ctx, false)
		return nil, err
	}
	if !ok || u == nil {
		s.hasher.padFailure(ctx, took)
		locked, err := r.failed(ctx)
		// The same writes for a name that is no user, into a log no one
		// reads (like the dummy hash): what a failure costs, now or for
		// the requests after it, must not tell names apart.
		owner := unknownOwner + key
		if u != nil {
			owner = u.ID
		}
		s.background(ctx, func(ctx context.Context) {
			s.recordFailure(ctx, EventLoginFailed, owner, "")
			if locked {
				s.recordFailure(ctx, EventThrottled, owner, "")
			}
		})
		if err != nil {
			return nil, err
		}
		return nil, errWrongPassword
	}
	r.succeeded(ctx)
	if hashCost(u.PasswordHash) != s.cfg.BcryptCost {
		s.rehash(ctx, u, password)
	}
	return u, nil
}

// rehash upgrades (or downgrades) a password hash to the configured cost,
// unless the password changed meanwhile. A failure is logged, not
// returned: the login itself was good.
func (s *Service) rehash(ctx context.Context, u *storage.User, password string) {
	hash, err := s.hasher.hash(ctx, password, s.cfg.BcryptCost)
	if err == nil {
		_, err = s.store.ReplaceHash(ctx, u.Key, u.PasswordHash, hash)
	}
	if err != nil {
		s.log.WarnContext(ctx, "rehash password failed", "user", u.ID, "err", err)
	}
}

// openSession opens a session for u, whose factor (as of u) was just
// checked: a full one, or with pending a session that waits for the
// second factor and ends after SecondFactorTimeout. A password or second
// factor change that lands while the check ran ends every session it can
// see; this one it may not see yet, so after storing it, openSession reads
// u again and takes it back if the credential changed. Beyond the per-user
// cap, the user's oldest sessions end.
func (s *Service) openSession(ctx context.Context, u *storage.User, data string, c Client, o opening) (*storage.Session, Token, error) {
	pending := o.pending
	now := s.now()
	tok := NewToken()
	expires := s.slide(now, now)
	if pending {
		expires = earlier(expires, now.Add(s.cfg.SecondFactorTimeout))
	}
	sess := NewSession(u, tok, data, c, now, expires)
	sess.Factors, sess.Pending, sess.AuthAt, sess.PasskeyID = []string{o.factor}, pending, now, o.passkeyID
	ids, err := s.store.CreateSession(ctx, sess)
	if err != nil {
		return nil, Token{}, err
	}
	cur, err := s.store.UserByKey(ctx, u.Key)
	if err != nil || cur.CredentialID != u.CredentialID {
		if _, derr := s.store.DeleteSession(context.WithoutCancel(ctx), sess.ID, u.ID); derr != nil {
			return nil, Token{}, derr
		}
		if err == nil || errors.Is(err, storage.ErrNotFound) {
			err = ErrInvalidCredentials
		}
		return nil, Token{}, err
	}
	s.meter().SessionCreated()
	if !pending {
		s.record(ctx, EventSignedIn, u.ID, sess.ID)
	}
	s.endOverCap(ctx, u, ids, sess)
	return sess, tok, nil
}

// opening is how a session is opened: the factor proven, whether a second
// one is pending, and the passkey that proved it, if one did.
type opening struct {
	factor    string
	pending   bool
	passkeyID string
}

// endOverCap ends the oldest of u's sessions ids beyond the per-user cap,
// after sess was opened or completed. Full and pending sessions are capped
// apart, each kind at MaxSessions: a sign-in halfway (someone who knows the
// password) can only push out other sign-ins halfway, never a signed-in
// device, and a completed sign-in counts among the full ones only. A user
// without a second factor has no pending sessions (turning it off ends
// them), so the ids alone say which are over.
func (s *Service) endOverCap(ctx context.Context, u *storage.User, ids []string, sess *storage.Session) {
	over := len(ids) - s.cfg.MaxSessions
	if over <= 0 {
		return
	}
	// The session is open: the cap holds even if its client goes away now.
	ctx = context.WithoutCancel(ctx)
	if u.TOTPID == "" {
		var n int64
		var err error
		for _, id := range ids[:over] {
			ended := false
			if ended, err = s.store.DeleteSession(ctx, id, u.ID); err != nil {
				break
			} else if ended {
				n++
				s.record(ctx, EventSessionRevoked, u.ID, id)
			}
		}
		s.endedOverCap(ctx, u, n, err)
		return
	}
	// Every session, as it is now (the list may have grown since ids).
	all, err := s.store.SessionsOfUser(ctx, u.ID, math.MaxInt) // newest first
	if err != nil {
		s.endedOverCap(ctx, u, 0, err)
		return
	}
	var kind []string // sess's kind, oldest first
	for _, other := range slices.Backward(all) {
		if other.Pending == sess.Pending && other.ID != sess.ID {
			kind = append(kind, other.ID)
		}
	}
	victims := kind[:max(0, len(kind)+1-s.cfg.MaxSessions)]
	var n int64
	for _, id := range victims {
		ended := false
		if sess.Pending {
			// Only if still pending: one completed meanwhile is a
			// signed-in device now, and its owner was told so.
			ended, err = s.store.DeletePendingSession(ctx, id, u.ID)
		} else { // a full session never becomes pending again
			ended, err = s.store.DeleteSession(ctx, id, u.ID)
		}
		if ended {
			n++
			s.record(ctx, EventSessionRevoked, u.ID, id)
		}
		if err != nil {
			break
		}
	}
	s.endedOverCap(ctx, u, n, err)
}

func (s *Service) endedOverCap(ctx context.Context, u *storage.User, n int64, err error) {
	s.meter().SessionsEnded(int(n), "capped")
	if err != nil {
		s.log.WarnContext(ctx, "end sessions over the cap failed", "user", u.ID, "err", err)
	}
}

// ChangePassword replaces the caller's password after checking the current
// one, ends every other session of the user, and rotates the caller's
// secret: the old token dies and the returned one replaces it.
func (s *Service) ChangePassword(ctx context.Context, caller *storage.Session, current, next string) (*storage.Session, Token, error) {
	if err := validatePassword("newPassword", next); err != nil {
		return nil, Token{}, err
	}
	u, err := s.recheckPassword(ctx, caller, current)
	if err != nil {
		return nil, Token{}, err
	}
	if err := s.setPassword(ctx, u, next, caller.ID); err != nil {
		return nil, Token{}, err
	}
	tok := newSecret(caller.ID)
	now := s.now() // the current password was just proven
	if err := s.store.RotateSecret(context.WithoutCancel(ctx), caller.ID, tok.Digest(), now); errors.Is(err, storage.ErrNotFound) {
		return nil, Token{}, errPasswordChangedSignedOut // this session ended meanwhile
	} else if err != nil {
		s.log.ErrorContext(ctx, "rotate secret after a password change failed", "user", u.ID, "err", err)
		return nil, Token{}, errPasswordChangedPartly
	}
	sess := *caller
	sess.SecretHash, sess.AuthAt = tok.Digest(), now
	return &sess, tok, nil
}

// SetPassword sets a user's password from the shell and ends all of the
// user's sessions. It returns storage.ErrNotFound for an unknown user.
func (s *Service) SetPassword(ctx context.Context, username, password string) error {
	_, key, err := NormalizeUsername(username)
	if err != nil {
		return err
	}
	if err := validatePassword("password", password); err != nil {
		return err
	}
	u, err := s.store.UserByKey(ctx, key)
	if err != nil {
		return err
	}
	return s.setPassword(ctx, u, password, "")
}

// setPassword gives u a new password and credential, then ends every
// session of u but keep. From the password's write on, it runs to the end
// even if the client goes away: a half-done change must not leave a
// thief's session alive (a write cut off by its client may still land).
func (s *Service) setPassword(ctx context.Context, u *storage.User, password, keep string) error {
	hash, err := s.hasher.hash(ctx, password, s.cfg.BcryptCost)
	if err != nil {
		return err
	}
	ctx = context.WithoutCancel(ctx)
	if err := s.store.SetPassword(ctx, u.Key, hash, NewID()); err != nil {
		return err
	}
	n, err := s.store.DeleteSessionsOfUser(ctx, u.ID, keep)
	s.meter().SessionsEnded(int(n), "password")
	s.record(ctx, EventPasswordChanged, u.ID, keep)
	if err != nil {
		s.log.ErrorContext(ctx, "end sessions after a password change failed", "user", u.ID, "err", err)
		return errPasswordChangedPartly
	}
	return nil
}

// errPasswordChangedSignedOut tells a client whose session ended while it
// changed its password (a logout elsewhere, the session cap) that the
// password did change.
var errPasswordChangedSignedOut = &Error{Code: EIncomplete, Message: "the password was changed, " +
	"but this session ended meanwhile: sign in again with the new password"}

// errPasswordChangedPartly tells a client that its password did change,
// although a later step failed.
var errPasswordChangedPartly = &Error{Code: EIncomplete, Message: "the password was changed, but ending the other " +
	"sessions or renewing this token failed: call deleteOtherSessions to end the others"}

// CreateUser creates a user from the shell, whatever AllowSignup says.
func (s *Service) CreateUser(ctx context.Context, username, password string) error {
	name, key, err := newUsername(username)
	if err != nil {
		return err
	}
	if err := validatePassword("password", password); err != nil {
		return err
	}
	_, err = s.createUser(ctx, name, key, password)
	return err
}

func (s *Service) createUser(ctx context.Context, name, key, password string) (*storage.User, error) {
	hash, err := s.hasher.hash(ctx, password, s.cfg.BcryptCost)
	if err != nil {
		return nil, err
	}
	u := &storage.User{Key: key, ID: NewID(), Name: name, PasswordHash: hash, CredentialID: NewID(), CreatedAt: s.now()}
	if err := s.store.CreateUser(ctx, u, lookalikeKeys(name, key)...); errors.Is(err, storage.ErrDuplicate) {
		return nil, &InputError{Field: "username", Reason: "taken"}
	} else if err != nil {
		return nil, err
	}
	return u, nil
}

// NewSession is the session document of tok for user u, created and last
// seen at seen. The owner's name and creation time are copied in (they
// never change), so that answering "who is this?" takes one look-up.
// Logins make their sessions with it, and so does cmd/bench's seeding.
func NewSession(u *storage.User, tok Token, data string, c Client, seen, expires time.Time) *storage.Session {
	return &storage.Session{
		ID:            tok.SessionID,
		SecretHash:    tok.Digest(),
		UserID:        u.ID,
		UserKey:       u.Key,
		UserName:      u.Name,
		UserCreatedAt: u.CreatedAt,
		Data:          data,
		CreatedAt:     seen,
		LastSeenAt:    seen,
		ExpiresAt:     expires,
		UserAgent:     c.UserAgent,
		IP:            c.IP,
	}
}
