package main

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/webauthn"
	"golang.org/x/net/publicsuffix"

	"gatehouse/auth"
	"gatehouse/storage"
)

// config is everything that can be set from the environment or flags.
type config struct {
	host, port      string
	mongoURI        string
	mongoDB         string
	dataDir         string
	sessionTTL      time.Duration
	sessionMaxAge   time.Duration
	bcryptCost      int
	allowSignup     bool
	cookieSecure    bool
	trustedProxies  prefixList
	logLevel        slog.Level
	logFormat       string
	dbTimeout       time.Duration
	sweepInterval   time.Duration
	shutdown        time.Duration
	corsOrigins     originList
	introspection   bool
	throttle        auth.ThrottleConfig
	maxSessions     int
	bcryptSlots     int
	bcryptWait      time.Duration
	metricsAddr     string
	walLimit        int64
	sessionCache    int64
	minFree         int64
	totpKey         keyValue
	totpIssuer      string
	secondFactor    time.Duration
	eventsRetention time.Duration
	rpID, rpName    string
	rpOrigins       originList
	passkeyReauth   time.Duration

	// effective is every setting's value as the start-up log shows it
	// (MONGODB_URI's password redacted).
	effective []slog.Attr
}

// setting is one entry of the configuration: an environment variable and
// a flag, its default, what it means, and the value that parses, checks and
// holds it (its Set errors say the expected form).
type setting struct {
	env, flag, def, help string
	value                flag.Value
}

