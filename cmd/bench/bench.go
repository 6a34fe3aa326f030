package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"gatehouse/storage"
)

// bench is one run: the children, the database, the clients.
type bench struct {
	cfg    *settings
	log    io.Writer // progress
	root   string    // module root
	tmp    string
	bin    string
	engine *child // nil with MONGODB_URI
	uri    string
	data   string // the engine's DATA_DIR

	server *child
	gql    *gqlClient
	db     string         // database the server uses
	store  *storage.Store // on db, for seeding and checks
	raw    *mongo.Client  // the baselines' own driver client
}

// Database names, unique to the run: with MONGODB_URI the bench drops
// what it created, and must never meet a database it did not.
var (
	mainDB   = fmt.Sprintf("gatehouse_bench_%d", time.Now().UnixNano()%1e9)
	growthDB = mainDB + "_growth"
)

// start builds gatehouse, starts the engine (unless MONGODB_URI) and opens
// the driver client of the baselines.
func start(ctx context.Context, cfg *settings, log io.Writer) (_ *bench, err error) {
	b := &bench{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	if b.root, err = moduleRoot(ctx); err != nil {
		return nil, err
	}
	if b.tmp, err = os.MkdirTemp("", "gatehouse-bench-"); err != nil {
		return nil, err
	}
	b.progress("building gatehouse in %s", b.tmp)
	if b.bin, err = buildGatehouse(ctx, b.root, b.tmp); err != nil {
		return nil, err
	}
	b.uri = cfg.mongoURI
	if b.uri == "" {
		b.data = filepath.Join(b.tmp, "data")
		b.engine, b.uri, err = startChild(ctx, "engine", b.bin, []string{"db"},
			map[string]string{"DATA_DIR": b.data}, filepath.Join(b.tmp, "engine.log"),
			"embedded database listening", "uri")
		if err != nil {
			return nil, err
		}
		b.progress("engine: gatehouse db (pid %d) at %s", b.engine.pid(), b.uri)
	} else {
		b.progress("database: MONGODB_URI (the engine is not ours: its RSS and CPU are not measured)")
	}
	b.raw, err = mongo.Connect(options.Client().ApplyURI(b.uri).SetTimeout(30 * time.Second).
		SetMaxPoolSize(uint64(4 * maxOf(cfg.conc))).SetAppName("gatehouse-bench"))
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	return b, nil
}

// useDatabase (re)starts the server on database db, with a store on it for
// the bench. The database must be new: the bench drops it at the end.
func (b *bench) useDatabase(ctx context.Context, db string) error {
	b.stopServer()
	st, err := storage.Open(ctx, b.uri, db, storage.Options{Timeout: 30 * time.Second})
	if err != nil {
		return err
	}
	b.store, b.db = st, db
	env := b.serverEnv(db)
	env["MONGODB_URI"] = b.uri
	env["TOTP_KEY"] = "YmVuY2ggYmVuY2ggYmVuY2ggYmVuY2ggYmVuY2ggYmU=" // required with MONGODB_URI
	return b.startServer(ctx, env)
}

// oneProcess stops the standalone engine and the server, and starts
// gatehouse the way `go run .` runs it: one process with its engine inside,
// here on the standalone engine's files. The bench cannot reach that
// engine (it has no socket: the server's driver reaches it in process),
// so it counts no database commands from then on.
func (b *bench) oneProcess(ctx context.Context, db string) error {
	b.stopServer()
	if b.raw != nil {
		_ = b.raw.Disconnect(ctx)
		b.raw = nil
	}
	b.engine.stop()
	b.engine = nil
	env := b.serverEnv(db)
	env["DATA_DIR"] = b.data
	return b.startServer(ctx, env)
}

func (b *bench) serverEnv(db string) map[string]string {
	return map[string]string{
		"HOST":             "127.0.0.1",
		"PORT":             "0",
		"MONGODB_DATABASE": db,
		"BCRYPT_COST":      strconv.Itoa(b.cfg.bcryptCost),
		"SESSION_TTL":      sessionTTL.String(),
		"SESSION_MAX_AGE":  sessionMaxAge.String(),
	}
}

func (b *bench) startServer(ctx context.Context, env map[string]string) error {
	db := env["MONGODB_DATABASE"]
	metrics, err := freeAddr()
	if err != nil {
		return err
	}
	env["METRICS_ADDR"] = metrics // gatehouse serves /metrics only on a port of its own
	srv, addr, err := startChild(ctx, "server", b.bin, nil, env,
		filepath.Join(b.tmp, fmt.Sprintf("server-%s-%d.log", db, time.Now().UnixNano())), "gatehouse listening", "addr")
	if err != nil {
		return err
	}
	b.server = srv
	b.gql = newGQLClient(addr+"/query", "http://"+metrics+"/metrics", 2*(maxOf(b.cfg.conc)+maxOf(b.cfg.loginConc)+b.cfg.floodConc))
	b.progress("server: gatehouse (pid %d) at %s on database %s", srv.pid(), addr, db)
	return nil
}

// serving is a server on a database, with the bench's store on it.
type serving struct {
	server *child
	gql    *gqlClient
	store  *storage.Store
	db     string
}

// attach makes s the server and database the bench measures and returns
// the previous ones; attach(serving{}) detaches them, so that the next
// useDatabase leaves them running.
func (b *bench) attach(s serving) serving {
	prev := serving{b.server, b.gql, b.store, b.db}
	b.server, b.gql, b.store, b.db = s.server, s.gql, s.store, s.db
	return prev
}

// collection is the sessions collection of the current database, through
// the baselines' client.
func (b *bench) collection() *mongo.Collection {
	return b.raw.Database(b.db).Collection(sessionsCollection)
}

// sessionsCollection is storage's name for the sessions collection, which
// the baselines read directly.
const sessionsCollection = "sessions"

// indexed waits for the engine's _id indexes on the current database.
func (b *bench) indexed(ctx context.Context) error {
	if b.engine == nil {
		return nil // MongoDB indexes _id itself
	}
	return waitIDIndexes(ctx, b.data, b.db)
}

func (b *bench) stopServer() {
	if b.server != nil {
		b.server.stop()
		b.server = nil
	}
	if b.gql != nil {
		b.gql.http.CloseIdleConnections()
		b.gql = nil
	}
	if b.store != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if b.cfg.mongoURI != "" { // not our throwaway engine: clean up
			_ = b.store.Drop(ctx)
		}
		_ = b.store.Close(ctx)
		b.store = nil
	}
}

