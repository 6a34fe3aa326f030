package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"

	"gatehouse/internal/testlog"
)

// parse runs parseConfig on env and args as run does.
func parse(env map[string]string, args ...string) (*config, error) {
	cfg, _, err := parseConfig("gatehouse", args, func(k string) string { return env[k] }, &bytes.Buffer{})
	return cfg, err
}

// Every setting is checked, and a bad one is refused with a message that
// names its variable and its flag and says the expected form.
func TestBadSettingsSayWhatToFix(t *testing.T) {
	for _, tc := range []struct {
		key, value string
		want       []string // in the error, besides the variable and the flag
	}{
		{"PORT", "abc", []string{"a number from 0 to 65535"}},
		{"PORT", "70000", []string{"a number from 0 to 65535"}},
		{"PORT", "-1", []string{"a number from 0 to 65535"}},
		{"HOST", "localhost:8080", []string{"the port goes in PORT"}},
		{"HOST", "http://localhost", []string{"IP address or host name"}},
		{"HOST", "bad host", []string{"IP address or host name"}},
		{"MONGODB_URI", "localhost:27017", []string{"mongodb://", "mongodb+srv://"}},
		{"MONGODB_URI", "mongodb://alice:s3cret@db.example:99999/", []string{"port", `"mongodb://xxxxx@db.example:99999/xxxxx"`}},
		{"MONGODB_URI", "mongodb+srv://db.example:27017/", []string{"without a port"}},
		{"MONGODB_DATABASE", "my.db", []string{"letters, digits, _ or -"}},
		{"DATA_DIR", "a\x00b", []string{"path"}},
		{"SESSION_TTL", "soon", []string{"positive duration, like 30s, 15m or 1h"}},
		{"SESSION_TTL", "0s", []string{"positive duration"}},
		{"SESSION_MAX_AGE", "-1h", []string{"positive duration"}},
		{"DB_TIMEOUT", "0", []string{"positive duration"}},
		{"SWEEP_INTERVAL", "0s", []string{"positive duration"}},
		{"SHUTDOWN_TIMEOUT", "10", []string{"positive duration"}},
		{"THROTTLE_WINDOW", "0s", []string{"positive duration"}},
		{"BCRYPT_WAIT", "-5s", []string{"positive duration"}},
		{"BCRYPT_COST", "3", []string{"from 4 to 31"}},
		{"BCRYPT_COST", "32", []string{"from 4 to 31"}},
		{"BCRYPT_COST", "twelve", []string{"from 4 to 31"}},
		{"THROTTLE_USER_LIMIT", "0", []string{"1 or more"}},
		{"THROTTLE_IP_LIMIT", "-3", []string{"1 or more"}},
		{"THROTTLE_REGISTER_LIMIT", "ten", []string{"1 or more"}},
		{"MAX_SESSIONS_PER_USER", "0", []string{"1 or more"}},
		{"BCRYPT_SLOTS", "-1", []string{"0 or more"}},
		{"ALLOW_SIGNUP", "maybe", []string{"true or false"}},
		{"COOKIE_SECURE", "yes please", []string{"true or false"}},
		{"INTROSPECTION", "on", []string{"true or false"}},
		{"TOTP_KEY", "c2hvcnQ=", []string{"32 random bytes in base64", "openssl rand -base64 32"}},
		{"TOTP_ISSUER", "Example: Inc", []string{"no colon"}},
		{"SECOND_FACTOR_TIMEOUT", "0s", []string{"positive duration"}},
		{"WEBAUTHN_RP_ID", "https://example.com", []string{"want a host name"}},
		{"WEBAUTHN_RP_ID", "example.com:443", []string{"no scheme, port or path"}},
		{"WEBAUTHN_ORIGINS", "example.com", []string{"write https://example.com"}},
		{"PASSKEY_REAUTH", "never", []string{"positive duration"}},
		{"TRUSTED_PROXIES", "10.0.0.0/33", []string{"CIDR prefix"}},
		{"TRUSTED_PROXIES", "10.0.0.1, proxy.example", []string{`"proxy.example"`}},
		{"TRUSTED_PROXIES", "127.0.0.1/0", []string{"beyond its /0 prefix", "did you mean 127.0.0.1 (that address alone) or 0.0.0.0/0"}},
		{"TRUSTED_PROXIES", "10.0.0.1,10.1.2.3/8", []string{`"10.1.2.3/8"`, "10.1.2.3 (that address alone) or 10.0.0.0/8"}},
		{"TRUSTED_PROXIES", "fd00::1/0", []string{"fd00::1 (that address alone) or ::/0"}},
		{"LOG_LEVEL", "loud", []string{"debug, info, warn or error"}},
		{"LOG_LEVEL", "info+2", []string{"debug, info, warn or error"}},
		{"LOG_FORMAT", "yaml", []string{"text or json"}},
		{"METRICS_ADDR", "9464", []string{"off or HOST:PORT, like 127.0.0.1:9464 (this machine only)"}},
		{"DB_WAL_LIMIT", "lots", []string{"size like 64MiB"}},
		{"DB_WAL_LIMIT", "512KiB", []string{"1048576 or more"}},
		{"DB_MIN_FREE", "-1", []string{"size like 64MiB"}},
		{"SESSION_CACHE", "1", []string{"0 (off) or a size like 8MiB, 1MiB or more"}},
		{"SESSION_CACHE", "lots", []string{"0 (off) or a size like 8MiB"}},
		{"METRICS_ADDR", "127.0.0.1:99999", []string{"0 to 65535"}},
		{"METRICS_ADDR", "bad host:9464", []string{"host name"}},
		{"CORS_ORIGINS", "localhost:5173", []string{"no scheme", "write http://localhost:5173"}},
		{"CORS_ORIGINS", "app.example.com", []string{"write https://app.example.com"}},
		{"CORS_ORIGINS", "https:app.example.com", []string{"no scheme", "write https://app.example.com ("}},
		{"CORS_ORIGINS", "HTTP:/localhost:5173", []string{"write http://localhost:5173 ("}},
		{"CORS_ORIGINS", "https://-a.com", []string{`"-a.com" is not a host name`}},
		{"CORS_ORIGINS", "https://app_example.com", []string{`"app_example.com" is not a host name`}},
		{"CORS_ORIGINS", "https://1.1", []string{`"1.1" is not a host name`, "nor an IP address"}},
		{"CORS_ORIGINS", "https://app.example.123", []string{"not a host name"}},
		{"CORS_ORIGINS", "https://app.example.com.", []string{"ends with a dot", "write https://app.example.com ("}},
		{"CORS_ORIGINS", "https://app.example.com.:8443", []string{"write https://app.example.com:8443 ("}},
		{"CORS_ORIGINS", "*", []string{"wildcards are refused", "credentials"}},
		{"CORS_ORIGINS", "https://*.example.com", []string{"wildcards are refused"}},
		{"CORS_ORIGINS", "http://localhost:5173/app", []string{"no path", "write http://localhost:5173"}},
		{"CORS_ORIGINS", "http://localhost:5173//", []string{"no path"}},
		{"CORS_ORIGINS", "http://localhost:5173/?x=1", []string{"query"}},
		{"CORS_ORIGINS", "http://localhost:5173/#top", []string{"fragment"}},
		{"CORS_ORIGINS", "http://me@localhost:5173", []string{"no user"}},
		{"CORS_ORIGINS", "ftp://files.example", []string{"http or https"}},
		{"CORS_ORIGINS", "http://:5173", []string{"no host"}},
		{"CORS_ORIGINS", "http://localhost:0", []string{"1 to 65535"}},
		{"CORS_ORIGINS", "https://bücher.example", []string{"punycode"}},
	} {
		_, err := parse(map[string]string{tc.key: tc.value})
		var usage *usageError
		if !errors.As(err, &usage) {
			t.Errorf("%s=%q: got %v, want a *usageError", tc.key, tc.value, err)
			continue
		}
		flagName := "-" + strings.ReplaceAll(strings.ToLower(tc.key), "_", "-")
		for _, want := range append(tc.want, tc.key, "flag "+flagName) {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s=%q: error %q does not say %q", tc.key, tc.value, err, want)
			}
		}
		if strings.Contains(err.Error(), "s3cret") || tc.key == "TOTP_KEY" && strings.Contains(err.Error(), tc.value) {
			t.Errorf("%s=%q: error shows the secret: %v", tc.key, tc.value, err)
		}
		// The same value from the flag: the message leads with the flag.
		_, err = parse(nil, flagName+"="+tc.value)
		if err == nil || !strings.HasPrefix(err.Error(), flagName+"=") || !strings.Contains(err.Error(), "("+tc.key+")") {
			t.Errorf("%s=%q: error %v, want one that starts with %s= and names %s", flagName, tc.value, err, flagName, tc.key)
		}
	}
}