// settings lists every setting of c, in the order -h and the start-up log
// show them.
func (c *config) settings() []setting {
	return []setting{
		{"HOST", "host", "localhost", "address to listen on: an IP address or host name (0.0.0.0 for all interfaces)", (*hostValue)(&c.host)},
		{"PORT", "port", "8080", "port to listen on (0 picks a free one)", (*portValue)(&c.port)},
		{"MONGODB_URI", "mongodb-uri", "", "MongoDB connection string (mongodb://... or mongodb+srv://...); empty runs the embedded FerretDB", (*uriValue)(&c.mongoURI)},
		{"MONGODB_DATABASE", "mongodb-database", "gatehouse", "database name (letters, digits, _ and -, up to 63)", (*databaseValue)(&c.mongoDB)},
		{"DATA_DIR", "data-dir", "./data", "directory of the embedded database's files", (*dirValue)(&c.dataDir)},
		{"SESSION_TTL", "session-ttl", "1h", "idle timeout: a session unused this long expires", (*durationValue)(&c.sessionTTL)},
		{"SESSION_MAX_AGE", "session-max-age", "24h", "a session's longest life, however much it is used (at least SESSION_TTL)", (*durationValue)(&c.sessionMaxAge)},
		{"BCRYPT_COST", "bcrypt-cost", "12", "bcrypt cost of password hashes (4 to 31)", &intValue{&c.bcryptCost, 4, 31}},
		{"ALLOW_SIGNUP", "allow-signup", "true", "whether register is open to anyone", (*boolValue)(&c.allowSignup)},
		{"COOKIE_SECURE", "cookie-secure", "true", "mark the session cookie Secure (false for plain-http deployments other than localhost)", (*boolValue)(&c.cookieSecure)},
		{"TRUSTED_PROXIES", "trusted-proxies", "", "comma list of proxy addresses or CIDRs whose X-Forwarded-For is believed", &c.trustedProxies},
		{"LOG_LEVEL", "log-level", "info", "debug, info, warn or error", (*levelValue)(&c.logLevel)},
		{"LOG_FORMAT", "log-format", "text", "text or json", (*formatValue)(&c.logFormat)},
		{"DB_TIMEOUT", "db-timeout", "5s", "deadline of every database operation", (*durationValue)(&c.dbTimeout)},
		{"SWEEP_INTERVAL", "sweep-interval", "1m", "how often expired sessions are deleted", (*durationValue)(&c.sweepInterval)},
		{"SHUTDOWN_TIMEOUT", "shutdown-timeout", "10s", "how long in-flight requests may take to finish on shutdown", (*durationValue)(&c.shutdown)},
		{"CORS_ORIGINS", "cors-origins", "", "comma list of browser origins (like https://app.example.com or http://localhost:5173) allowed to call the API with credentials; empty = same-origin only", &c.corsOrigins},
		{"INTROSPECTION", "introspection", "true", "whether schema introspection is on", (*boolValue)(&c.introspection)},
		{"THROTTLE_USER_LIMIT", "throttle-user-limit", "5", "failed logins for one username within the window before it is locked", &intValue{&c.throttle.UserLimit, 1, 0}},
		{"THROTTLE_IP_LIMIT", "throttle-ip-limit", "50", "failed logins from one client address (IPv6: /64) within the window before it is locked", &intValue{&c.throttle.IPLimit, 1, 0}},
		{"THROTTLE_REGISTER_LIMIT", "throttle-register-limit", "10", "registrations from one client address (IPv6: /64) within the window before it is locked", &intValue{&c.throttle.RegisterLimit, 1, 0}},
		{"THROTTLE_WINDOW", "throttle-window", "15m", "how long failed logins are remembered after the last one", (*durationValue)(&c.throttle.Window)},
		{"THROTTLE_BASE_DELAY", "throttle-base-delay", "30s", "first lock's length; each further lock doubles it", (*durationValue)(&c.throttle.BaseDelay)},
		{"THROTTLE_MAX_DELAY", "throttle-max-delay", "15m", "longest lock (at least THROTTLE_BASE_DELAY)", (*durationValue)(&c.throttle.MaxDelay)},
		{"MAX_SESSIONS_PER_USER", "max-sessions-per-user", "100", "sessions one user may have; a login beyond it ends the user's oldest", &intValue{&c.maxSessions, 1, 0}},
		{"BCRYPT_SLOTS", "bcrypt-slots", "0", "bcrypt operations that may run at once; 0 = one per CPU", &intValue{&c.bcryptSlots, 0, 0}},
		{"METRICS_ADDR", "metrics-addr", "off", "where /metrics is served: off = nowhere, or HOST:PORT of its own (never the API's port), like 127.0.0.1:9464 for this machine only", (*addrValue)(&c.metricsAddr)},
		{"BCRYPT_WAIT", "bcrypt-wait", "5s", "how long a login may wait for a bcrypt slot before TOO_MANY_REQUESTS", (*durationValue)(&c.bcryptWait)},
		{"DB_WAL_LIMIT", "db-wal-limit", "64MiB", "size the embedded database's write-ahead log is kept under (at least 1MiB)", &sizeValue{&c.walLimit, 1 << 20}},
		{"SESSION_CACHE", "session-cache", "8MiB", "memory for sessions kept once read, so that checking one costs no database round trip; used only with the embedded database in this process (the one writer of its data); 0 = off, else at least 1MiB", (*cacheSizeValue)(&c.sessionCache)},
		{"DB_MIN_FREE", "db-min-free", "16MiB", "free space on DATA_DIR's disk under which /readyz says the disk is full", &sizeValue{&c.minFree, 0}},
		{"TOTP_KEY", "totp-key", "", "32 random bytes in base64 (openssl rand -base64 32) that seal second-factor secrets; required with MONGODB_URI, the same on every instance; unset with the embedded database: DATA_DIR/totp.key, made on first start", &c.totpKey},
		{"TOTP_ISSUER", "totp-issuer", "gatehouse", "the name authenticator apps show for this service (1 to 64 characters, no colon)", (*issuerValue)(&c.totpIssuer)},
		{"SECOND_FACTOR_TIMEOUT", "second-factor-timeout", "5m", "how long a sign-in may wait for its second factor", (*durationValue)(&c.secondFactor)},
		{"WEBAUTHN_RP_ID", "webauthn-rp-id", "localhost", "the domain passkeys are bound to (a host name, like example.com: the site's or a parent domain of it)", (*hostNameValue)(&c.rpID)},
		{"WEBAUTHN_RP_NAME", "webauthn-rp-name", "gatehouse", "the name authenticators show for this service (1 to 64 characters)", (*issuerValue)(&c.rpName)},
		{"WEBAUTHN_ORIGINS", "webauthn-origins", "", "comma list of the web origins passkey ceremonies come from (the app's pages); empty with WEBAUTHN_RP_ID=localhost: http://localhost:PORT and CORS_ORIGINS; required otherwise", &c.rpOrigins},
		{"PASSKEY_REAUTH", "passkey-reauth", "10m", "how recently a session must have signed in to add a passkey", (*durationValue)(&c.passkeyReauth)},
		{"EVENTS_RETENTION", "events-retention", "2160h", "how long security events are kept (2160h = 90 days)", (*durationValue)(&c.eventsRetention)},
	}
}

