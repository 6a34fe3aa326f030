// Package auth is gatehouse's security policy in one reviewable place:
// credentials (bcrypt, username normalisation), session tokens and their
// digests, session expiry, and the HTTP middleware that tells resolvers who
// is calling.
package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"gatehouse/storage"
)

// Config is the policy a Service enforces.
type Config struct {
	// TTL is the idle timeout: each use moves expiry to now+TTL.
	TTL time.Duration
	// MaxAge caps a session's whole life from its creation.
	MaxAge time.Duration
	// BcryptCost is the cost of new hashes; logins rehash other costs.
	BcryptCost int
	// AllowSignup enables Register.
	AllowSignup bool
	// Now is the clock; nil means time.Now. Tests move it instead of sleeping.
	Now func() time.Time
	// Logger receives failures the client is not told about; nil means
	// slog.Default().
	Logger *slog.Logger
	// Throttle bounds password guessing; zero means DefaultThrottle.
	Throttle ThrottleConfig
	// BcryptSlots is how many bcrypt operations may run at once; 0 means
	// one per CPU.
	BcryptSlots int
	// BcryptWait is how long a request may wait for a slot before it is
	// refused; 0 means 2 seconds.
	BcryptWait time.Duration
	// Meter counts security events; nil counts nothing.
	Meter Meter
}

// Meter receives counts of what the service does, for metrics.
type Meter interface {
	// Login: outcome is ok, bad_credentials, throttled or error.
	Login(outcome string)
	SessionCreated()
	// SessionsEnded: reason is logout, revoked, others, password, expired
	// or swept.
	SessionsEnded(n int, reason string)
	// Lookup: result is ok, unknown, bad_secret, expired or malformed.
	Lookup(result string)
}

type noMeter struct{}

func (noMeter) Login(string)              {}
func (noMeter) SessionCreated()           {}
func (noMeter) SessionsEnded(int, string) {}
func (noMeter) Lookup(string)             {}

// Service logs users in and out and validates their sessions.
type Service struct {
	store     *storage.Store
	cfg       Config
	dummyHash string
	log       *slog.Logger
	hasher    *hasher

	touching sync.Map // session id → struct{}: a touch is being written
}

// Client describes the device a request comes from.
type Client struct {
	UserAgent string
	IP        string
}

// NewService returns a Service on store. It computes a dummy hash at the
// configured cost, so that logins of unknown users cost as much as real ones.
func NewService(store *storage.Store, cfg Config) (*Service, error) {
	if err := ValidateCost(cfg.BcryptCost); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	if cfg.TTL <= 0 || cfg.MaxAge <= 0 {
		return nil, errors.New("auth: TTL and MaxAge must be positive")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Throttle == (ThrottleConfig{}) {
		cfg.Throttle = DefaultThrottle
	}
	if cfg.BcryptSlots == 0 {
		cfg.BcryptSlots = runtime.NumCPU()
	}
	if cfg.BcryptWait == 0 {
		cfg.BcryptWait = 2 * time.Second
	}
	dummy, err := HashPassword("gatehouse dummy password", cfg.BcryptCost)
	if err != nil {
		return nil, err
	}
	return &Service{
		store: store, cfg: cfg, dummyHash: dummy, log: cfg.Logger,
		hasher: newHasher(cfg.BcryptSlots, cfg.BcryptWait),
	}, nil
}

// now returns the current time as the database stores it (UTC, ms).
func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Millisecond) }

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

func loginOutcome(err error) string {
	var throttled *ThrottledError
	var input *InputError
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrInvalidCredentials), errors.As(err, &input):
		return "bad_credentials"
	case errors.As(err, &throttled):
		return "throttled"
	}
	return "error"
}

func (s *Service) login(ctx context.Context, username, password string, data string, c Client) (*storage.Session, Token, error) {
	_, key, err := NormalizeUsername(username)
	if err != nil {
		return nil, Token{}, err
	}
	if err := ValidatePassword("password", password); err != nil {
		return nil, Token{}, err
	}
	userKey, netKey := throttleKeys(key, c)
	if err := s.checkThrottle(ctx, userKey, netKey); err != nil {
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
		if err := s.recordFailures(ctx, userKey, netKey); err != nil {
			return nil, Token{}, err
		}
		return nil, Token{}, ErrInvalidCredentials
	}
	if err := s.store.DeleteThrottle(ctx, userKey); err != nil {
		s.log.WarnContext(ctx, "reset throttle failed", "err", err)
	}
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
	sess := &storage.Session{
		ID:            tok.SessionID,
		SecretHash:    tok.Digest(),
		UserID:        u.ID,
		UserKey:       u.Key,
		UserName:      u.Name,
		UserCreatedAt: u.CreatedAt,
		Data:          data,
		CreatedAt:     now,
		LastSeenAt:    now,
		ExpiresAt:     s.slide(now, now),
		UserAgent:     c.UserAgent,
		IP:            c.IP,
	}
	if err := s.store.CreateSession(ctx, sess); err != nil {
		return nil, Token{}, err
	}
	s.meter().SessionCreated()
	return sess, tok, nil
}

