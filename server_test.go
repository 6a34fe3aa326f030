package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"gatehouse/internal/testlog"
)

// gatehouse runs the real program, as `go run .` would, on a free port.
type gatehouse struct {
	t      *testing.T
	url    string
	out    *testlog.Buffer
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, env map[string]string, args ...string) *gatehouse {
	t.Helper()
	return start2(t, env, `msg="gatehouse listening" addr=(http://\S+)`, args...)
}

// start2 is start with the pattern that finds the address in the log.
func start2(t *testing.T, env map[string]string, listening string, args ...string) *gatehouse {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	g := &gatehouse{t: t, out: &testlog.Buffer{}, cancel: cancel, done: make(chan error, 1)}
	getenv := func(k string) string { return env[k] }
	go func() {
		g.done <- run(ctx, append([]string{"gatehouse"}, args...), getenv, strings.NewReader(""), g.out)
	}()
	addr := regexp.MustCompile(listening)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := addr.FindStringSubmatch(g.out.String()); m != nil {
			g.url = m[1]
			t.Cleanup(func() { g.stop() })
			return g
		}
		select {
		case err := <-g.done:
			t.Fatalf("run returned %v before listening; output:\n%s", err, g.out)
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	t.Fatalf("gatehouse did not start; output:\n%s", g.out)
	return nil
}

// stop sends the shutdown signal's equivalent and waits for run to return.
func (g *gatehouse) stop() {
	if g.cancel == nil {
		return
	}
	g.cancel()
	g.cancel = nil
	select {
	case err := <-g.done:
		if err != nil {
			g.t.Errorf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		g.t.Error("run did not return after shutdown")
	}
}

func (g *gatehouse) query(token, q string) map[string]any { return g.gql(token, q, nil) }

// gql sends query q with variables vars, with token as the bearer if any.
func (g *gatehouse) gql(token, q string, vars map[string]any) map[string]any {
	g.t.Helper()
	body, _ := json.Marshal(map[string]any{"query": q, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, g.url+"/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		g.t.Fatal(err)
	}
	return out
}

func testEnv(t *testing.T) map[string]string {
	return map[string]string{"PORT": "0", "HOST": "127.0.0.1", "DATA_DIR": t.TempDir(), "BCRYPT_COST": "4"}
}

// Users and sessions live in the embedded database's files and survive a
// restart of the server.
func TestRunPersistsAcrossRestart(t *testing.T) {
	env := testEnv(t)
	g := start(t, env)
	if !strings.Contains(g.out.String(), "embedded FerretDB") {
		t.Errorf("startup log does not say which database it uses:\n%s", g.out)
	}
	if !strings.Contains(g.out.String(), "session cache: on") {
		t.Errorf("startup log does not say the session cache is on:\n%s", g.out)
	}
	out := g.query("", `mutation { register(username: "rita", password: "correct horse") { token } }`)
	token, _ := out["data"].(map[string]any)["register"].(map[string]any)["token"].(string)
	if token == "" {
		t.Fatalf("register: %v", out)
	}
	g.stop()
	if !strings.Contains(g.out.String(), "stopped") {
		t.Errorf("no clean shutdown in the log:\n%s", g.out)
	}

	g = start(t, env)
	out = g.query(token, `{ me { username } }`)
	if got := out["data"].(map[string]any)["me"]; got == nil || got.(map[string]any)["username"] != "rita" {
		t.Errorf("me after restart: %v", out)
	}
	if strings.Contains(g.out.String(), token) {
		t.Error("the log contains a token")
	}
}

// Start-up runs the collector at GOGC=400, or 100 with the session cache
// on, unless GOGC says otherwise.
func TestStartTunesTheCollector(t *testing.T) {
	gcPercent := func() int {
		p := debug.SetGCPercent(100)
		debug.SetGCPercent(p)
		return p
	}
	before := gcPercent()
	t.Cleanup(func() { debug.SetGCPercent(before) })

	debug.SetGCPercent(50)
	start(t, testEnv(t)).stop()
	if got := gcPercent(); got != 100 {
		t.Errorf("GOGC unset, session cache on: GC percent = %d, want 100", got)
	}
	env := testEnv(t)
	env["SESSION_CACHE"] = "0"
	start(t, env).stop()
	if got := gcPercent(); got != 400 {
		t.Errorf("GOGC unset, session cache off: GC percent = %d, want 400", got)
	}

	env = testEnv(t)
	env["GOGC"] = "50"
	debug.SetGCPercent(50) // what the runtime would have read from GOGC
	start(t, env).stop()
	if got := gcPercent(); got != 50 {
		t.Errorf("GOGC=50: GC percent = %d, want it left at 50", got)
	}
}

func TestUserCommands(t *testing.T) {
	env := testEnv(t)
	env["ALLOW_SIGNUP"] = "false"
	var out testlog.Buffer
	cmd := func(stdin string, args ...string) error {
		return run(context.Background(), append([]string{"gatehouse"}, args...), func(k string) string { return env[k] }, strings.NewReader(stdin), &out)
	}
	if err := cmd("first password\n", "user", "add", "Root"); err != nil {
		t.Fatalf("user add: %v", err)
	}
	if err := cmd("again password\n", "user", "add", "root"); err == nil || !strings.Contains(err.Error(), "taken") {
		t.Errorf("second user add: got %v, want username taken", err)
	}
	if err := cmd("", "user", "add", "nopass"); err == nil {
		t.Error("user add with an empty password succeeded")
	}
	if err := cmd("x\n", "user", "passwd", "ghost"); err == nil {
		t.Error("user passwd of an unknown user succeeded")
	}

	g := start(t, env)
	r := g.query("", `mutation { register(username: "eve", password: "correct horse") { token } }`)
	if !strings.Contains(toJSON(r), "FORBIDDEN") {
		t.Errorf("register with ALLOW_SIGNUP=false: %v", r)
	}
	r = g.query("", `mutation { login(username: "root", password: "first password") { token } }`)
	token, _ := r["data"].(map[string]any)["login"].(map[string]any)["token"].(string)
	if token == "" {
		t.Fatalf("login as the added user: %v", r)
	}
	g.stop()

	if err := cmd("second password\n", "user", "passwd", "ROOT"); err != nil {
		t.Fatalf("user passwd: %v", err)
	}
	g = start(t, env)
	if r := g.query(token, `{ me { username } }`); !strings.Contains(toJSON(r), `"me":null`) {
		t.Errorf("a session survived the password reset: %v", r)
	}
	if r := g.query("", `mutation { login(username: "root", password: "second password") { token } }`); !strings.Contains(toJSON(r), "token") {
		t.Errorf("login with the new password: %v", r)
	}
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestMetricsAddress(t *testing.T) {
	status := func(url string) int {
		t.Helper()
		res, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	// By default nowhere: not on the API's port, where anyone could read
	// whether a session id they hold is still alive.
	env := testEnv(t)
	g := start(t, env)
	if got := status(g.url + "/metrics"); got != 404 {
		t.Errorf("default /metrics on the API address: %d, want 404", got)
	}
	if strings.Contains(g.out.String(), "metrics listening") {
		t.Errorf("metrics served by default:\n%s", g.out)
	}
	g.stop()

	env["METRICS_ADDR"] = freeAddr(t)
	g = start(t, env)
	if got := status("http://" + env["METRICS_ADDR"] + "/metrics"); got != 200 {
		t.Errorf("/metrics on METRICS_ADDR: %d, want 200", got)
	}
	if got := status(g.url + "/metrics"); got != 404 {
		t.Errorf("/metrics on the API address with METRICS_ADDR set: %d, want 404", got)
	}
	g.stop()

	env["METRICS_ADDR"] = "off"
	g = start(t, env)
	if got := status(g.url + "/metrics"); got != 404 {
		t.Errorf("/metrics with METRICS_ADDR=off: %d, want 404", got)
	}
}

func TestJSONLogs(t *testing.T) {
	env := testEnv(t)
	env["LOG_FORMAT"] = "json"
	g := start2(t, env, `"msg":"gatehouse listening","addr":"(http://[^"]+)"`)
	g.query("", `query Hello { me { id } }`)
	g.stop()
	if !strings.Contains(g.out.String(), `"msg":"request"`) || !strings.Contains(g.out.String(), `"operation":"Hello"`) {
		t.Errorf("no JSON access log line:\n%s", g.out)
	}
}

// -version answers from the build information, before any setting is
// read or anything is opened or created.
func TestVersion(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	var out bytes.Buffer
	getenv := func(k string) string {
		return map[string]string{"DATA_DIR": dir, "PORT": "not a port"}[k]
	}
	if err := run(context.Background(), []string{"gatehouse", "-version"}, getenv, strings.NewReader(""), &out); err != nil {
		t.Fatalf("-version: %v", err)
	}
	if got := out.String(); !strings.HasPrefix(got, "gatehouse ") || !strings.Contains(got, runtime.Version()) {
		t.Errorf("-version printed %q, want the module's version and %s", got, runtime.Version())
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("-version touched DATA_DIR: %v", err)
	}
}
