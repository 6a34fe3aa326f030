// Command bench measures gatehouse against the targets of issue 4 and writes
// the results as a Markdown table.
//
//	go run ./cmd/bench          the full run, about six minutes on 2 cores; writes bench/results.md
//	go run ./cmd/bench -smoke   every scenario for a fraction of a second (CI); exits 1 on any error
//	go run ./cmd/bench -h       the flags
//
// It builds gatehouse once and runs it as child processes on loopback: the
// embedded database alone (gatehouse db, on its socket in a fresh temporary
// directory),
// or the MongoDB of MONGODB_URI when set, and the server on a free port. It
// seeds users and sessions directly through the storage package, then
// drives real GraphQL requests over keep-alive HTTP and compares them with
// baselines measured in the same run: a raw driver look-up and bcrypt's
// own speed. Every load is bounded in time and in requests.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// settings are the flags.
type settings struct {
	users, sessions        int
	growthSmall, growthBig int
	growthConc             int
	growthExpired          int
	conc, loginConc        []int
	floodConc              int
	memoryRuns             int
	phases                 []string
	span, loginSpan        time.Duration
	warmup                 time.Duration
	bcryptCost             int
	maxRequests            int
	timeout                time.Duration
	out                    string
	mongoURI               string
	smoke                  bool
	keep                   bool
}

// sessionTTL and sessionMaxAge are the server's defaults, passed to it
// explicitly so that seeded sessions look like the ones it makes.
const (
	sessionTTL    = time.Hour
	sessionMaxAge = 24 * time.Hour
)

