package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"gatehouse/auth"
)

// config is everything that can be set from the environment or flags.
type config struct {
	host, port     string
	mongoURI       string
	mongoDB        string
	dataDir        string
	sessionTTL     time.Duration
	sessionMaxAge  time.Duration
	bcryptCost     int
	allowSignup    bool
	cookieSecure   bool
	trustedProxies prefixList
	logLevel       slog.Level
	logFormat      string
	dbTimeout      time.Duration
	sweepInterval  time.Duration
	shutdown       time.Duration
	corsOrigins    listValue
	introspection  bool
	throttle       auth.ThrottleConfig
	maxSessions    int
	bcryptSlots    int
	bcryptWait     time.Duration
	metricsAddr    string
}

// parseConfig reads the environment, then the flags (which win). An invalid
// value is an error that names the variable or flag.
func parseConfig(name string, args []string, getenv func(string) string, usage io.Writer) (*config, []string, error) {
	c := &config{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(usage)
	vars := []struct {
		env, flag, def, help string
		value                flag.Value
	}{
		{"HOST", "host", "localhost", "address to listen on", (*stringValue)(&c.host)},
		{"PORT", "port", "8080", "port to listen on (0 picks a free one)", (*stringValue)(&c.port)},
		{"MONGODB_URI", "mongodb-uri", "", "MongoDB connection string; empty runs the embedded FerretDB", (*stringValue)(&c.mongoURI)},
		{"MONGODB_DATABASE", "mongodb-database", "gatehouse", "database name", (*stringValue)(&c.mongoDB)},
		{"DATA_DIR", "data-dir", "./data", "directory of the embedded database's files", (*stringValue)(&c.dataDir)},
		{"SESSION_TTL", "session-ttl", "1h", "idle timeout: a session unused this long expires", (*durationValue)(&c.sessionTTL)},
		{"SESSION_MAX_AGE", "session-max-age", "24h", "a session's longest life, however much it is used", (*durationValue)(&c.sessionMaxAge)},
		{"BCRYPT_COST", "bcrypt-cost", "12", "bcrypt cost of password hashes (4 to 31)", (*intValue)(&c.bcryptCost)},
		{"ALLOW_SIGNUP", "allow-signup", "true", "whether register is open to anyone", (*boolValue)(&c.allowSignup)},
		{"COOKIE_SECURE", "cookie-secure", "true", "mark the session cookie Secure (false for plain-http deployments other than localhost)", (*boolValue)(&c.cookieSecure)},
		{"TRUSTED_PROXIES", "trusted-proxies", "", "comma list of proxy addresses or CIDRs whose X-Forwarded-For is believed", &c.trustedProxies},
		{"LOG_LEVEL", "log-level", "info", "debug, info, warn or error", (*levelValue)(&c.logLevel)},
		{"LOG_FORMAT", "log-format", "text", "text or json", (*formatValue)(&c.logFormat)},
		{"DB_TIMEOUT", "db-timeout", "5s", "deadline of every database operation", (*durationValue)(&c.dbTimeout)},
		{"SWEEP_INTERVAL", "sweep-interval", "1m", "how often expired sessions are deleted", (*durationValue)(&c.sweepInterval)},
		{"SHUTDOWN_TIMEOUT", "shutdown-timeout", "10s", "how long in-flight requests may take to finish on shutdown", (*durationValue)(&c.shutdown)},
		{"CORS_ORIGINS", "cors-origins", "", "comma list of browser origins allowed to call the API with credentials; empty = same-origin only", &c.corsOrigins},
		{"INTROSPECTION", "introspection", "true", "whether schema introspection is on", (*boolValue)(&c.introspection)},
		{"THROTTLE_USER_LIMIT", "throttle-user-limit", "5", "failed logins for one username within the window before it is locked", (*intValue)(&c.throttle.UserLimit)},
		{"THROTTLE_IP_LIMIT", "throttle-ip-limit", "50", "failed logins from one client address (IPv6: /64) within the window before it is locked", (*intValue)(&c.throttle.IPLimit)},
		{"THROTTLE_REGISTER_LIMIT", "throttle-register-limit", "10", "registrations from one client address (IPv6: /64) within the window before it is locked", (*intValue)(&c.throttle.RegisterLimit)},
		{"THROTTLE_WINDOW", "throttle-window", "15m", "how long failed logins are remembered after the last one", (*durationValue)(&c.throttle.Window)},
		{"THROTTLE_BASE_DELAY", "throttle-base-delay", "30s", "first lock's length; each further lock doubles it", (*durationValue)(&c.throttle.BaseDelay)},
		{"THROTTLE_MAX_DELAY", "throttle-max-delay", "15m", "longest lock", (*durationValue)(&c.throttle.MaxDelay)},
		{"MAX_SESSIONS_PER_USER", "max-sessions-per-user", "100", "sessions one user may have; a login beyond it ends the user's oldest", (*intValue)(&c.maxSessions)},
		{"BCRYPT_SLOTS", "bcrypt-slots", "0", "bcrypt operations that may run at once; 0 = one per CPU", (*intValue)(&c.bcryptSlots)},
		{"METRICS_ADDR", "metrics-addr", "off", "where /metrics is served: off = nowhere, or HOST:PORT of its own (never the API's port)", (*addrValue)(&c.metricsAddr)},
		{"BCRYPT_WAIT", "bcrypt-wait", "5s", "how long a login may wait for a bcrypt slot before TOO_MANY_REQUESTS", (*durationValue)(&c.bcryptWait)},
	}
	for _, v := range vars {
		if err := v.value.Set(v.def); err != nil {
			panic(fmt.Sprintf("default of %s: %v", v.env, err)) // a bug, not input
		}
		if s := getenv(v.env); s != "" {
			if err := v.value.Set(s); err != nil {
				return nil, nil, fmt.Errorf("%s=%q: %w", v.env, s, err)
			}
		}
		fs.Var(v.value, v.flag, fmt.Sprintf("%s (env %s, default %q)", v.help, v.env, v.def))
	}
	fs.Bool("version", false, "print the version and exit (run answers it before reading any setting)")
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	if c.sessionMaxAge < c.sessionTTL {
		return nil, nil, errors.New("SESSION_MAX_AGE must not be shorter than SESSION_TTL")
	}
	if c.throttle.UserLimit < 1 || c.throttle.IPLimit < 1 || c.throttle.RegisterLimit < 1 {
		return nil, nil, errors.New("THROTTLE_USER_LIMIT, THROTTLE_IP_LIMIT and THROTTLE_REGISTER_LIMIT must be at least 1")
	}
	if c.maxSessions < 1 {
		return nil, nil, errors.New("MAX_SESSIONS_PER_USER must be at least 1")
	}
	if c.bcryptSlots < 0 {
		return nil, nil, errors.New("BCRYPT_SLOTS must not be negative")
	}
	if err := auth.ValidateCost(c.bcryptCost); err != nil {
		return nil, nil, fmt.Errorf("BCRYPT_COST: %w", err)
	}
	return c, fs.Args(), nil
}

type stringValue string

func (v *stringValue) Set(s string) error { *v = stringValue(s); return nil }
func (v *stringValue) String() string     { return string(*v) }

// addrValue is "off" or an address to listen on.
type addrValue string

func (v *addrValue) Set(s string) error {
	if _, _, err := net.SplitHostPort(s); err != nil && s != "off" {
		return errors.New("must be off or HOST:PORT")
	}
	*v = addrValue(s)
	return nil
}
func (v *addrValue) String() string { return string(*v) }

type durationValue time.Duration

func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("not a duration (like 30m or 1h)")
	}
	if d <= 0 {
		return errors.New("must be positive")
	}
	*v = durationValue(d)
	return nil
}
func (v *durationValue) String() string { return time.Duration(*v).String() }