// parseConfig reads the environment, then the flags (which win), and
// checks every setting before the caller opens, creates or binds anything.
// An invalid value is a *usageError that names the variable and the flag
// and says the expected form; all of them are reported at once. -h prints
// the help to help and returns flag.ErrHelp.
func parseConfig(name string, args []string, getenv func(string) string, help io.Writer) (*config, []string, error) {
	c := &config{}
	settings := c.settings()
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	flags := make([]rawFlag, len(settings))
	for i, s := range settings {
		if err := s.value.Set(s.def); err != nil {
			panic(fmt.Sprintf("default of %s: %v", s.env, err)) // a bug, not input
		}
		_, flags[i].isBool = s.value.(*boolValue)
		fs.Var(&flags[i], s.flag, s.help)
	}
	fs.Bool("version", false, "print the version and exit (run answers it before reading any setting)")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		printHelp(help, settings)
		return nil, nil, err
	} else if err != nil {
		return nil, nil, &usageError{err: err, usage: commandUsage}
	}

	var errs []error
	for i, s := range settings {
		name, other, v := s.env, "flag -"+s.flag, getenv(s.env)
		if flags[i].set {
			name, other, v = "-"+s.flag, s.env, flags[i].s
		} else if v == "" {
			continue
		}
		if err := s.value.Set(v); err != nil {
			shown := v
			if s.env == "MONGODB_URI" {
				shown = storage.RedactURI(v)
			} else if _, secret := s.value.(*keyValue); secret {
				shown = "(not shown)"
			}
			errs = append(errs, fmt.Errorf("%s=%q (%s): %w", name, shown, other, err))
		}
	}
	if len(errs) == 0 {
		errs = append(errs, c.check()...)
	}
	if len(errs) > 0 {
		return nil, nil, &usageError{err: errors.Join(errs...)}
	}
	c.effective = make([]slog.Attr, len(settings))
	for i, s := range settings {
		v := s.value.String()
		if s.env == "MONGODB_URI" {
			v = storage.RedactURI(v)
		}
		c.effective[i] = slog.String(s.env, v)
	}
	return c, fs.Args(), nil
}

// check holds the rules between settings.
func (c *config) check() []error {
	var errs []error
	if c.sessionMaxAge < c.sessionTTL {
		errs = append(errs, fmt.Errorf("SESSION_MAX_AGE (%v) is shorter than SESSION_TTL (%v): a session's longest life must be at least its idle timeout", c.sessionMaxAge, c.sessionTTL))
	}
	if c.throttle.MaxDelay < c.throttle.BaseDelay {
		errs = append(errs, fmt.Errorf("THROTTLE_MAX_DELAY (%v) is shorter than THROTTLE_BASE_DELAY (%v): the longest lock must be at least the first", c.throttle.MaxDelay, c.throttle.BaseDelay))
	}
	if c.mongoURI != "" && c.totpKey == nil {
		errs = append(errs, errors.New("TOTP_KEY is required with MONGODB_URI: every instance must seal second-factor secrets with the same key; "+
			"make one with `openssl rand -base64 32` and give it to all of them"))
	}
	errs = append(errs, c.checkPasskeyOrigins()...)
	if c.metricsAddr != "off" {
		if _, port, _ := net.SplitHostPort(c.metricsAddr); port == c.port && port != "0" {
			errs = append(errs, fmt.Errorf("METRICS_ADDR (%s) is on the API's PORT %s: give /metrics a port of its own, such as 127.0.0.1:9464", c.metricsAddr, c.port))
		}
	}
	return errs
}

