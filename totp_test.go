package main

import (
	"bytes"
	"context"
	"encoding/base32"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"gatehouse/internal/testlog"
)

// testTOTPKey is a TOTP_KEY for tests that set MONGODB_URI, which needs one.
const testTOTPKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

// Second-factor secrets are sealed at rest: neither a secret nor a
// recovery code is anywhere in DATA_DIR's database files; the key that
// seals them is in an owner-only file of its own, and survives restarts.
func TestTOTPSecretsAreSealedAtRest(t *testing.T) {
	env := testEnv(t)
	g := start(t, env)
	token := dig(g.query("", `mutation { register(username: "sealed", password: "correct horse") { token } }`), "register", "token")
	secret := dig(g.query(token, `mutation { beginTotpEnrollment(password: "correct horse") { secret } }`), "beginTotpEnrollment", "secret")
	code, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	r := g.query(token, `mutation { confirmTotpEnrollment(code: "`+code+`") }`)
	codes, _ := r["data"].(map[string]any)["confirmTotpEnrollment"].([]any)
	if len(codes) != 10 {
		t.Fatalf("confirmTotpEnrollment: %v", r)
	}
	g.stop()

	keyFile := filepath.Join(env["DATA_DIR"], totpKeyFile)
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v, want an owner-only file", keyFile, err)
	}
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string][]byte{"secret (base32)": []byte(secret), "secret (bytes)": raw}
	for _, c := range codes {
		secrets["recovery code "+c.(string)] = []byte(c.(string))
		secrets["recovery code "+c.(string)+" (no dashes)"] = []byte(strings.ReplaceAll(c.(string), "-", ""))
	}
	var files []string
	sealed := false // the sealed secret is there: the files read are the right ones
	err = filepath.WalkDir(env["DATA_DIR"], func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || p == keyFile || d.Type()&fs.ModeSocket != 0 {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files = append(files, filepath.Base(p))
		sealed = sealed || bytes.Contains(b, []byte("totpSecret"))
		for what, s := range secrets {
			if bytes.Contains(b, s) {
				t.Errorf("%s is in %s", what, p)
			}
		}
		return nil
	})
	if err != nil || !sealed {
		t.Fatalf("read %v (%v): no sealed secret found in any", files, err)
	}

	// After a restart the same key opens the secret and checks the codes.
	g = start(t, env)
	if strings.Contains(g.out.String(), "made a new one") {
		t.Errorf("the restart made a new TOTP key:\n%s", g.out)
	}
	token = dig(g.query("", `mutation { login(username: "sealed", password: "correct horse") { token } }`), "login", "token")
	token = dig(g.query(token, `mutation { verifySecondFactor(code: "`+codes[0].(string)+`") { token } }`), "verifySecondFactor", "token")
	next, _ := totp.GenerateCode(secret, time.Now().Add(30*time.Second)) // later than the confirmation's step
	r = g.query(token, `mutation { regenerateRecoveryCodes(password: "correct horse", code: "`+next+`") }`)
	if fresh, _ := r["data"].(map[string]any)["regenerateRecoveryCodes"].([]any); len(fresh) != 10 {
		t.Fatalf("a TOTP code after the restart: %v", r)
	}
}

// `gatehouse user totp reset NAME` removes a user's second factor and ends
// its sessions, through the running server or with the server stopped.
func TestUserTOTPReset(t *testing.T) {
	env := testEnv(t)
	var out testlog.Buffer
	cmd := func(args ...string) error {
		return run(context.Background(), append([]string{"gatehouse"}, args...), func(k string) string { return env[k] }, strings.NewReader(""), &out)
	}
	enable := func(g *gatehouse, name string) (token string) {
		token = dig(g.query("", `mutation { register(username: "`+name+`", password: "correct horse") { token } }`), "register", "token")
		secret := dig(g.query(token, `mutation { beginTotpEnrollment(password: "correct horse") { secret } }`), "beginTotpEnrollment", "secret")
		code, _ := totp.GenerateCode(secret, time.Now())
		if r := g.query(token, `mutation { confirmTotpEnrollment(code: "`+code+`") }`); r["errors"] != nil {
			t.Fatalf("confirm: %v", r)
		}
		return token
	}
	pending := func(g *gatehouse, name string) bool {
		r := g.query("", `mutation { login(username: "`+name+`", password: "correct horse") { secondFactorRequired } }`)
		return toJSON(r) == `{"data":{"login":{"secondFactorRequired":true}}}`
	}

	g := start(t, env)
	token := enable(g, "lostphone")
	if !pending(g, "lostphone") {
		t.Fatal("login of a TOTP user is not pending")
	}
	if err := cmd("user", "totp", "reset", "LostPhone"); err != nil {
		t.Fatalf("user totp reset through the server: %v", err)
	}
	if !strings.Contains(out.String(), `second factor of "LostPhone" removed; all of its sessions ended`) {
		t.Errorf("output:\n%s", &out)
	}
	if r := g.query(token, `{ me { username } }`); toJSON(r) != `{"data":{"me":null}}` {
		t.Errorf("a session survived the reset: %v", r)
	}
	if pending(g, "lostphone") {
		t.Error("login still pending after the reset")
	}
	enable(g, "second")
	g.stop()

	if err := cmd("user", "totp", "reset", "second"); err != nil {
		t.Fatalf("user totp reset with the server stopped: %v", err)
	}
	if err := cmd("user", "totp", "reset", "second"); err != nil || !strings.Contains(out.String(), `"second" had no second factor`) {
		t.Errorf("a second reset: %v\n%s", err, &out)
	}
	if err := cmd("user", "totp", "reset", "ghost"); err == nil || !strings.Contains(err.Error(), `no user "ghost"`) {
		t.Errorf("reset of an unknown user: %v", err)
	}
	g = start(t, env)
	if pending(g, "second") {
		t.Error("login still pending after the reset with the server stopped")
	}
}