type intValue int

func (v *intValue) Set(s string) error {
	i, err := strconv.Atoi(s)
	if err != nil {
		return errors.New("not a whole number")
	}
	*v = intValue(i)
	return nil
}
func (v *intValue) String() string { return strconv.Itoa(int(*v)) }

type boolValue bool

func (v *boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New("not true or false")
	}
	*v = boolValue(b)
	return nil
}
func (v *boolValue) String() string   { return strconv.FormatBool(bool(*v)) }
func (v *boolValue) IsBoolFlag() bool { return true }

type levelValue slog.Level

func (v *levelValue) Set(s string) error { return (*slog.Level)(v).UnmarshalText([]byte(s)) }
func (v *levelValue) String() string     { return slog.Level(*v).String() }

type formatValue string

func (v *formatValue) Set(s string) error {
	if s != "text" && s != "json" {
		return errors.New("must be text or json")
	}
	*v = formatValue(s)
	return nil
}
func (v *formatValue) String() string { return string(*v) }

// prefixList is a comma list of addresses or CIDR prefixes.
type prefixList []netip.Prefix

func (p *prefixList) Set(s string) error {
	*p = nil
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if pre, err := netip.ParsePrefix(f); err == nil {
			*p = append(*p, pre.Masked())
		} else if a, err := netip.ParseAddr(f); err == nil {
			*p = append(*p, netip.PrefixFrom(a, a.BitLen()))
		} else {
			return fmt.Errorf("%q is not an address or CIDR prefix", f)
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

// listValue is a comma list of words.
type listValue []string

func (l *listValue) Set(s string) error {
	*l = nil
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			*l = append(*l, f)
		}
	}
	return nil
}

func (l *listValue) String() string { return strings.Join(*l, ",") }