// checkPasskeyOrigins holds WEBAUTHN_ORIGINS to WEBAUTHN_RP_ID, as browsers
// will: each origin's host must be the RP ID or a subdomain of it.
func (c *config) checkPasskeyOrigins() []error {
	if c.rpID != "localhost" && len(c.rpOrigins) == 0 {
		return []error{fmt.Errorf("WEBAUTHN_ORIGINS is required with WEBAUTHN_RP_ID=%s: behind a proxy the server cannot know "+
			"the origin its pages are served from; list them, like https://%s", c.rpID, c.rpID)}
	}
	if net.ParseIP(c.rpID) != nil {
		return []error{fmt.Errorf("WEBAUTHN_RP_ID=%s is an IP address: passkeys are bound to a domain; give one (or localhost)", c.rpID)}
	}
	if ps, _ := publicsuffix.PublicSuffix(c.rpID); ps == c.rpID && c.rpID != "localhost" {
		return []error{fmt.Errorf("WEBAUTHN_RP_ID=%s is a public suffix (like com or co.uk), which browsers refuse: "+
			"give the site's domain, like example.%s", c.rpID, c.rpID)}
	}
	var errs []error
	for _, o := range c.rpOrigins {
		if !fitsRPID(o, c.rpID) {
			errs = append(errs, fmt.Errorf("WEBAUTHN_ORIGINS: %s is not on WEBAUTHN_RP_ID %s (nor a subdomain of it): browsers refuse passkeys there", o, c.rpID))
		} else if u, _ := url.Parse(o); u.Scheme != "https" && u.Hostname() != "localhost" && !strings.HasSuffix(u.Hostname(), ".localhost") {
			errs = append(errs, fmt.Errorf("WEBAUTHN_ORIGINS: %s is plain http: browsers offer passkeys to https pages (and localhost) only", o))
		}
	}
	if len(errs) == 0 {
		// Whatever else the library refuses, refused now, before anything
		// is opened.
		origins := c.passkeyOrigins("8080")
		if len(origins) == 0 {
			origins = []string{"http://localhost"}
		}
		if _, err := webauthn.New(&webauthn.Config{RPID: c.rpID, RPDisplayName: c.rpName, RPOrigins: origins}); err != nil {
			errs = append(errs, fmt.Errorf("WEBAUTHN_RP_ID=%s or WEBAUTHN_ORIGINS: not usable for passkeys: %w", c.rpID, err))
		}
	}
	return errs
}

// fitsRPID reports whether origin's host is rpID or a subdomain of it.
func fitsRPID(origin, rpID string) bool {
	u, err := url.Parse(origin)
	return err == nil && (u.Hostname() == rpID || strings.HasSuffix(u.Hostname(), "."+rpID))
}

// passkeyOrigins are the origins passkey ceremonies may come from:
// WEBAUTHN_ORIGINS, or by default (RP ID localhost) http://localhost:PORT
// and the CORS origins on localhost. port is the port listened on.
func (c *config) passkeyOrigins(port string) []string {
	if len(c.rpOrigins) > 0 {
		return c.rpOrigins
	}
	var origins []string
	if port != "0" { // else serve adds it once listening
		origins = append(origins, "http://localhost:"+port)
	}
	for _, o := range c.corsOrigins {
		if fitsRPID(o, c.rpID) {
			origins = append(origins, o)
		}
	}
	return origins
}

// usageError is a command line or a setting gatehouse cannot run with,
// found before anything was opened, created or bound: main prints it (and
// usage, when set) to stderr and exits 2.
type usageError struct {
	err   error
	usage string
}

func (e *usageError) Error() string {
	if e.usage == "" {
		return e.err.Error()
	}
	return e.err.Error() + "\n" + e.usage
}

func (e *usageError) Unwrap() error { return e.err }

// rawFlag holds a flag's text until every setting is read, so that a bad
// value from a flag is reported as one from the environment is.
type rawFlag struct {
	s           string
	set, isBool bool
}

func (f *rawFlag) Set(s string) error { f.s, f.set = s, true; return nil }
func (f *rawFlag) String() string     { return f.s }
func (f *rawFlag) IsBoolFlag() bool   { return f.isBool }

// printHelp writes -h: what gatehouse is, its commands, and every setting
// once, with its default.
func printHelp(w io.Writer, settings []setting) {
	fmt.Fprintf(w, "gatehouse is a GraphQL login and session server.\n\n%s\n\n", commandUsage)
	fmt.Fprintln(w, "settings, each an environment variable and a flag (the flag wins), all checked")
	fmt.Fprintln(w, "before anything is opened or created:")
	for _, s := range settings {
		def := s.def
		if def == "" {
			def = "empty"
		}
		fmt.Fprintf(w, "  %s, -%s (default %s)\n        %s\n", s.env, s.flag, def, s.help)
	}
}

// hostValue is an address to listen on: an IP address or a host name,
// without a port.
type hostValue string

