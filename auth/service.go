// Package auth is gatehouse's security policy in one reviewable place:
// credentials (bcrypt, username normalisation), session tokens and their
// digests, session expiry, and the HTTP middleware that tells resolvers who
// is calling.
package auth

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"

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
	// MaxSessions caps the sessions of one user: a login beyond it ends
	// the user's oldest sessions. 0 means 100.
	MaxSessions int
	// BcryptSlots is how many bcrypt operations may run at once; 0 means
	// GOMAXPROCS (which follows a container's CPU quota). More slots than
	// that gain no speed, and their hashes take Ps from the requests (see
	// hasher).
	BcryptSlots int
	// BcryptWait is how long a request may wait for a slot before it is
	// refused; 0 means 5 seconds.
	BcryptWait time.Duration
	// Meter counts security events; nil counts nothing.
	Meter Meter
	// TOTPKey (KeySize bytes) seals second-factor secrets and keys the
	// hashes of recovery codes; every instance on one database needs the
	// same. nil means a random key for this process alone (tests).
	TOTPKey []byte
	// TOTPIssuer names the service in authenticator apps; "" means
	// "gatehouse".
	TOTPIssuer string
	// SecondFactorTimeout is how long a sign-in may wait for its second
	// factor; 0 means 5 minutes.
	SecondFactorTimeout time.Duration
	// Passkeys is the WebAuthn relying party; its zero value is
	// localhost's.
	Passkeys PasskeyConfig
	// EventsRetention is how long security events are kept; 0 means
	// DefaultEventsRetention.
	EventsRetention time.Duration
}

// Meter receives counts of what the service does, for metrics.
type Meter interface {
	// Login: outcome is ok, bad_credentials, throttled or error.
	Login(outcome string)
	SessionCreated()
	// SessionsEnded: reason is logout, revoked, others, password,
	// second_factor, expired, capped or swept.
	SessionsEnded(n int, reason string)
	// Lookup: result is ok, unknown, bad_secret, expired or malformed.
	Lookup(result string)
	// BcryptWait: how long a password check or hash waited for a bcrypt
	// slot (zero when one was free).
	BcryptWait(time.Duration)
}

type noMeter struct{}

func (noMeter) Login(string)              {}
func (noMeter) SessionCreated()           {}
func (noMeter) SessionsEnded(int, string) {}
func (noMeter) Lookup(string)             {}
func (noMeter) BcryptWait(time.Duration)  {}

// Service logs users in and out and validates their sessions.
type Service struct {
	store     *storage.Store
	cfg       Config
	dummyHash string
	log       *slog.Logger
	hasher    *hasher
	gates     gates // for the throttle
	keys      *keys // for the second factor
	webauthn  *webauthn.WebAuthn
	live      live           // subscribers of this instance
	pending   sync.WaitGroup // background work (events.go)
	data      dataNotices    // DATA_UPDATED notices due
	outbox    outbox         // notices for the live stream (outbox.go)
	origin    string         // names this instance's batches in the stream
	batches   atomic.Int64   // numbers this instance's batches in their keys
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
	if cfg.MaxSessions == 0 {
		cfg.MaxSessions = 100
	}
	if cfg.BcryptSlots == 0 {
		cfg.BcryptSlots = runtime.GOMAXPROCS(0)
	}
	if cfg.BcryptWait == 0 {
		cfg.BcryptWait = 5 * time.Second
	}
	if cfg.TOTPKey == nil {
		cfg.TOTPKey = make([]byte, KeySize)
		_, _ = rand.Read(cfg.TOTPKey)
	}
	if cfg.TOTPIssuer == "" {
		cfg.TOTPIssuer = "gatehouse"
	}
	if cfg.EventsRetention == 0 {
		cfg.EventsRetention = DefaultEventsRetention
	}
	if cfg.SecondFactorTimeout == 0 {
		cfg.SecondFactorTimeout = 5 * time.Minute
	}
	keys, err := newKeys(cfg.TOTPKey)
	if err != nil {
		return nil, err
	}
	wa, err := newWebAuthn(&cfg.Passkeys)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	dummy, err := HashPassword("gatehouse dummy password", cfg.BcryptCost)
	if err != nil {
		return nil, err
	}
	s := &Service{store: store, cfg: cfg, dummyHash: dummy, log: cfg.Logger, keys: keys, webauthn: wa, origin: rand.Text()}
	s.outbox.urgent = make(chan struct{}, 1)
	s.hasher = newHasher(cfg.BcryptSlots, cfg.BcryptWait, func(d time.Duration) { s.meter().BcryptWait(d) })
	// Hashing takes as long as comparing: so from the first request on, a
	// wrong password answers no sooner than a comparison at the configured
	// cost, even for users whose hash was made at a lower one.
	s.hasher.timing.observe(cfg.BcryptCost, time.Since(start))
	return s, nil
}

// now returns the current time as the database stores it (UTC, ms).
func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Millisecond) }

func (s *Service) meter() Meter {
	if s.cfg.Meter == nil {
		return noMeter{}
	}
	return s.cfg.Meter
}