// An empty flag is a value (an empty variable is unset): where it means
// nothing, it is refused.
func TestEmptyFlags(t *testing.T) {
	for _, arg := range []string{"-host=", "-port=", "-data-dir=", "-mongodb-database=", "-session-ttl=", "-metrics-addr="} {
		if _, err := parse(nil, arg); err == nil || !strings.HasPrefix(err.Error(), arg+`""`) {
			t.Errorf("%s: %v, want an error about it", arg, err)
		}
	}
	if cfg, err := parse(map[string]string{"CORS_ORIGINS": "http://localhost:5173"}, "-cors-origins="); err != nil || len(cfg.corsOrigins) != 0 {
		t.Errorf("-cors-origins= over CORS_ORIGINS: %v, %v; want no origins", err, cfg)
	}
}

// Settings that are each valid but wrong together are refused, and every
// mistake is reported at once.
func TestSettingsThatContradictEachOther(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want []string
	}{
		{map[string]string{"SESSION_TTL": "2h", "SESSION_MAX_AGE": "1h"}, []string{"SESSION_MAX_AGE (1h0m0s) is shorter than SESSION_TTL (2h0m0s)"}},
		{map[string]string{"THROTTLE_BASE_DELAY": "1m", "THROTTLE_MAX_DELAY": "30s"}, []string{"THROTTLE_MAX_DELAY (30s) is shorter than THROTTLE_BASE_DELAY (1m0s)"}},
		{map[string]string{"METRICS_ADDR": "127.0.0.1:8080"}, []string{"METRICS_ADDR (127.0.0.1:8080) is on the API's PORT 8080"}},
		{map[string]string{"PORT": "9000", "METRICS_ADDR": ":9000"}, []string{"on the API's PORT 9000"}},
		{map[string]string{"PORT": "abc", "LOG_LEVEL": "loud", "CORS_ORIGINS": "localhost:5173"}, []string{"PORT=", "LOG_LEVEL=", "CORS_ORIGINS="}},
		{map[string]string{"MONGODB_URI": "mongodb://db.example/"}, []string{"TOTP_KEY is required with MONGODB_URI", "openssl rand -base64 32"}},
		{map[string]string{"WEBAUTHN_RP_ID": "example.com"}, []string{"WEBAUTHN_ORIGINS is required with WEBAUTHN_RP_ID=example.com", "like https://example.com"}},
		{map[string]string{"WEBAUTHN_RP_ID": "co.uk", "WEBAUTHN_ORIGINS": "https://shop.co.uk"}, []string{"WEBAUTHN_RP_ID=co.uk is a public suffix"}},
		{map[string]string{"WEBAUTHN_RP_ID": "127.0.0.1", "WEBAUTHN_ORIGINS": "https://127.0.0.1"}, []string{"is an IP address"}},
		{map[string]string{"WEBAUTHN_RP_ID": "example.com", "WEBAUTHN_ORIGINS": "http://example.com"}, []string{"http://example.com is plain http"}},
		{map[string]string{"WEBAUTHN_RP_ID": "example.com", "WEBAUTHN_ORIGINS": "https://app.example.com,https://evil.com"},
			[]string{"https://evil.com is not on WEBAUTHN_RP_ID example.com"}},
	} {
		_, err := parse(tc.env)
		for _, want := range tc.want {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%v: error %v, want one that says %q", tc.env, err, want)
			}
		}
	}
	if _, err := parse(map[string]string{"WEBAUTHN_RP_ID": "Example.COM", "WEBAUTHN_ORIGINS": "https://app.example.com,https://example.com"}); err != nil {
		t.Errorf("an RP ID and origins on it: %v", err)
	}
	// Port 0 picks a free port for each: no clash.
	if _, err := parse(map[string]string{"PORT": "0", "METRICS_ADDR": "127.0.0.1:0"}); err != nil {
		t.Errorf("PORT=0 METRICS_ADDR=127.0.0.1:0: %v", err)
	}
}