func (v *hostValue) Set(s string) error {
	if err := checkHost(s); err != nil {
		return err
	}
	*v = hostValue(s)
	return nil
}
func (v *hostValue) String() string { return string(*v) }

func checkHost(s string) error {
	if _, err := netip.ParseAddr(s); err == nil {
		return nil
	}
	if _, _, err := net.SplitHostPort(s); err == nil || strings.Contains(s, "://") {
		return errors.New("want an IP address or host name alone (the port goes in PORT), like localhost or 0.0.0.0")
	}
	if !validHostname(s) {
		return errors.New("want an IP address or host name, like localhost, 127.0.0.1 or 0.0.0.0")
	}
	return nil
}

// validHostname reports whether s is a DNS name: dot-separated labels of
// letters, digits and hyphens, none empty or longer than 63, or starting or
// ending with a hyphen.
func validHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// portValue is a TCP port number, kept as text for net.JoinHostPort.
type portValue string

func (v *portValue) Set(s string) error {
	p, err := parsePort(s)
	if err != nil {
		return err
	}
	*v = portValue(strconv.Itoa(p))
	return nil
}
func (v *portValue) String() string { return string(*v) }

func parsePort(s string) (int, error) {
	p, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, errors.New("want a port: a number from 0 to 65535")
	}
	return int(p), nil
}

// addrValue is "off" or an address to listen on, HOST:PORT (HOST may be
// empty: every interface).
type addrValue string

func (v *addrValue) Set(s string) error {
	if s == "off" {
		*v = addrValue(s)
		return nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New("want off or HOST:PORT, like 127.0.0.1:9464 (this machine only)")
	}
	if host != "" {
		if err := checkHost(host); err != nil {
			return errors.New("want off or HOST:PORT, like 127.0.0.1:9464 (this machine only); the host is not an IP address or host name")
		}
	}
	p, err := parsePort(port)
	if err != nil {
		return errors.New("want off or HOST:PORT, like 127.0.0.1:9464 (this machine only); the port must be a number from 0 to 65535")
	}
	*v = addrValue(net.JoinHostPort(host, strconv.Itoa(p)))
	return nil
}
func (v *addrValue) String() string { return string(*v) }

// uriValue is a MongoDB connection string, checked without connecting.
type uriValue string

func (v *uriValue) Set(s string) error {
	if s != "" {
		if err := storage.CheckURI(s); err != nil {
			return err
		}
	}
	*v = uriValue(s)
	return nil
}
func (v *uriValue) String() string { return string(*v) }

// databaseValue is a database name both MongoDB and FerretDB accept.
type databaseValue string