func parseSettings(args []string, getenv func(string) string, usage io.Writer) (*settings, error) {
	s := &settings{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(usage)
	fs.IntVar(&s.users, "users", 100, "users to seed (one of them owns the sessions scenario's 10 sessions)")
	fs.IntVar(&s.sessions, "sessions", 1000, "sessions to seed for the read scenarios")
	fs.IntVar(&s.growthSmall, "growth-small", 1000, "sessions in the growth check's database at first")
	fs.IntVar(&s.growthBig, "growth-big", 100_000, "sessions in the growth check's database at the end")
	fs.IntVar(&s.growthConc, "growth-c", 8, "concurrency of the growth check")
	fs.IntVar(&s.growthExpired, "growth-expired", 1000, "expired sessions each sweep of the growth check deletes")
	conc := fs.String("c", "1,8,64", "concurrencies of the session, me and sessions scenarios and their baselines")
	phases := fs.String("phases", strings.Join(allPhases, ","), "the phases to run, in this order whatever the list's")
	loginConc := fs.String("login-c", "2,8,32", "concurrencies of the login scenario")
	fs.IntVar(&s.floodConc, "flood-c", 8, "concurrent logins of the flood that runs under the session scenario")
	fs.IntVar(&s.memoryRuns, "memory-runs", 3, "runs of session at the highest c over growth-big sessions on the one-process server, for its RSS")
	fs.DurationVar(&s.span, "d", 2*time.Second, "measured duration of each scenario")
	fs.DurationVar(&s.loginSpan, "login-d", 4*time.Second, "measured duration of each login scenario (bcrypt makes them slow)")
	fs.DurationVar(&s.warmup, "warmup", 300*time.Millisecond, "unmeasured warm-up before each scenario")
	fs.IntVar(&s.bcryptCost, "bcrypt-cost", 12, "bcrypt cost of the server and the seeded passwords (12, the server's default, allows ~8 logins/s on 2 cores)")
	fs.IntVar(&s.maxRequests, "max-requests", 1_000_000, "upper bound on the requests of one scenario")
	fs.DurationVar(&s.timeout, "timeout", 15*time.Minute, "upper bound on the whole run")
	fs.StringVar(&s.out, "o", "bench/results.md", "where to write the results (relative to the module root); empty: print only")
	fs.StringVar(&s.mongoURI, "mongodb-uri", getenv("MONGODB_URI"), "MongoDB to measure instead of the embedded engine (env MONGODB_URI)")
	fs.BoolVar(&s.smoke, "smoke", false, "tiny sizes, a fraction of a second per scenario, cost 4, print only; exit 1 if any request failed")
	fs.BoolVar(&s.keep, "keep", false, "keep the temporary directory (binary, database, child logs)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if s.conc, err = intList(*conc); err != nil {
		return nil, fmt.Errorf("-c: %w", err)
	}
	if s.loginConc, err = intList(*loginConc); err != nil {
		return nil, fmt.Errorf("-login-c: %w", err)
	}
	for _, p := range strings.Split(*phases, ",") {
		if p = strings.TrimSpace(p); !contains(allPhases, p) {
			return nil, fmt.Errorf("-phases: unknown phase %q (known: %s)", p, strings.Join(allPhases, ", "))
		}
		s.phases = append(s.phases, p)
	}
	if s.smoke {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		s.applySmoke(set)
	}
	switch {
	case s.users < 2:
		return nil, errors.New("-users must be at least 2")
	case s.sessions < listed:
		return nil, fmt.Errorf("-sessions must be at least %d", listed)
	case s.growthSmall < 1 || s.growthBig < s.growthSmall:
		return nil, errors.New("need 1 ≤ -growth-small ≤ -growth-big")
	case s.growthConc < 1 || s.growthExpired < 1 || s.floodConc < 1 || s.maxRequests < 1 || s.memoryRuns < 1:
		return nil, errors.New("-growth-c, -growth-expired, -flood-c, -memory-runs and -max-requests must be positive")
	case s.span <= 0 || s.loginSpan <= 0 || s.warmup < 0:
		return nil, errors.New("durations must be positive")
	}
	return s, nil
}

// applySmoke shrinks everything the user did not set explicitly.
func (s *settings) applySmoke(set map[string]bool) {
	smoke := map[string]func(){
		// Few sessions: on the embedded engine a session list scans them
		// all, and 64 lists at once must stay well inside DB_TIMEOUT on a
		// busy CI machine.
		"users":          func() { s.users = 10 },
		"sessions":       func() { s.sessions = 50 },
		"growth-small":   func() { s.growthSmall = 50 },
		"growth-big":     func() { s.growthBig = 500 },
		"growth-expired": func() { s.growthExpired = 100 },
		"d":              func() { s.span = 150 * time.Millisecond },
		"login-d":        func() { s.loginSpan = 300 * time.Millisecond },
		"warmup":         func() { s.warmup = 50 * time.Millisecond },
		"bcrypt-cost":    func() { s.bcryptCost = 4 },
		"timeout":        func() { s.timeout = 3 * time.Minute },
		"o":              func() { s.out = "" },
	}
	for name, apply := range smoke {
		if !set[name] {
			apply()
		}
	}
}

func intList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a list of positive numbers", s)
		}
		out = append(out, n)
	}
	return out, nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseSettings(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	b, err := start(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	res, runErr := b.runAll(ctx)
	b.close()
	if res == nil {
		return runErr
	}
	md := report(res)
	fmt.Fprint(stdout, md)
	if cfg.out != "" {
		path := cfg.out
		if !strings.HasPrefix(path, "/") {
			path = b.root + "/" + path
		}
		if err := os.WriteFile(path, []byte(md), 0o644); err != nil {
			return err
		}
		fmt.Fprintln(stderr, "bench: wrote", path)
	}
	if runErr != nil {
		return runErr
	}
	if n := res.failed(); n > 0 && cfg.smoke {
		return fmt.Errorf("smoke: %d failed requests", n)
	}
	return nil
}

// machine describes where the numbers come from.
type machine struct {
	cores     int
	cpu       string
	goVersion string
	loadavg   string
}

func describeMachine() machine {
	m := machine{cores: runtime.NumCPU(), goVersion: runtime.Version(), cpu: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.loadavg = strings.Join(f[:3], " ")
		}
	}
	return m
}
