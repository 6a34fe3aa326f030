package auth

import (
	"context"
	"errors"
	"time"

	"gatehouse/storage"
)

// Register creates a user and opens its first session.
func (s *Service) Register(ctx context.Context, username, password string, data string, c Client) (*storage.Session, Token, error) {
	if !s.cfg.AllowSignup {
		return nil, Token{}, ErrSignupDisabled
	}
	u, err := s.createUser(ctx, username, password)
	if err != nil {
		return nil, Token{}, err
	}
	return s.openSession(ctx, u, data, c)
}

// Login checks a username and password and opens a new session. Unknown
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
	th, err := s.checkThrottle(ctx, key, c)
	if err != nil {
		return nil, Token{}, err
	}
	u, err := s.store.UserByKey(ctx, key)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, Token{}, err
	}
	// An unknown user costs one comparison against a dummy hash, exactly
	// like a known one: timing must not tell which usernames exist.
	hash := s.dummyHash
	if u != nil {
		hash = u.PasswordHash
	}
	ok, err := s.hasher.compare(ctx, hash, password)
	if err != nil {
		return nil, Token{}, err
	}
	if !ok || u == nil {
		if err := s.recordFailures(ctx, th); err != nil {
			return nil, Token{}, err
		}
		return nil, Token{}, ErrInvalidCredentials
	}
	s.succeeded(ctx, th)
	if hashCost(u.PasswordHash) != s.cfg.BcryptCost {
		s.rehash(ctx, u, password)
	}
	return s.openSession(ctx, u, data, c)
}

// rehash upgrades (or downgrades) a password hash to the configured cost.
// A failure is logged, not returned: the login itself was good.
func (s *Service) rehash(ctx context.Context, u *storage.User, password string) {
	hash, err := s.hasher.hash(ctx, password, s.cfg.BcryptCost)
	if err == nil {
		err = s.store.SetPasswordHash(ctx, u.Key, hash)
	}
	if err != nil {
		s.log.WarnContext(ctx, "rehash password failed", "user", u.ID, "err", err)
	}
}

func (s *Service) openSession(ctx context.Context, u *storage.User, data string, c Client) (*storage.Session, Token, error) {
	now := s.now()
	tok := NewToken()
	sess := NewSession(u, tok, data, c, now, s.slide(now, now))
	if err := s.store.CreateSession(ctx, sess); err != nil {
		return nil, Token{}, err
	}
	s.meter().SessionCreated()
	return sess, tok, nil
}

// ChangePassword replaces the caller's password after checking the current
// one, ends every other session of the user, and rotates the caller's
// secret: the old token dies and the returned one replaces it.
func (s *Service) ChangePassword(ctx context.Context, caller *storage.Session, current, next string) (*storage.Session, Token, error) {
	if err := validatePassword("newPassword", next); err != nil {
		return nil, Token{}, err
	}
	if len(current) > maxPasswordBytes { // bcrypt would ignore the excess
		return nil, Token{}, ErrWrongPassword
	}
	th, err := s.checkThrottle(ctx, caller.UserKey, ClientFrom(ctx))
	if err != nil {
		return nil, Token{}, err
	}
	u, err := s.store.UserByKey(ctx, caller.UserKey)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, Token{}, ErrUnauthenticated
	} else if err != nil {
		return nil, Token{}, err
	}
	ok, err := s.hasher.compare(ctx, u.PasswordHash, current)
	if err != nil {
		return nil, Token{}, err
	}
	if !ok {
		if err := s.recordFailures(ctx, th); err != nil {
			return nil, Token{}, err
		}
		return nil, Token{}, ErrWrongPassword
	}
	hash, err := s.hasher.hash(ctx, next, s.cfg.BcryptCost)
	if err != nil {
		return nil, Token{}, err
	}
	if err := s.store.SetPasswordHash(ctx, u.Key, hash); err != nil {
		return nil, Token{}, err
	}
	tok := newSecret(caller.ID)
	if err := s.store.RotateSecret(ctx, caller.ID, tok.Digest()); errors.Is(err, storage.ErrNotFound) {
		return nil, Token{}, ErrUnauthenticated
	} else if err != nil {
		return nil, Token{}, err
	}
	n, err := s.store.DeleteSessionsOfUser(ctx, u.ID, caller.ID)
	s.meter().SessionsEnded(int(n), "password")
	if err != nil {
		return nil, Token{}, err
	}
	sess := *caller
	sess.SecretHash = tok.Digest()
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
	hash, err := s.hasher.hash(ctx, password, s.cfg.BcryptCost)
	if err != nil {
		return err
	}
	if err := s.store.SetPasswordHash(ctx, key, hash); err != nil {
		return err
	}
	n, err := s.store.DeleteSessionsOfUser(ctx, u.ID, "")
	s.meter().SessionsEnded(int(n), "password")
	return err
}

// CreateUser creates a user from the shell, whatever AllowSignup says.
func (s *Service) CreateUser(ctx context.Context, username, password string) error {
	_, err := s.createUser(ctx, username, password)
	return err
}

func (s *Service) createUser(ctx context.Context, username, password string) (*storage.User, error) {
	name, key, err := newUsername(username)
	if err != nil {
		return nil, err
	}
	if err := validatePassword("password", password); err != nil {
		return nil, err
	}
	hash, err := s.hasher.hash(ctx, password, s.cfg.BcryptCost)
	if err != nil {
		return nil, err
	}
	u := &storage.User{Key: key, ID: NewID(), Name: name, PasswordHash: hash, CreatedAt: s.now()}
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