// dig returns data.field.sub of a GraphQL response, failing if absent.
func dig(r map[string]any, field, sub string) string {
	data, _ := r["data"].(map[string]any)
	f, _ := data[field].(map[string]any)
	v, _ := f[sub].(string)
	if v == "" {
		panic("no " + field + "." + sub + " in " + toJSON(r))
	}
	return v
}

// A database whose second factors were sealed with another key is refused
// at start, naming the way out, rather than locking its users out; `user
// totp reset-all` is that way out when the key is lost for good.
func TestLostTOTPKeyIsRefusedAtStart(t *testing.T) {
	env := testEnv(t)
	g := start(t, env)
	token := dig(g.query("", `mutation { register(username: "keyless", password: "correct horse") { token } }`), "register", "token")
	secret := dig(g.query(token, `mutation { beginTotpEnrollment(password: "correct horse") { secret } }`), "beginTotpEnrollment", "secret")
	code, _ := totp.GenerateCode(secret, time.Now())
	if r := g.query(token, `mutation { confirmTotpEnrollment(code: "`+code+`") }`); r["errors"] != nil {
		t.Fatalf("confirm: %v", r)
	}
	g.stop()

	var out testlog.Buffer
	getenv := func(k string) string { return env[k] }
	runServer := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return run(ctx, []string{"gatehouse"}, getenv, strings.NewReader(""), &out)
	}
	// The key file lost (a restore without it): a new one is made, and refused.
	if err := os.Remove(filepath.Join(env["DATA_DIR"], totpKeyFile)); err != nil {
		t.Fatal(err)
	}
	if err := runServer(); err == nil || !strings.Contains(err.Error(), "sealed with another key") ||
		!strings.Contains(err.Error(), "gatehouse user totp reset-all") {
		t.Fatalf("start with another key: %v", err)
	}
	if _, err := os.Stat(filepath.Join(env["DATA_DIR"], totpKeyFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the refused start left the key it made: %v", err)
	}
	// So is another TOTP_KEY.
	env["TOTP_KEY"] = testTOTPKey
	if err := runServer(); err == nil || !strings.Contains(err.Error(), "sealed with another key") {
		t.Fatalf("start with another TOTP_KEY: %v", err)
	}
	delete(env, "TOTP_KEY")
	err := run(context.Background(), []string{"gatehouse", "user", "totp", "reset-all"}, getenv, strings.NewReader(""), &out)
	if err != nil || !strings.Contains(out.String(), "second factors of 1 users removed") {
		t.Fatalf("user totp reset-all: %v\n%s", err, &out)
	}
	g = start(t, env)
	if r := g.query("", `mutation { login(username: "keyless", password: "correct horse") { secondFactorRequired } }`); toJSON(r) != `{"data":{"login":{"secondFactorRequired":false}}}` {
		t.Errorf("login after reset-all: %v", r)
	}
	g.stop()
	// With the database's own key, nothing is lost: reset-all refuses.
	err = run(context.Background(), []string{"gatehouse", "user", "totp", "reset-all"}, getenv, strings.NewReader(""), &out)
	if err == nil || !strings.Contains(err.Error(), "is the database's already") {
		t.Errorf("reset-all with the database's key: %v", err)
	}
}
