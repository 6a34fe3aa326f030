package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"gatehouse/internal/testlog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if build.dir != "" {
		_ = os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

// build is the gatehouse binary the tests run as child processes, built
// once per test binary (with the race detector when the tests have it, so
// the build reuses the test build's cache and races in the child count).
var build struct {
	once sync.Once
	dir  string
	path string
	err  error
	out  []byte
}

// binary returns the path of a freshly built gatehouse binary.
func binary(t *testing.T) string {
	t.Helper()
	build.once.Do(func() {
		build.dir, build.err = os.MkdirTemp("", "gatehouse-bin-")
		if build.err != nil {
			return
		}
		build.path = filepath.Join(build.dir, "gatehouse")
		args := []string{"build", "-o", build.path}
		if raceEnabled {
			args = append(args, "-race")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		build.out, build.err = exec.CommandContext(ctx, "go", append(args, ".")...).CombinedOutput()
	})
	if build.err != nil {
		t.Fatalf("go build: %v\n%s", build.err, build.out)
	}
	return build.path
}

// proc is gatehouse running as a child process, so that tests can signal
// and kill it.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	out    *testlog.Buffer
	url    string // the API's base URL, or the database's mongodb:// URI
	exited chan struct{}
	state  *os.ProcessState
}

var (
	serverListening = regexp.MustCompile(`msg="gatehouse listening" addr=(http://\S+)`)
	dbListening     = regexp.MustCompile(`msg="embedded database listening" uri=(mongodb://\S+)`)
)

// startProc runs the gatehouse binary with exactly env (nothing of the test's
// own environment but PATH and HOME) and args, and waits until it listens.
// The test's cleanup kills it if it still runs.
func startProc(t *testing.T, env map[string]string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &proc{t: t, cmd: cmd, out: &testlog.Buffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = cmd.Wait()
		p.state = cmd.ProcessState
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill()
			<-p.exited
		}
		if strings.Contains(p.out.String(), "DATA RACE") {
			t.Errorf("the child process reported a data race:\n%s", p.out)
		}
	})

	listening := serverListening
	if len(args) > 0 && args[0] == "db" {
		listening = dbListening
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if m := listening.FindStringSubmatch(p.out.String()); m != nil {
			p.url = m[1]
			return p
		}
		select {
		case <-p.exited:
			t.Fatalf("gatehouse %v exited (%v) before listening; output:\n%s", args, p.state, p.out)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("gatehouse %v did not start listening; output:\n%s", args, p.out)
	return nil
}

// signal sends sig to the process.
func (p *proc) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
}

// wait waits up to timeout for the process to exit and returns its state.
func (p *proc) wait(timeout time.Duration) *os.ProcessState {
	p.t.Helper()
	select {
	case <-p.exited:
		return p.state
	case <-time.After(timeout):
		p.t.Fatalf("gatehouse did not exit within %v; output:\n%s", timeout, p.out)
		return nil
	}
}

// gqlResult is a decoded GraphQL response.
type gqlResult struct {
	Status int
	Data   map[string]any
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	}
}

// code returns the extensions.code of the first error, or "".
func (r *gqlResult) code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	c, _ := r.Errors[0].Extensions["code"].(string)
	return c
}

// field returns data[name] as an object, or nil.
func (r *gqlResult) field(name string) map[string]any {
	m, _ := r.Data[name].(map[string]any)
	return m
}

// token returns data[op].token, or "".
func (r *gqlResult) token(op string) string {
	s, _ := r.field(op)["token"].(string)
	return s
}

// into decodes data[name] into out, a type of gatehouse/graph/model.
func (r *gqlResult) into(name string, out any) error {
	raw, err := json.Marshal(r.Data[name])
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, out)
}

// errBrokenAnswer is post's error for an answer that started but is not a
// whole GraphQL response (cut short, not JSON).
var errBrokenAnswer = errors.New("broken answer")

// post sends one GraphQL request to the API at url. The error is a failure
// to get a complete answer: none at all (refused, reset), or a broken one
// (errBrokenAnswer).
func post(c *http.Client, url, token, query string, vars map[string]any) (*gqlResult, error) {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, err := http.NewRequest(http.MethodPost, url+"/query", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	out := &gqlResult{Status: res.StatusCode}
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		return nil, fmt.Errorf("%w: status %d: %v", errBrokenAnswer, res.StatusCode, err)
	}
	return out, nil
}

// waitFor polls cond every 20ms for up to timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const (
	registerMutation = `mutation($u: String!, $p: String!, $d: JSONObject) { register(username: $u, password: $p, data: $d) { token session { id expiresAt } } }`
	loginMutation    = `mutation($u: String!, $p: String!, $d: JSONObject) { login(username: $u, password: $p, data: $d) { token session { id expiresAt } } }`
	password         = "correct horse"
)