var databaseName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,63}$`)

func (v *databaseValue) Set(s string) error {
	if !databaseName.MatchString(s) {
		return errors.New("want 1 to 63 letters, digits, _ or -")
	}
	*v = databaseValue(s)
	return nil
}
func (v *databaseValue) String() string { return string(*v) }

// dirValue is a directory's path.
type dirValue string

func (v *dirValue) Set(s string) error {
	if s == "" || strings.ContainsRune(s, 0) {
		return errors.New("want a directory's path")
	}
	*v = dirValue(s)
	return nil
}
func (v *dirValue) String() string { return string(*v) }

// durationValue is a positive duration: none of gatehouse's durations has a
// meaning at zero.
type durationValue time.Duration

func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return errors.New("want a positive duration, like 30s, 15m or 1h")
	}
	*v = durationValue(d)
	return nil
}
func (v *durationValue) String() string { return time.Duration(*v).String() }

// intValue is a whole number from min to max (no maximum when max is 0).
type intValue struct {
	p        *int
	min, max int
}

func (v *intValue) Set(s string) error {
	i, err := strconv.Atoi(s)
	if err != nil || i < v.min || (v.max != 0 && i > v.max) {
		if v.max != 0 {
			return fmt.Errorf("want a whole number from %d to %d", v.min, v.max)
		}
		return fmt.Errorf("want a whole number, %d or more", v.min)
	}
	*v.p = i
	return nil
}
func (v *intValue) String() string { return strconv.Itoa(*v.p) }

// sizeValue is a number of bytes, with an optional KiB, MiB or GiB, and
// at least min.
type sizeValue struct {
	p   *int64
	min int64
}

func (v *sizeValue) Set(s string) error {
	num, unit := s, int64(1)
	for suffix, u := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			num, unit = n, u
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > 1<<62/unit || n*unit < v.min {
		return fmt.Errorf("want a size like 64MiB, 512KiB or 1048576 (bytes), %d or more", v.min)
	}
	*v.p = n * unit
	return nil
}
func (v *sizeValue) String() string { return strconv.FormatInt(*v.p, 10) }

// cacheSizeValue is a size of 0 (off) or 1 MiB and more: a smaller cache
// would hold next to nothing (an entry counts half a KiB at least).
type cacheSizeValue int64

func (v *cacheSizeValue) Set(s string) error {
	var n int64
	if err := (&sizeValue{&n, 0}).Set(s); err != nil || (n > 0 && n < 1<<20) {
		return errors.New("want 0 (off) or a size like 8MiB, 1MiB or more")
	}
	*v = cacheSizeValue(n)
	return nil
}
func (v *cacheSizeValue) String() string { return strconv.FormatInt(int64(*v), 10) }

// keyValue is a key of auth.KeySize bytes, in base64. It never shows
// itself: String says only whether it is set.
type keyValue []byte

func (v *keyValue) Set(s string) error {
	if s == "" {
		*v = nil
		return nil
	}
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil && len(k) == auth.KeySize {
			*v = k
			return nil
		}
	}
	return fmt.Errorf("want %d random bytes in base64, as `openssl rand -base64 %d` writes them", auth.KeySize, auth.KeySize)
}

func (v *keyValue) String() string {
	if *v == nil {
		return ""
	}
	return "(set)"
}

// hostNameValue is a host name: no scheme, port or path.
type hostNameValue string

func (v *hostNameValue) Set(s string) error {
	s = strings.ToLower(strings.TrimSuffix(s, "."))
	if s != "localhost" && !validHostname(s) {
		return errors.New("want a host name, like example.com or localhost (no scheme, port or path)")
	}
	*v = hostNameValue(s)
	return nil
}
func (v *hostNameValue) String() string { return string(*v) }

// issuerValue names the service in authenticator apps.
type issuerValue string

func (v *issuerValue) Set(s string) error {
	if s == "" || len(s) > 64 || strings.Contains(s, ":") || !utf8.ValidString(s) ||
		strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return errors.New("want 1 to 64 printable characters, no colon")
	}
	*v = issuerValue(s)
	return nil
}
func (v *issuerValue) String() string { return string(*v) }

type boolValue bool

func (v *boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New("want true or false")
	}
	*v = boolValue(b)
	return nil
}
func (v *boolValue) String() string   { return strconv.FormatBool(bool(*v)) }
func (v *boolValue) IsBoolFlag() bool { return true }

type levelValue slog.Level

func (v *levelValue) Set(s string) error {
	switch strings.ToLower(s) {
	case "debug", "info", "warn", "error":
		return (*slog.Level)(v).UnmarshalText([]byte(s))
	}
	return errors.New("want debug, info, warn or error")
}
func (v *levelValue) String() string { return strings.ToLower(slog.Level(*v).String()) }

type formatValue string

func (v *formatValue) Set(s string) error {
	if s != "text" && s != "json" {
		return errors.New("want text or json")
	}
	*v = formatValue(s)
	return nil
}
func (v *formatValue) String() string { return string(*v) }

// prefixList is a comma list of addresses or CIDR prefixes. A prefix's
// address has no bits set beyond its length, so that /0 (every address)
// is only ever written 0.0.0.0/0 or ::/0.
type prefixList []netip.Prefix

func (p *prefixList) Set(s string) error {
	*p = nil
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if pre, err := netip.ParsePrefix(f); err == nil {
			// 127.0.0.1/0 is not 0.0.0.0/0 silently (trusting anyone's
			// X-Forwarded-For): a prefix is written with its host bits
			// zero, so every address is trusted only when written so.
			if m := pre.Masked(); m != pre {
				return fmt.Errorf("%q has bits set beyond its /%d prefix: did you mean %s (that address alone) or %s (the whole network)?", f, pre.Bits(), pre.Addr(), m)
			}
			*p = append(*p, pre)
		} else if a, err := netip.ParseAddr(f); err == nil {
			*p = append(*p, netip.PrefixFrom(a, a.BitLen()))
		} else {
			return fmt.Errorf("%q is not an IP address or CIDR prefix (want a comma list like 10.0.0.1,192.168.0.0/16)", f)
		}
	}
	return nil
}

func (p *prefixList) String() string {
	s := make([]string, len(*p))
	for i, x := range *p {
		s[i] = x.String()
	}
	return strings.Join(s, ",")
}

// originList is a comma list of browser origins, normalised to what a
// browser sends in its Origin header: scheme and host in lower case, no
// default port, no trailing slash.
type originList []string

func (l *originList) Set(s string) error {
	*l = nil
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		o, err := parseOrigin(f)
		if err != nil {
			return err
		}
		*l = append(*l, o)
	}
	return nil
}

func (l *originList) String() string { return strings.Join(*l, ",") }

// parseOrigin returns s as a browser sends it in Origin: scheme://host or
// scheme://host:port, with http or https, in lower case, without the
// scheme's default port. A single trailing slash is dropped; a path, query,
// fragment, user or wildcard is refused, since a browser never sends one.
func parseOrigin(s string) (string, error) {
	const form = "want an origin, scheme://host[:port] with http or https and nothing after it"
	if strings.Contains(s, "*") {
		return "", fmt.Errorf("%q: wildcards are refused: the API is called with credentials, so name each origin (%s)", s, form)
	}
	if !strings.Contains(s, "://") {
		// https:app.example.com is https://app.example.com with the
		// slashes missing.
		scheme, rest := "https://", s
		if sc, r, ok := strings.Cut(s, ":"); ok && (strings.EqualFold(sc, "http") || strings.EqualFold(sc, "https")) {
			scheme, rest = strings.ToLower(sc)+"://", strings.TrimLeft(r, "/")
		} else if h, _, err := net.SplitHostPort(s); (err == nil && isLoopback(h)) || isLoopback(s) {
			scheme = "http://"
		}
		return "", fmt.Errorf("%q has no scheme: write %s%s (%s)", s, scheme, rest, form)
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%q: %s", s, form)
	}
	scheme := strings.ToLower(u.Scheme)
	switch {
	case scheme != "http" && scheme != "https":
		return "", fmt.Errorf("%q: the scheme must be http or https (%s)", s, form)
	case u.User != nil:
		return "", fmt.Errorf("%q: an origin has no user (%s)", s, form)
	case u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.HasSuffix(s, "#"):
		return "", fmt.Errorf("%q: an origin has no path, query or fragment; write %s://%s (%s)", s, scheme, u.Host, form)
	case u.Hostname() == "":
		return "", fmt.Errorf("%q has no host (%s)", s, form)
	}
	host := strings.ToLower(u.Hostname())
	for _, r := range host {
		if r > 127 {
			return "", fmt.Errorf("%q: write the host in its ASCII (punycode) form, as browsers send it", s)
		}
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Is6() {
			host = "[" + host + "]"
		}
	} else if strings.HasSuffix(host, ".") {
		// A browser keeps the dot in Origin, and a name with it is
		// another site than the name without: refused, not guessed.
		without := strings.TrimSuffix(u.Hostname(), ".")
		if u.Port() != "" {
			without += ":" + u.Port()
		}
		return "", fmt.Errorf("%q: the host ends with a dot; write %s://%s (%s)", s, scheme, without, form)
	} else if !validHostname(host) || endsInNumber(host) {
		return "", fmt.Errorf("%q: %q is not a host name (letters, digits and -, not first or last in a label, between dots) nor an IP address, so no browser sends it (%s)", s, u.Hostname(), form)
	}
	if port := u.Port(); port != "" {
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil || p == 0 {
			return "", fmt.Errorf("%q: the port must be a number from 1 to 65535", s)
		}
		if !(scheme == "http" && p == 80 || scheme == "https" && p == 443) {
			host += ":" + strconv.FormatUint(p, 10)
		}
	}
	return scheme + "://" + host, nil
}

// endsInNumber reports whether a host name's last label is a number
// (1.1, example.123, a.0x1f): browsers read such a host as an IPv4
// address, and refuse it when it is not a valid one.
func endsInNumber(host string) bool {
	last := host[strings.LastIndex(host, ".")+1:]
	if hex, ok := strings.CutPrefix(last, "0x"); ok {
		return strings.Trim(hex, "0123456789abcdef") == ""
	}
	return strings.Trim(last, "0123456789") == ""
}

// isLoopback reports whether host names this machine.
func isLoopback(host string) bool {
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return a.IsLoopback()
	}
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}