// Good values are kept in their normal form: origins as browsers send them.
func TestSettingsAreNormalised(t *testing.T) {
	cfg, err := parse(map[string]string{
		"CORS_ORIGINS":    " HTTP://LocalHost:5173/ , https://App.Example.com:443, http://[::1]:80/,https://app.example.com:8443,http://127.0.0.1:5173,https://xn--bcher-kva.example",
		"PORT":            "0080",
		"LOG_LEVEL":       "WARN",
		"METRICS_ADDR":    ":09464",
		"TRUSTED_PROXIES": "10.0.0.1, 10.0.0.0/8,fd00::/8,0.0.0.0/0,::/0",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"http://localhost:5173", "https://app.example.com", "http://[::1]", "https://app.example.com:8443", "http://127.0.0.1:5173", "https://xn--bcher-kva.example"}
	if got := []string(cfg.corsOrigins); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("CORS_ORIGINS: got %q, want %q", got, want)
	}
	if got, want := cfg.trustedProxies.String(), "10.0.0.1/32,10.0.0.0/8,fd00::/8,0.0.0.0/0,::/0"; got != want {
		t.Errorf("TRUSTED_PROXIES: got %q, want %q", got, want)
	}
	if cfg.port != "80" || cfg.metricsAddr != ":9464" || cfg.logLevel.String() != "WARN" {
		t.Errorf("PORT %q, METRICS_ADDR %q, LOG_LEVEL %v; want 80, :9464, WARN", cfg.port, cfg.metricsAddr, cfg.logLevel)
	}
	// Every default passes its own check.
	if _, err := parse(nil); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

// The start-up log has one line with every setting's effective value, the
// MONGODB_URI password redacted; it is written before the database is
// opened, so it is there even when that fails.
func TestEffectiveConfigurationIsLogged(t *testing.T) {
	env := testEnv(t)
	env["LOG_FORMAT"] = "json"
	env["DB_TIMEOUT"] = "1s"
	env["MONGODB_URI"] = "mongodb://alice:s3cret@127.0.0.1:1/?authSource=admin" // nothing listens on port 1
	env["TOTP_KEY"] = testTOTPKey
	env["CORS_ORIGINS"] = "http://localhost:5173/"
	var out testlog.Buffer
	err := run(context.Background(), []string{"gatehouse"}, func(k string) string { return env[k] }, strings.NewReader(""), &out)
	if err == nil {
		t.Fatal("run connected to a MongoDB on port 1")
	}
	if strings.Contains(out.String()+err.Error(), "s3cret") || strings.Contains(out.String()+err.Error(), testTOTPKey) {
		t.Errorf("the password or the TOTP key is in the log or the error:\n%s\n%v", out.String(), err)
	}
	var line map[string]any
	for l := range strings.SplitSeq(out.String(), "\n") {
		if strings.Contains(l, `"msg":"configuration"`) {
			if line != nil {
				t.Errorf("a second configuration line: %s", l)
			}
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatalf("%v: %s", err, l)
			}
		}
	}
	if line == nil {
		t.Fatalf("no configuration line in the log:\n%s", out.String())
	}
	for _, s := range (&config{}).settings() {
		if _, ok := line[s.env]; !ok {
			t.Errorf("the configuration line has no %s: %v", s.env, line)
		}
	}
	for k, want := range map[string]string{
		"MONGODB_URI":  "mongodb://alice:xxxxx@127.0.0.1:1/?authSource=admin",
		"CORS_ORIGINS": "http://localhost:5173",
		"PORT":         "0",
		"SESSION_TTL":  "1h0m0s",
		"LOG_LEVEL":    "info",
		"TOTP_KEY":     "(set)",
	} {
		if line[k] != want {
			t.Errorf("configuration %s=%v, want %q", k, line[k], want)
		}
	}
}

