// Command gatehouse is a GraphQL login and session server.
//
//	go run .                    serve (embedded database in ./data)
//	go run . user add NAME      create a user, password from stdin
//	go run . user passwd NAME   set a user's password, ending its sessions
//	go run . backup FILE        write a consistent copy of the embedded database, while it serves
//	go run . restore FILE       put a backup in place of DATA_DIR's database (the server stopped)
//	go run . db                 serve only the embedded database (on its socket), for several instances
//	go run . -h                 list the commands and settings (environment variables and flags)
//	go run . -version           print the version, from the build information
package main

//go:generate go tool gqlgen generate

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"gatehouse/auth"
	"gatehouse/graph"
	"gatehouse/internal/datadir"
	"gatehouse/internal/embedded"
	"gatehouse/internal/metrics"
	"gatehouse/storage"
)

func main() {
	err := run(context.Background(), os.Args, os.Getenv, os.Stdin, os.Stdout)
	if err == nil {
		return
	}
	var usage *usageError
	if !errors.As(err, &usage) {
		fmt.Fprintln(os.Stderr, "gatehouse:", err)
		os.Exit(1)
	}
	// Nothing was opened, created or bound: say every mistake, then how
	// the command line goes.
	for _, line := range strings.Split(usage.err.Error(), "\n") {
		fmt.Fprintln(os.Stderr, "gatehouse:", line)
	}
	if usage.usage != "" {
		fmt.Fprintln(os.Stderr, usage.usage)
	}
	os.Exit(2)
}

