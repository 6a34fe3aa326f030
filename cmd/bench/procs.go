package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The measured processes are children: the load generator's CPU and memory
// stay out of what is measured, and each child's RSS and CPU time can be
// read from /proc.

// moduleRoot returns the directory of the go.mod that encloses the working
// directory: the gatehouse module.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run bench inside the gatehouse module (go run ./cmd/bench)")
	}
	return filepath.Dir(gomod), nil
}

// buildGatehouse compiles the module's main package once, into dir.
func buildGatehouse(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "gatehouse")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return bin, nil
}

// child is a gatehouse process started by the bench.
type child struct {
	name string
	cmd  *exec.Cmd
	log  string // its log file
	done chan struct{}
}

// gatehouseVars are the settings a child must not inherit from our
// environment: the bench sets the ones it wants explicitly.
var gatehouseVars = []string{
	"HOST", "PORT", "MONGODB_URI", "MONGODB_DATABASE", "DATA_DIR", "SESSION_TTL",
	"SESSION_MAX_AGE", "BCRYPT_COST", "ALLOW_SIGNUP", "COOKIE_SECURE", "TRUSTED_PROXIES",
	"LOG_LEVEL", "LOG_FORMAT", "DB_TIMEOUT", "SWEEP_INTERVAL", "SHUTDOWN_TIMEOUT",
	"CORS_ORIGINS", "INTROSPECTION", "THROTTLE_USER_LIMIT", "THROTTLE_IP_LIMIT", "THROTTLE_WINDOW",
	"THROTTLE_BASE_DELAY", "THROTTLE_MAX_DELAY", "BCRYPT_SLOTS", "METRICS_ADDR", "BCRYPT_WAIT",
	"TOTP_KEY", "TOTP_ISSUER", "SECOND_FACTOR_TIMEOUT",
}

func childEnv(set map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !contains(gatehouseVars, k) {
			env = append(env, kv)
		}
	}
	for k, v := range set {
		env = append(env, k+"="+v)
	}
	return env
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startChild runs bin with args and env (LOG_FORMAT=json), copies its output
// to logPath, and waits for the log line whose msg is ready; it returns the
// value of that line's key attribute (the address it listens on).
func startChild(ctx context.Context, name, bin string, args []string, env map[string]string, logPath, ready, key string) (*child, string, error) {
	env["LOG_FORMAT"] = "json"
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = childEnv(env)
	cmd.Stderr = logf
	// If the bench dies, its children die with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, "", fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	found := make(chan string, 1)
	go func() {
		defer close(c.done)
		defer logf.Close()
		// Parse lines until the ready one, then copy the rest in bulk: the
		// access log has a line per request, and a load generator that
		// decoded each one would bill the scenarios with HTTP for it.
		r := bufio.NewReaderSize(stdout, 64<<10)
		for {
			line, err := r.ReadBytes('\n')
			logf.Write(line)
			if err != nil {
				break
			}
			var rec map[string]any
			if json.Unmarshal(line, &rec) == nil && rec["msg"] == ready {
				if v, ok := rec[key].(string); ok {
					found <- v
					_, _ = io.Copy(logf, r)
					break
				}
			}
		}
		_ = cmd.Wait()
	}()
	select {
	case v := <-found:
		return c, v, nil
	case <-c.done:
		return nil, "", fmt.Errorf("%s exited before it was ready:\n%s", name, tail(logPath))
	case <-time.After(2 * time.Minute):
	case <-ctx.Done():
	}
	c.stop()
	return nil, "", fmt.Errorf("%s not ready (%v):\n%s", name, ctx.Err(), tail(logPath))
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// stop asks the child to shut down (SIGTERM) and kills it if it has not
// within 15 seconds.
func (c *child) stop() {
	if c == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// tail returns the last lines of a log file, for error messages.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}

// procStat is what /proc tells about one process.
type procStat struct {
	rss, hwm uint64  // VmRSS and VmHWM (peak RSS), bytes
	cpu      float64 // user + system CPU seconds since start
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

func readProc(pid int) (procStat, error) {
	var st procStat
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, err
	}
	for line := range bytes.Lines(status) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		switch string(k) {
		case "VmRSS":
			st.rss = kB(v)
		case "VmHWM":
			st.hwm = kB(v)
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, err
	}
	// Fields after the command name, which is in parentheses and may
	// contain anything: state is field 3, utime 14, stime 15.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return st, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return st, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	stt, _ := strconv.ParseUint(f[12], 10, 64)
	st.cpu = float64(ut+stt) / clockTicks
	return st, nil
}

func kB(v []byte) uint64 {
	n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(string(v)), " kB"), 10, 64)
	return n << 10
}

// machineBusy returns the CPU seconds all processes have used since boot
// (every state of /proc/stat's cpu line but idle and iowait).
func machineBusy() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var busy uint64
	for i, v := range f[1:9] { // user nice system idle iowait irq softirq steal
		if i == 3 || i == 4 {
			continue
		}
		n, _ := strconv.ParseUint(v, 10, 64)
		busy += n
	}
	return float64(busy) / clockTicks
}

// selfCPU returns the CPU seconds the bench process itself has used.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// rssSampler records the largest VmRSS it sees of each child, and of
// their sum.
type rssSampler struct {
	mu   sync.Mutex
	each []uint64
	sum  uint64
	stop chan struct{}
	done chan struct{}
}

func sampleRSS(pids []int, every time.Duration) *rssSampler {
	s := &rssSampler{each: make([]uint64, len(pids)), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			s.mu.Lock()
			var sum uint64
			for i, p := range pids {
				if st, err := readProc(p); err == nil {
					sum += st.rss
					s.each[i] = max(s.each[i], st.rss)
				}
			}
			s.sum = max(s.sum, sum)
			s.mu.Unlock()
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// finish stops sampling and returns the largest sum and each child's largest.
func (s *rssSampler) finish() (sum uint64, each []uint64) {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sum, s.each
}