// No secret of MONGODB_URI reaches the start-up log or the error, whether
// the driver accepts the string (options separated by ; as well as &) or
// refuses it (a password with an unescaped @; a refused option).
func TestURISecretsStayOutOfLogAndErrors(t *testing.T) {
	for _, tc := range []struct{ uri, secret string }{
		{"mongodb://127.0.0.1:1/?tls=true;tlsCertificateKeyFilePassword=SECRET12", "SECRET12"},
		{"mongodb://AKIA:pw@127.0.0.1:1/?x=1;authMechanism=MONGODB-AWS;authMechanismProperties=AWS_SESSION_TOKEN:TOKEN", "TOKEN"},
		{"mongodb://AKIA:pw@127.0.0.1:1/?x=1;authMechanism=MONGODB-AWS;authMechanismProperties=AWS_SESSION_TOKEN:TOKEN", "AKIA:pw"},
		{"mongodb://127.0.0.1:1/?tls=true;tlsCertificateKeyFilePassword=SECRET12;journal=maybe", "SECRET12"},
		{"mongodb://u:p@SECRETTAIL@127.0.0.1:1/", "SECRETTAIL"},
	} {
		env := testEnv(t)
		env["DB_TIMEOUT"] = "1s"
		env["MONGODB_URI"], env["TOTP_KEY"] = tc.uri, testTOTPKey
		var out testlog.Buffer
		err := run(context.Background(), []string{"gatehouse"}, func(k string) string { return env[k] }, strings.NewReader(""), &out)
		if err == nil {
			t.Fatalf("%s: run connected to a MongoDB on port 1", tc.uri)
		}
		if strings.Contains(out.String()+err.Error(), tc.secret) {
			t.Errorf("%s: %s is in the log or the error:\n%s\n%v", tc.uri, tc.secret, out.String(), err)
		}
	}
}