// run is the whole program; the end-to-end tests call it too.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout io.Writer) error {
	if wantsVersion(args[1:]) { // before the settings: it needs none of them
		fmt.Fprintln(stdout, version())
		return nil
	}
	cfg, rest, err := parseConfig(args[0], args[1:], getenv, stdout)
	if err == nil && len(rest) > 0 {
		err = checkCommand(rest, stdout)
	}
	if errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return err
	}
	delay := logDelay
	if len(rest) > 0 && rest[0] != "db" {
		delay = 0 // a command's log and its output stay in order
	}
	out := newLogWriter(stdout, delay)
	defer out.Flush()
	log := newLogger(cfg, out)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The server caches sessions on the embedded database it runs (see
	// openDatabase).
	tuneGC(getenv, os.DirFS("/"), len(rest) == 0 && cfg.mongoURI == "" && cfg.sessionCache > 0)
	if len(rest) == 0 || rest[0] == "db" {
		log.LogAttrs(ctx, slog.LevelInfo, "configuration", cfg.effective...)
	}
	if len(rest) > 0 && rest[0] == "db" {
		return serveDatabase(ctx, cfg, rest[1:], log)
	}
	if len(rest) > 0 && (rest[0] == "backup" || rest[0] == "restore") {
		return runBackupCommand(ctx, cfg, rest, stdout, log)
	}

	var db *database
	var password string
	if len(rest) > 0 {
		// Read before anything is opened: without a password the command
		// fails and touches nothing.
		if !readsNoPassword(rest) {
			if password, err = readPassword(stdin); err != nil {
				return err
			}
		}
		var remote users
		db, remote, err = openForCommand(ctx, cfg, log)
		if remote != nil {
			return runCommand(ctx, remote, rest, password, stdout)
		}
	} else {
		db, err = openDatabase(ctx, cfg, log)
	}
	if err != nil {
		return err
	}
	defer db.close()

	var m *metrics.Metrics
	var svc *auth.Service
	if cfg.metricsAddr != "off" {
		m = metrics.New(func() int64 { return svc.Queue() })
		m.WatchSubscriptions(func() int { return svc.Subscriptions() })
		if db.engine != nil {
			m.WatchDisk(func() metrics.Disk { return metrics.Disk(db.engine.Disk()) })
		}
		m.WatchSessionCache(func() metrics.Cache { return metrics.Cache(db.store.CacheStats()) })
	}
	totpKey := []byte(cfg.totpKey)
	if totpKey == nil && db.engine == nil && len(rest) == 3 && rest[2] == "reset-all" {
		// Through `gatehouse db`: the key it records must be the instances'.
		return errors.New("user totp reset-all: set TOTP_KEY to the key the instances use")
	}
	newKeyFile := "" // a key file made now
	if totpKey == nil && db.engine != nil {
		var created bool
		if totpKey, created, err = loadTOTPKey(db.engine.Dir()); err != nil {
			return err
		}
		if created {
			newKeyFile = filepath.Join(db.engine.Dir(), totpKeyFile)
		}
	}
	svc, err = auth.NewService(db.store, auth.Config{
		TTL:         cfg.sessionTTL,
		MaxAge:      cfg.sessionMaxAge,
		BcryptCost:  cfg.bcryptCost,
		AllowSignup: cfg.allowSignup,
		Logger:      log,
		Throttle:    cfg.throttle,
		MaxSessions: cfg.maxSessions,
		BcryptSlots: cfg.bcryptSlots,
		BcryptWait:  cfg.bcryptWait,
		Meter:       meter(m),

		TOTPKey:             totpKey,
		TOTPIssuer:          cfg.totpIssuer,
		SecondFactorTimeout: cfg.secondFactor,
		EventsRetention:     cfg.eventsRetention,
		Passkeys: auth.PasskeyConfig{
			RPID: cfg.rpID, RPName: cfg.rpName, Origins: cfg.passkeyOrigins(cfg.port), Reauth: cfg.passkeyReauth,
		},
	})
	if err != nil {
		return err
	}
	if err := svc.ClaimExistingNames(ctx); err != nil {
		return err
	}
	if len(rest) > 0 {
		err := runCommand(ctx, svc, rest, password, stdout)
		svc.Wait() // its events' notices, for the running instances
		return err
	}
	if err := svc.CheckTOTPKey(ctx); err != nil {
		if newKeyFile != "" {
			_ = os.Remove(newKeyFile) // refused: it must not pass for the key to keep
		}
		return err
	}
	if newKeyFile != "" {
		log.Info("TOTP key: made a new one; keep a copy with your backups", "file", newKeyFile)
	}
	if db.engine != nil {
		stop, err := serveAdmin(db.engine, svc, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	return serve(ctx, cfg, log, svc, db, m)
}

// meter avoids a typed nil in the auth.Meter interface.
func meter(m *metrics.Metrics) auth.Meter {
	if m == nil {
		return nil
	}
	return m
}

// database is the store and, in embedded mode, the engine under it.
type database struct {
	store  *storage.Store
	engine *embedded.Server
}

func openDatabase(ctx context.Context, cfg *config, log *slog.Logger) (*database, error) {
	db := &database{}
	uri := cfg.mongoURI
	if uri == "" {
		e, err := embedded.Start(cfg.dataDir, log)
		if err != nil {
			return nil, err
		}
		e.LimitDisk(cfg.walLimit, cfg.minFree)
		db.engine, uri = e, e.URI()
		warnOtherDatabases(e.Dir(), cfg.mongoDB, log)
		log.Info("database: embedded FerretDB (SQLite), in process only", "dir", e.Dir(), "database", cfg.mongoDB)
	} else {
		log.Info("database: MongoDB from MONGODB_URI", "database", cfg.mongoDB)
	}
	opts := storage.Options{Timeout: cfg.dbTimeout}
	if db.engine != nil {
		// In process, through the relay: the engine has no port.
		opts.Dialer = db.engine.Dialer()
		// Each connection to the embedded engine holds SQLite connections
		// with page caches of their own, outside the Go heap; 8 keep both
		// cores busy, and memory flat however many requests wait.
		opts.MaxPoolSize = 8
		// This process is the data's one writer: the engine has no port,
		// and the user commands come through this server (serveAdmin).
		opts.SessionCache = cfg.sessionCache
	}
	switch {
	case opts.SessionCache > 0:
		log.Info("session cache: on (this process is the only writer of the data)", "bytes", opts.SessionCache)
	case db.engine != nil:
		log.Info("session cache: off (SESSION_CACHE=0)")
	default:
		log.Info("session cache: off (with MONGODB_URI, other processes may change sessions)")
	}
	store, err := storage.Open(ctx, uri, cfg.mongoDB, opts)
	if err == nil && db.engine != nil {
		err = db.engine.IndexIDs(ctx, cfg.mongoDB)
	}
	if err != nil {
		if store != nil {
			_ = store.Close(context.Background())
		}
		var newer *storage.NewerLayoutError
		if errors.As(err, &newer) {
			err = fmt.Errorf("MONGODB_DATABASE %s: %w", cfg.mongoDB, err)
		}
		if db.engine != nil {
			err = datadir.Explain(db.engine.Dir(), err) // a full or read-only disk
			db.engine.Close()
		}
		return nil, err
	}
	db.store = store
	return db, nil
}

// ready reports whether the database answers and, embedded, has the disk
// space to write.
func (db *database) ready(ctx context.Context) error {
	if db.engine != nil {
		if err := db.engine.DiskFull(); err != nil {
			return err
		}
	}
	return db.store.Ping(ctx)
}

func (db *database) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = db.store.Close(ctx)
	if db.engine != nil {
		db.engine.Close()
	}
}

func serve(ctx context.Context, cfg *config, log *slog.Logger, svc *auth.Service, db *database, m *metrics.Metrics) error {
	opts := graph.Options{
		Auth:            svc,
		HTTP:            auth.HTTPConfig{CookieSecure: cfg.cookieSecure, TrustedProxies: cfg.trustedProxies},
		Ready:           db.ready,
		Logger:          log,
		NoIntrospection: !cfg.introspection,
		CORSOrigins:     cfg.corsOrigins,
	}
	if m != nil {
		opts.Observer = m
		stop, err := serveMetrics(cfg.metricsAddr, m, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	h := graph.NewHandler(opts)
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.host, cfg.port))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if cfg.port == "0" && len(cfg.rpOrigins) == 0 && cfg.rpID == "localhost" {
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		svc.AddPasskeyOrigin("http://localhost:" + port) // the playground's, now that it is known
	}
	// Requests' contexts derive from sockets, cancelled once the HTTP
	// requests have drained at shutdown: that closes the WebSockets, which
	// Shutdown neither closes nor waits for.
	sockets, closeSockets := context.WithCancel(context.Background())
	defer closeSockets()
	srv := &http.Server{
		BaseContext:       func(net.Listener) context.Context { return sockets },
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    12 << 10, // net/http allows 4 KiB more: 16 KiB in all
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go svc.RunSweeper(ctx, cfg.sweepInterval)
	go svc.RunLive(ctx) // logs its mode

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	url := "http://" + ln.Addr().String()
	log.Info("gatehouse listening", "addr", url, "playground", url+"/", "api", url+"/query", "version", version())

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests", "timeout", cfg.shutdown)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.shutdown)
	defer cancel()
	err = srv.Shutdown(sctx)
	closeSockets()
	written := make(chan struct{})
	go func() { svc.Wait(); close(written) }() // events and notices that requests left to write
	select {
	case <-written:
	case <-sctx.Done():
		log.Warn("shutdown: some security events or live notices were not written in time")
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// serveMetrics serves /metrics on an address of its own, never on the API's:
// its counters tell whoever reads them whether a session id they hold is
// still alive (session look-ups by result), so it belongs on a port that
// only the monitoring network reaches.
func serveMetrics(addr string, m *metrics.Metrics, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("METRICS_ADDR: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info("metrics listening", "addr", "http://"+ln.Addr().String()+"/metrics")
	return func() { _ = srv.Close() }, nil
}