func (b *bench) close() {
	b.stopServer()
	if b.raw != nil {
		_ = b.raw.Disconnect(context.Background())
	}
	b.engine.stop()
	if b.tmp != "" {
		if b.cfg.keep {
			b.progress("kept %s", b.tmp)
		} else {
			_ = os.RemoveAll(b.tmp)
		}
	}
}

func (b *bench) progress(format string, args ...any) {
	fmt.Fprintf(b.log, "bench: "+format+"\n", args...)
}

// usage is what the measured processes spent during one scenario.
type usage struct {
	rss       uint64  // largest sampled VmRSS of server + engine
	rssServer uint64  // largest sampled VmRSS of the server alone
	rssEngine uint64  // and of the engine (0: not ours, or in the server)
	hwm       uint64  // their peak RSS since start (VmHWM), summed
	cpuServer float64 // CPU seconds
	cpuEngine float64
	cpuBench  float64 // the load generator's (and the baselines')
	cpuOther  float64 // every other process's: the machine's noise
	wall      time.Duration
	db        dbOps // database commands, from serverStatus
	counted   bool  // whether db was counted
}

// measure runs fn and records what the children spent meanwhile.
func (b *bench) measure(ctx context.Context, fn func()) (usage, error) {
	var u usage
	var db0 dbOps
	var err error
	if b.raw != nil {
		if db0, err = commandCounts(ctx, b.raw); err != nil {
			return u, err
		}
	}
	s0, e0 := b.cpu()
	g0, m0, t0 := selfCPU(), machineBusy(), time.Now()
	sampler := sampleRSS([]int{pidOf(b.server), pidOf(b.engine)}, 50*time.Millisecond)

	fn()

	var each []uint64
	u.rss, each = sampler.finish()
	u.rssServer, u.rssEngine = each[0], each[1]
	s1, e1 := b.cpu()
	u.cpuServer, u.cpuEngine, u.cpuBench = s1-s0, e1-e0, selfCPU()-g0
	u.cpuOther = max(machineBusy()-m0-u.cpuServer-u.cpuEngine-u.cpuBench, 0)
	u.wall = time.Since(t0)
	for _, c := range []*child{b.server, b.engine} {
		if st, err := readProc(pidOf(c)); c != nil && err == nil {
			u.hwm += st.hwm
		}
	}
	if b.raw != nil {
		db1, err := commandCounts(ctx, b.raw)
		if err != nil {
			return u, err
		}
		u.db, u.counted = db1.sub(db0), true
	}
	return u, nil
}

// pidOf returns c's process id, or -1 (no such process) for none.
func pidOf(c *child) int {
	if c == nil {
		return -1
	}
	return c.pid()
}

func (b *bench) cpu() (server, engine float64) {
	if b.server != nil {
		st, _ := readProc(b.server.pid())
		server = st.cpu
	}
	if b.engine != nil {
		st, _ := readProc(b.engine.pid())
		engine = st.cpu
	}
	return server, engine
}

func maxOf(xs []int) int {
	m := 0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}