// An origin written with a trailing slash and capitals is the browser's
// origin: its preflight is answered.
func TestNormalisedOriginGetsPreflight(t *testing.T) {
	env := testEnv(t)
	env["CORS_ORIGINS"] = "HTTP://LocalHost:5173/"
	g := start(t, env)
	if !strings.Contains(g.out.String(), "CORS_ORIGINS=http://localhost:5173 ") {
		t.Errorf("the configuration line does not show the normalised origin:\n%s", g.out)
	}
	req, _ := http.NewRequest(http.MethodOptions, g.url+"/query", nil)
	req.Header.Set("Origin", "http://localhost:5173")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got := res.Header.Get("Access-Control-Allow-Origin"); got != "http://localhost:5173" {
		t.Errorf("preflight from http://localhost:5173: Access-Control-Allow-Origin %q, want the origin", got)
	}
}

// -h says what gatehouse is, lists every command, and each setting once
// with its default; `user -h` and `db -h` list theirs.
func TestHelp(t *testing.T) {
	help := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		err := run(context.Background(), append([]string{"gatehouse"}, args...), func(string) string { return "" }, strings.NewReader(""), &out)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return out.String()
	}
	out := help("-h")
	if !strings.HasPrefix(out, "gatehouse is a GraphQL login and session server.\n") {
		t.Errorf("-h does not start with a description:\n%s", out)
	}
	for _, cmd := range []string{"\n  gatehouse  ", "\n  gatehouse user add NAME", "\n  gatehouse user passwd NAME", "\n  gatehouse db ", "\n  gatehouse backup [-force] FILE", "\n  gatehouse restore [-force] FILE", "\n  gatehouse -version"} {
		if !strings.Contains(out, cmd) {
			t.Errorf("-h does not list %q:\n%s", strings.TrimSpace(cmd), out)
		}
	}
	settings := (&config{}).settings()
	for _, s := range settings {
		def := s.def
		if def == "" {
			def = "empty"
		}
		if n := strings.Count(out, "\n  "+s.env+", -"+s.flag+" (default "+def+")\n"); n != 1 {
			t.Errorf("-h lists %s with its default %d times, want once", s.env, n)
		}
	}
	// Examples bind this machine only: :9464 would be every interface.
	if !strings.Contains(out, "like 127.0.0.1:9464") || strings.Contains(out, " :9464") {
		t.Errorf("-h's METRICS_ADDR example is not 127.0.0.1:9464 alone:\n%s", out)
	}
	if n := strings.Count(out, "default"); n != len(settings) {
		t.Errorf("-h says default %d times for %d settings:\n%s", n, len(settings), out)
	}

	out = help("user", "-h")
	if !strings.Contains(out, "gatehouse user add NAME") || !strings.Contains(out, "gatehouse user passwd NAME") || strings.Contains(out, "gatehouse db") {
		t.Errorf("user -h:\n%s", out)
	}
	out = help("db", "-h")
	if !strings.Contains(out, "gatehouse db [") || !strings.Contains(out, "-tls-client-ca") || strings.Contains(out, "gatehouse user") {
		t.Errorf("db -h:\n%s", out)
	}
}