// slide returns the expiry of a session created at created and used at now.
func (s *Service) slide(created, now time.Time) time.Time {
	return earlier(now.Add(s.cfg.TTL), created.Add(s.cfg.MaxAge))
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// ExpiresAt returns when sess stops being honoured under the current
// policy: its stored expiry, or its creation plus MaxAge if that is sooner
// (so lowering SESSION_MAX_AGE takes effect at once).
func (s *Service) ExpiresAt(sess *storage.Session) time.Time {
	return earlier(sess.ExpiresAt, sess.CreatedAt.Add(s.cfg.MaxAge))
}

// Expired reports whether sess is past its expiry now.
func (s *Service) Expired(sess *storage.Session) bool {
	return !s.cfg.Now().Before(s.ExpiresAt(sess))
}

// DeleteExpired deletes sess if it has expired and reports whether it had.
// Callers treat an expired session exactly like a missing one.
func (s *Service) DeleteExpired(ctx context.Context, sess *storage.Session) (bool, error) {
	if !s.Expired(sess) {
		return false, nil
	}
	deleted, err := s.store.DeleteSession(ctx, sess.ID)
	if deleted {
		s.meter().SessionsEnded(1, "expired")
	}
	return true, err
}

// Authenticate returns the live session a token opens, or nil when it opens
// none (malformed, unknown, wrong secret, expired). Expired sessions are
// deleted on sight. A session that is due is touched: its expiry slides.
// The error is for database failures only.
func (s *Service) Authenticate(ctx context.Context, token string) (*storage.Session, error) {
	id, digest, ok := ParseToken(token)
	if !ok {
		s.meter().Lookup("malformed")
		return nil, nil
	}
	sess, err := s.store.SessionByID(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		s.meter().Lookup("unknown")
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	// A wrong secret leaves the session alone: knowing a session's public
	// id must not be enough to end it.
	if !digestsEqual(sess.SecretHash, digest) {
		s.meter().Lookup("bad_secret")
		return nil, nil
	}
	if expired, err := s.DeleteExpired(ctx, sess); expired || err != nil {
		s.meter().Lookup("expired")
		return nil, err
	}
	s.meter().Lookup("ok")
	s.touch(ctx, sess)
	return sess, nil
}

// touchInterval is how stale lastSeenAt may get before a use writes it:
// a minute, or TTL/2 when that is shorter, so reads stay reads.
func (s *Service) touchInterval() time.Duration { return min(time.Minute, s.cfg.TTL/2) }

func (s *Service) touch(ctx context.Context, sess *storage.Session) {
	now := s.now()
	if now.Sub(sess.LastSeenAt) < s.touchInterval() {
		return
	}
	// One write per session at a time: a burst of requests on a stale
	// session must not become a burst of writes.
	if _, busy := s.touching.LoadOrStore(sess.ID, struct{}{}); busy {
		return
	}
	defer s.touching.Delete(sess.ID)
	exp := s.slide(sess.CreatedAt, now)
	if err := s.store.TouchSession(ctx, sess.ID, now, exp); err != nil && !errors.Is(err, storage.ErrNotFound) {
		// The session was read and is valid; a failed bookkeeping write
		// must not fail the request.
		s.log.WarnContext(ctx, "touch session failed", "err", err)
		return
	}
	sess.LastSeenAt, sess.ExpiresAt = now, exp
}

// Session returns the caller's session with id, or nil if there is none
// that the caller may see: another user's session is indistinguishable
// from a missing one. An expired session is deleted and reported as nil.
func (s *Service) Session(ctx context.Context, caller *storage.Session, id string) (*storage.Session, error) {
	if id == caller.ID {
		return caller, nil
	}
	if !ValidID(id) {
		return nil, nil
	}
	sess, err := s.store.SessionByID(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if sess.UserID != caller.UserID {
		return nil, nil
	}
	if expired, err := s.DeleteExpired(ctx, sess); expired || err != nil {
		return nil, err
	}
	return sess, nil
}

// Sessions returns up to limit live sessions of the caller's user, newest
// first. Expired ones found on the way are deleted.
func (s *Service) Sessions(ctx context.Context, caller *storage.Session, limit int) ([]*storage.Session, error) {
	all, err := s.store.SessionsOfUser(ctx, caller.UserID, limit)
	if err != nil {
		return nil, err
	}
	live := all[:0]
	for _, sess := range all {
		if sess.ID == caller.ID {
			live = append(live, caller) // the freshest copy
			continue
		}
		expired, err := s.DeleteExpired(ctx, sess)
		if err != nil {
			return nil, err
		}
		if !expired {
			live = append(live, sess)
		}
	}
	return live, nil
}

// DeleteSession ends the caller's session id and reports whether there was
// one the caller owned.
func (s *Service) DeleteSession(ctx context.Context, caller *storage.Session, id string) (bool, error) {
	sess, err := s.Session(ctx, caller, id)
	if err != nil || sess == nil {
		return false, err
	}
	deleted, err := s.store.DeleteSession(ctx, sess.ID)
	if deleted {
		reason := "revoked"
		if id == caller.ID {
			reason = "logout"
		}
		s.meter().SessionsEnded(1, reason)
	}
	return deleted, err
}

// DeleteOtherSessions ends every session of the caller's user but the
// caller's own and returns how many it ended.
func (s *Service) DeleteOtherSessions(ctx context.Context, caller *storage.Session) (int64, error) {
	n, err := s.store.DeleteSessionsOfUser(ctx, caller.UserID, caller.ID)
	s.meter().SessionsEnded(int(n), "others")
	return n, err
}

// SetData replaces the data of the caller's session.
func (s *Service) SetData(ctx context.Context, caller *storage.Session, data string) (*storage.Session, error) {
	sess, err := s.store.SetSessionData(ctx, caller.ID, data)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, ErrUnauthenticated // deleted under us
	}
	return sess, err
}

// ChangePassword replaces the caller's password after checking the current
// one, ends every other session of the user, and rotates the caller's
// secret: the old token dies and the returned one replaces it.
func (s *Service) ChangePassword(ctx context.Context, caller *storage.Session, current, next string) (*storage.Session, Token, error) {
	if err := ValidatePassword("newPassword", next); err != nil {
		return nil, Token{}, err
	}
	if len(current) > MaxPasswordBytes { // bcrypt would ignore the excess
		return nil, Token{}, ErrWrongPassword
	}
	userKey, netKey := throttleKeys(caller.UserKey, ClientFrom(ctx))
	if err := s.checkThrottle(ctx, userKey, netKey); err != nil {
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
		if err := s.recordFailures(ctx, userKey, netKey); err != nil {
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
	tok := NewSecret(caller.ID)
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
	if err := ValidatePassword("password", password); err != nil {
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
	name, key, err := NormalizeUsername(username)
	if err != nil {
		return nil, err
	}
	if err := ValidatePassword("password", password); err != nil {
		return nil, err
	}
	hash, err := s.hasher.hash(ctx, password, s.cfg.BcryptCost)
	if err != nil {
		return nil, err
	}
	u := &storage.User{Key: key, ID: NewID(), Name: name, PasswordHash: hash, CreatedAt: s.now()}
	if err := s.store.CreateUser(ctx, u); errors.Is(err, storage.ErrDuplicate) {
		return nil, &InputError{Field: "username", Reason: "taken"}
	} else if err != nil {
		return nil, err
	}
	return u, nil
}

// Sweep deletes every expired session once and returns how many.
func (s *Service) Sweep(ctx context.Context) (int64, error) {
	n, err := s.store.DeleteExpiredSessions(ctx, s.now())
	s.meter().SessionsEnded(int(n), "swept")
	return n, err
}

// RunSweeper calls Sweep every interval until ctx ends. Every instance may
// run one: deletes are idempotent.
func (s *Service) RunSweeper(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := s.Sweep(ctx)
			if _, terr := s.SweepThrottles(ctx); err == nil {
				err = terr
			}
			switch {
			case err != nil && ctx.Err() == nil:
				s.log.WarnContext(ctx, "sweep expired sessions failed", "err", err)
			case err != nil: // shutting down
			case n > 0:
				s.log.InfoContext(ctx, "swept expired sessions", "count", n)
			default:
				// At debug level every pass shows, so an operator (and the
				// many-instances test) can see each instance's sweeper run.
				s.log.DebugContext(ctx, "swept expired sessions", "count", n)
			}
		}
	}
}

func (s *Service) meter() Meter {
	if s.cfg.Meter == nil {
		return noMeter{}
	}
	return s.cfg.Meter
}