// A command line or a setting gatehouse cannot run with exits 2 with a
// message on stderr, having created, opened and bound nothing: the
// directory it runs in (whose ./data is the default DATA_DIR) stays
// empty. -h exits 0 and touches nothing either.
func TestMistakesTouchNothing(t *testing.T) {
	bin := binary(t)
	for _, tc := range []struct {
		env    map[string]string
		args   []string
		status int
		stderr []string
	}{
		{map[string]string{"PORT": "abc"}, nil, 2, []string{`PORT="abc" (flag -port): want a port: a number from 0 to 65535`}},
		{map[string]string{"PORT": "70000"}, nil, 2, []string{"PORT=", "0 to 65535"}},
		{nil, []string{"-port", "-1"}, 2, []string{`-port="-1" (PORT)`, "0 to 65535"}},
		{map[string]string{"CORS_ORIGINS": "localhost:5173"}, nil, 2, []string{"CORS_ORIGINS=", "write http://localhost:5173"}},
		{map[string]string{"SESSION_MAX_AGE": "30m"}, []string{"user", "add", "alice"}, 2, []string{"SESSION_MAX_AGE (30m0s) is shorter than SESSION_TTL (1h0m0s)"}},
		{nil, []string{"foo"}, 2, []string{`unknown command "foo"`, "usage:", "gatehouse user add NAME", "gatehouse db"}},
		{nil, []string{"user", "nonsense"}, 2, []string{"not a command: gatehouse user nonsense", "gatehouse user passwd NAME"}},
		{nil, []string{"user", "add"}, 2, []string{"not a command: gatehouse user add", "gatehouse user add NAME"}},
		{nil, []string{"user"}, 2, []string{"gatehouse user add NAME"}},
		{nil, []string{"user", "add", "alice"}, 1, []string{"read password: empty"}}, // stdin is empty
		{nil, []string{"db", "extra"}, 2, []string{`db: unexpected "extra"`, "-tls-client-ca"}},
		{nil, []string{"db", "-addr", "127.0.0.1:0"}, 2, []string{"needs mutual TLS"}},
		{nil, []string{"-nope"}, 2, []string{"-nope", "usage:"}},
		{nil, []string{"-h"}, 0, nil},
		{nil, []string{"user", "-h"}, 0, nil},
		{nil, []string{"db", "-h"}, 0, nil},
	} {
		dir := t.TempDir()
		cmd := exec.Command(bin, tc.args...)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
		for k, v := range tc.env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if status := 0; err == nil || errors.As(err, &exit) {
			if exit != nil {
				status = exit.ExitCode()
			}
			if status != tc.status {
				t.Errorf("%v %v: exit status %d, want %d; stderr:\n%s", tc.env, tc.args, status, tc.status, &stderr)
			}
		} else {
			t.Fatal(err)
		}
		for _, want := range tc.stderr {
			if !strings.Contains(stderr.String(), want) {
				t.Errorf("%v %v: stderr does not say %q:\n%s", tc.env, tc.args, want, &stderr)
			}
		}
		if tc.status != 0 && stdout.Len() > 0 {
			t.Errorf("%v %v: wrote to stdout:\n%s", tc.env, tc.args, &stdout)
		}
		if tc.status == 0 && (stdout.Len() == 0 || stderr.Len() > 0) {
			t.Errorf("%v %v: stdout %q, stderr %q; want the help on stdout alone", tc.env, tc.args, &stdout, &stderr)
		}
		if entries, err := os.ReadDir(dir); err != nil || len(entries) > 0 {
			t.Errorf("%v %v: the directory holds %v (%v), want nothing", tc.env, tc.args, entries, err)
		}
	}
}

// run answers a help request with flag.ErrHelp turned into success, and a
// mistake with a *usageError, before it reads anything else.
func TestCheckCommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want error // nil, flag.ErrHelp, or a *usageError
	}{
		{[]string{"user", "add", "alice"}, nil},
		{[]string{"user", "passwd", "alice"}, nil},
		{[]string{"db"}, nil},
		{[]string{"user", "add", "alice", "-h"}, flag.ErrHelp},
		{[]string{"user", "--help"}, flag.ErrHelp},
		{[]string{"user", "add", "alice", "bob"}, &usageError{}},
		{[]string{"help"}, &usageError{}},
		{[]string{"backup", "b.sqlite"}, nil},
		{[]string{"restore", "-force", "b.sqlite"}, nil},
		{[]string{"backup"}, &usageError{}},
		{[]string{"restore", "a.sqlite", "b.sqlite"}, &usageError{}},
		{[]string{"backup", "-overwrite", "b.sqlite"}, &usageError{}},
		{[]string{"restore", "-h"}, flag.ErrHelp},
	} {
		err := checkCommand(tc.args, &bytes.Buffer{})
		var usage *usageError
		switch want := tc.want.(type) {
		case nil:
			if err != nil {
				t.Errorf("%v: %v, want nil", tc.args, err)
			}
		case *usageError:
			if !errors.As(err, &usage) {
				t.Errorf("%v: %v, want a *usageError", tc.args, err)
			}
		default:
			if !errors.Is(err, want) {
				t.Errorf("%v: %v, want %v", tc.args, err, want)
			}
		}
	}
}
