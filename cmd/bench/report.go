package main

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Targets of issues 4, 15 and 16.
const (
	readTarget    = 0.6  // session and me rate ÷ raw look-up rate, at c > 1
	loginTarget   = 0.9  // login rate ÷ bcrypt ceiling
	floodTarget   = 2.0  // session p99 under a login flood ÷ without
	growthTarget  = 0.65 // session rate at growth-big ÷ at growth-small
	ownDataTarget = 0.8  // sessions and deleteOtherSessions rate at growth-big ÷ at growth-small; sweep time at growth-small ÷ at growth-big
	sweepCommands = 1.01 // a sweep's database commands at growth-big ÷ at growth-small
	rssTarget     = 128 << 20
	rssGrowth     = 1.10 // RSS after the last run ÷ after the first
	cacheTarget   = 0.5  // session and me rate ÷ {__typename} rate on the one process, at c > 1
)

// row is one measured load.
type row struct {
	name  string
	conc  int
	res   *loadResult
	use   usage
	vs    string        // how it compares with its baseline
	flood *loadResult   // the login flood that ran alongside, if any
	wait  time.Duration // logins: their mean wait for a bcrypt slot, as the server measured it
	// hitRate is the share of session reads the server's cache answered
	// (one-process scenarios).
	hitRate float64
}

// writeCheck is a stream of session requests on one session, and the
// database writes it caused.
type writeCheck struct {
	*row
	age           time.Duration // how long ago the session was last seen when the stream began
	before, after time.Time     // its lastSeenAt
}

// sweepCost is one pass of the sweeper over a database of sessions.
type sweepCost struct {
	live      int   // sessions of other users, not expired
	due       int   // expired sessions filed under a span that has ended
	deleted   int64 // what the sweep said it deleted
	gone      int64 // how many fewer sessions the database held after it
	left      int   // ids its owners' lists still held after it
	took      time.Duration
	cpuEngine float64
	db        dbOps
}

// results is everything a run measured.
type results struct {
	cfg      *settings
	machine  machine
	database string
	started  time.Time
	elapsed  time.Duration
	rows     []*row // in the order they ran
	notes    []string

	raw, rawList, session, me, sessions map[int]*row
	login, flood, bcrypt                map[int]*row // bcrypt: the ceiling measured beside each login
	writes                              []*writeCheck
	wal                                 *walCheck
	touchInterval                       time.Duration
	growthRaw, growthSession            [2]*row // small, big
	growthList, growthDelete            [2]*row // a user with fewSessions: sessions, deleteOtherSessions
	growthLeft                          [2]int  // ids of ended sessions left in the lists after deleteOtherSessions
	growthSeed                          time.Duration
	sweeps                              []sweepCost
	ceiling, cachedSession, cachedMe    map[int]*row // one process: {__typename}, session, me
	oneProcess                          []*row       // the memory runs
	memorySessions                      int          // over how many sessions
}

func newResults(cfg *settings) *results {
	return &results{
		cfg: cfg, machine: describeMachine(), started: time.Now(),
		raw: map[int]*row{}, rawList: map[int]*row{}, session: map[int]*row{}, me: map[int]*row{},
		sessions: map[int]*row{}, login: map[int]*row{}, flood: map[int]*row{}, bcrypt: map[int]*row{},
		ceiling: map[int]*row{}, cachedSession: map[int]*row{}, cachedMe: map[int]*row{},
		touchInterval: min(time.Minute, sessionTTL/2), // auth's rule
	}
}

// failed counts the failed requests of the whole run.
func (r *results) failed() int {
	n := 0
	for _, x := range r.rows {
		n += x.res.errors + floodErrors(x)
	}
	return n
}

// report renders the results as Markdown.
func report(r *results) string {
	var sb strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&sb, format, args...) }
	cfg, m := r.cfg, r.machine

	w("# gatehouse benchmark\n\n")
	title := "`go run ./cmd/bench`"
	if cfg.smoke {
		title = "`go run ./cmd/bench -smoke` (sizes and durations too small to mean anything)"
	}
	w("%s, run %s, took %v.\n\n", title, r.started.UTC().Format("2006-01-02 15:04 UTC"), r.elapsed.Round(time.Second))
	w("- **Machine**: %d cores (%s), %s, load average %s at the start. ", m.cores, m.cpu, m.goVersion, m.loadavg)
	w("The server and the database engine are child processes of the load generator, which shares their cores. ")
	var other, wall float64
	for _, x := range r.rows {
		other, wall = other+x.use.cpuOther, wall+x.use.wall.Seconds()
	}
	w("Other processes took %.0f%% of the machine's CPU during the measurements.\n", 100*ratioOf(other, wall*float64(m.cores)))
	w("- **Database**: %s.\n", r.database)
	w("- **Settings**: %d users, %d sessions (one user with %d), growth check %d → %d sessions (%d per user) at c=%d "+
		"with a user of %d sessions and sweeps of %d expired; "+
		"%v per scenario after a %v warm-up (logins %v); bcrypt cost %d; login flood of %d clients; "+
		"session TTL %v (a use writes at most once per %v).\n\n",
		cfg.users, cfg.sessions, listed, cfg.growthSmall, cfg.growthBig, growthPerUser, cfg.growthConc,
		fewSessions, cfg.growthExpired,
		cfg.span, cfg.warmup, cfg.loginSpan, cfg.bcryptCost, cfg.floodConc, sessionTTL, r.touchInterval)

	w("## Results\n\n| scenario | c | req/s | p50 | p99 | errors | vs baseline |\n|---|--:|--:|--:|--:|--:|---|\n")
	for _, x := range r.rows {
		w("| %s | %d | %.0f | %s | %s | %d | %s |\n", x.name, x.conc, x.res.rate(), ms(x.res.pct(.5)), ms(x.res.pct(.99)),
			x.res.errors+floodErrors(x), x.vs)
	}
	w("\n")
	w("## Targets (issues 4, 15 and 16)\n\n| target | measured | met |\n|---|---|---|\n")
	for _, t := range targets(r) {
		met := "yes"
		if !t.ok {
			met = "**no**"
		}
		w("| %s | %s | %s |\n", t.target, t.measured, met)
	}
	w("\n")
	w("## Details\n\n")
	w("| scenario | c | n | req/s | p50 | p99 | errors | vs baseline | RSS MiB server + engine (peak) | CPU s server / engine / bench / other | CPU ms/req | DB reads/req, writes |\n")
	w("|---|--:|--:|--:|--:|--:|--:|---|--:|---|--:|---|\n")
	for _, x := range r.rows {
		w("| %s | %d | %d | %.0f | %s | %s | %d | %s | %s | %.2f / %.2f / %.2f / %.2f | %.3f | %s |\n",
			x.name, x.conc, len(x.res.lat), x.res.rate(), ms(x.res.pct(.5)), ms(x.res.pct(.99)),
			x.res.errors+floodErrors(x), x.vs, rssCell(x.use), x.use.cpuServer, x.use.cpuEngine, x.use.cpuBench, x.use.cpuOther, 1000*cpuPerReq(x), dbCell(x))
	}
	w("\nn: measured answers (a client's requests after the warm-up, not its first). req/s: c ÷ mean latency " +
		"(Little's law for c closed-loop clients; the answers per second when requests are short). errors: every " +
		"failed request, warm-up and the flood's included (non-200, GraphQL error, or an unexpected answer). RSS: the " +
		"largest sampled VmRSS of each process during the scenario, and in parentheses the sum of their VmHWM (peak " +
		"since start). CPU: seconds used during the scenario by the server, the engine, the load generator and every " +
		"other process on the machine (noise); CPU ms/req: the first three per request sent, a cost that noise " +
		"disturbs less than rates. DB: commands counted by serverStatus (finds per request, " +
		"then inserts + updates + deletes).\n\n")

	if len(r.sweeps) > 0 {
		w("## The sweeper\n\nThe server's sweeper, storage's `DeleteExpiredSessions` (every `SWEEP_INTERVAL`, 1m by default; "+
			"a pass may take 2 minutes), called by the bench with the servers stopped, %d times at each size, "+
			"the sizes' order alternating: a pass over %d sessions that expired an hour ago (seeded just before, "+
			"beside the live ones, owned by users with nothing else, %d each), then a pass with nothing due. "+
			"gone: how many fewer sessions the database held after the pass; left listed: ids their owners' lists "+
			"still held (a lost update). DB: commands counted by serverStatus (finds, then inserts + updates + deletes).\n\n",
			sweepRounds, cfg.growthExpired, min(cfg.growthExpired, growthPerUser))
		w("| live sessions | due | deleted | gone | left listed | took | engine CPU s | DB reads, writes |\n|--:|--:|--:|--:|--:|--:|--:|---|\n")
		for _, s := range r.sweeps {
			w("| %d | %d | %d | %d | %d | %s | %.2f | %d, %d |\n", s.live, s.due, s.deleted, s.gone, s.left, ms(s.took), s.cpuEngine, s.db.reads, s.db.writes)
		}
		w("\n")
	}
	if len(r.notes) > 0 {
		w("## Notes\n\n")
		for _, n := range r.notes {
			w("- %s\n", n)
		}
	}
	return sb.String()
}

// cpuPerReq is the CPU seconds server, engine and load generator spent per
// request sent (the flood's included, if any).
func cpuPerReq(x *row) float64 {
	n := x.res.sent
	if x.flood != nil {
		n += x.flood.sent
	}
	if n == 0 {
		return 0
	}
	return (x.use.cpuServer + x.use.cpuEngine + x.use.cpuBench) / float64(n)
}

func rssCell(u usage) string {
	if u.rssEngine == 0 {
		return fmt.Sprintf("%.0f (%.0f)", mib(u.rssServer), mib(u.hwm))
	}
	return fmt.Sprintf("%.0f + %.0f = %.0f (%.0f)", mib(u.rssServer), mib(u.rssEngine), mib(u.rss), mib(u.hwm))
}

func dbCell(x *row) string {
	if !x.use.counted {
		return "–"
	}
	reads := 0.0
	if x.res.sent > 0 {
		reads = float64(x.use.db.reads) / float64(x.res.sent)
	}
	return fmt.Sprintf("%.2f, %d", reads, x.use.db.writes)
}

type verdict struct {
	target, measured string
	ok               bool
}

func targets(r *results) []verdict {
	var out []verdict
	add := func(ok bool, target, format string, args ...any) {
		out = append(out, verdict{target, fmt.Sprintf(format, args...), ok})
	}
	for _, name := range []string{"session", "me"} {
		rows := map[string]map[int]*row{"session": r.session, "me": r.me}[name]
		for _, c := range r.cfg.conc {
			x, base := rows[c], r.raw[c]
			if c == 1 || x == nil || base == nil {
				continue
			}
			q := ratioOf(x.res.rate(), base.res.rate())
			add(q >= readTarget && x.res.errors == 0, fmt.Sprintf("`%s` c=%d ≥ %.1f× raw look-up, no errors", name, c, readTarget),
				"%.2f× (%.0f vs %.0f/s), %d errors; CPU per request %.2f× the raw look-up's", q, x.res.rate(), base.res.rate(),
				x.res.errors, ratioOf(cpuPerReq(x), cpuPerReq(base)))
		}
	}
	for _, wc := range r.writes {
		allowed := int64(0)
		if wc.age > 0 {
			allowed = 1
		}
		add(wc.use.db.updates <= allowed && wc.res.errors == 0,
			fmt.Sprintf("a stream on one session last seen %v ago writes ≤ %d time(s)", wc.age, allowed),
			"%d update(s) for %d requests at c=%d", wc.use.db.updates, wc.res.sent, wc.conc)
	}
	for _, c := range r.cfg.loginConc {
		x, ceil := r.login[c], r.bcrypt[c]
		if x == nil || ceil == nil {
			continue
		}
		q := ratioOf(x.res.rate(), ceil.res.rate())
		h := ceil.res.pct(.5)
		bound := x.wait + 2*h
		add(q >= loginTarget && x.res.errors == 0 && x.res.pct(.99) <= bound,
			fmt.Sprintf("`login` c=%d ≥ %.1f× bcrypt ceiling, no errors, p99 ≤ queue wait + 2 hash times", c, loginTarget),
			"%.2f× (%.1f vs %.1f/s), %d errors, p99 %s, bound %s = %s wait + 2 × %s hash; CPU per login %.2f× a hash's",
			q, x.res.rate(), ceil.res.rate(), x.res.errors, ms(x.res.pct(.99)), ms(bound), ms(x.wait), ms(h),
			ratioOf(cpuPerReq(x), cpuPerReq(ceil)))
	}
	for _, c := range r.cfg.conc {
		x, base := r.flood[c], r.session[c]
		if x == nil || base == nil {
			continue
		}
		q := ratioOf(x.res.pct(.99).Seconds(), base.res.pct(.99).Seconds())
		add(q <= floodTarget && x.res.errors+floodErrors(x) == 0,
			fmt.Sprintf("`session` c=%d p99 under a login flood ≤ %.0f× without", c, floodTarget),
			"%.2f× (%s vs %s)", q, ms(x.res.pct(.99)), ms(base.res.pct(.99)))
	}
	if w := r.wal; w != nil {
		q := ratioOf(w.row.res.pct(.99).Seconds(), w.base.res.pct(.99).Seconds())
		add(q <= floodTarget && w.row.res.errors+w.writes.errors == 0,
			fmt.Sprintf("`session` c=%d p99 beside %d clients' updateSessionData ≤ %.0f× without", w.row.conc, dataWriters, floodTarget),
			"%.2f× (%s vs %s); %.0f writes/s", q, ms(w.row.res.pct(.99)), ms(w.base.res.pct(.99)), w.writes.rate())
		if w.maxWAL >= 0 {
			add(w.maxWAL <= walLimit, fmt.Sprintf("embedded WAL during those writes ≤ %s", sizeMiB(walLimit)),
				"max %s, at the end %s", sizeMiB(w.maxWAL), sizeMiB(w.endWAL))
		}
	}
	if s, b := r.growthSession[0], r.growthSession[1]; s != nil && b != nil {
		q := ratioOf(b.res.rate(), s.res.rate())
		rq := ratioOf(r.growthRaw[1].res.rate(), r.growthRaw[0].res.rate())
		add(q >= growthTarget && b.res.errors == 0,
			fmt.Sprintf("`session` rate at %d sessions ≥ %.2f× at %d", r.cfg.growthBig, growthTarget, r.cfg.growthSmall),
			"%.2f× (%.0f vs %.0f/s); the raw look-up's: %.2f×", q, b.res.rate(), s.res.rate(), rq)
	}
	for _, x := range []struct {
		rows   [2]*row
		target string
		left   int // lost updates: ids of ended sessions still listed
	}{
		{r.growthList, fmt.Sprintf("`sessions` of a user with %d", fewSessions), 0},
		{r.growthDelete, fmt.Sprintf("`deleteOtherSessions` ending %d", fewSessions), r.growthLeft[0] + r.growthLeft[1]},
	} {
		s, b := x.rows[0], x.rows[1]
		if s == nil || b == nil {
			continue
		}
		q := ratioOf(b.res.rate(), s.res.rate())
		errs := s.res.errors + b.res.errors + x.left
		add(q >= ownDataTarget && errs == 0,
			fmt.Sprintf("%s: rate at %d sessions ≥ %.1f× at %d, no errors", x.target, r.cfg.growthBig, ownDataTarget, r.cfg.growthSmall),
			"%.2f× (%.0f vs %.0f/s), %d errors; CPU per request %.2f× at %d", q, b.res.rate(), s.res.rate(),
			errs, ratioOf(cpuPerReq(b), cpuPerReq(s)), r.cfg.growthSmall)
	}
	out = append(out, sweepTargets(r)...)
	for _, c := range r.cfg.conc {
		ceil := r.ceiling[c]
		for _, x := range []struct {
			name string
			r    *row
		}{{"session", r.cachedSession[c]}, {"me", r.cachedMe[c]}} {
			if c == 1 || ceil == nil || x.r == nil {
				continue
			}
			q := ratioOf(x.r.res.rate(), ceil.res.rate())
			add(q >= cacheTarget && x.r.res.errors == 0,
				fmt.Sprintf("one process: `%s` c=%d ≥ %.1f× `{__typename}`, no errors", x.name, c, cacheTarget),
				"%.2f× (%.0f vs %.0f/s), %d errors; cache hits %.1f%%; CPU per request %.2f× `{__typename}`'s",
				q, x.r.res.rate(), ceil.res.rate(), x.r.res.errors, 100*x.r.hitRate, ratioOf(cpuPerReq(x.r), cpuPerReq(ceil)))
		}
	}
	if n := len(r.oneProcess); n > 0 {
		var peak uint64
		for _, x := range r.oneProcess {
			peak = max(peak, x.use.rss)
		}
		add(peak <= rssTarget, fmt.Sprintf("RSS of the one process (server + embedded engine) under `session` c=%d over %d sessions ≤ %d MiB",
			r.oneProcess[0].conc, r.memorySessions, rssTarget>>20), "%.0f MiB (largest sample over %d runs); cache hits %.1f%%",
			mib(peak), n, 100*r.oneProcess[n-1].hitRate)
		first, last := r.oneProcess[0].use.rss, r.oneProcess[n-1].use.rss
		q := ratioOf(float64(last), float64(first))
		add(q <= rssGrowth, fmt.Sprintf("no RSS growth across repeated runs (≤ +%.0f%%)", (rssGrowth-1)*100),
			"%.0f → %.0f MiB over %d runs (%+.0f%%)", mib(first), mib(last), n, (q-1)*100)
	}
	return out
}

// sweepTargets judges the sweeps: deleting the same expired sessions
// costs the same beside growth-big live sessions as beside growth-small
// (time, and database commands), each pass deletes exactly what was due,
// and a pass with nothing due reads no document.
func sweepTargets(r *results) []verdict {
	if len(r.sweeps) == 0 {
		return nil
	}
	small, big := r.cfg.growthSmall, r.cfg.growthBig
	var took [2][]time.Duration
	var cpu [2][]float64 // the engine's
	var cmds [2]int64    // the most a pass of each size sent
	exact := true
	var idle sweepCost // the last pass beside growth-big with nothing due
	for _, s := range r.sweeps {
		exact = exact && s.deleted == int64(s.due) && s.gone == int64(s.due) && s.left == 0
		i := 0
		if s.live == big {
			i = 1
		}
		if s.due == 0 {
			if i == 1 {
				idle = s
			}
			continue
		}
		took[i] = append(took[i], s.took)
		cpu[i] = append(cpu[i], s.cpuEngine)
		cmds[i] = max(cmds[i], s.db.reads+s.db.writes)
	}
	if len(took[0]) == 0 || len(took[1]) == 0 {
		return nil
	}
	ts, tb := median(took[0]), median(took[1])
	q := ratioOf(ts.Seconds(), tb.Seconds())
	cq := ratioOf(float64(cmds[1]), float64(cmds[0]))
	due := r.cfg.growthExpired
	return []verdict{
		{
			target: fmt.Sprintf("a sweep of %d expired sessions: time beside %d live ÷ beside %d ≥ %.1f× (median of %d), "+
				"exactly the due sessions deleted (and unlisted), database commands the same (≤ %.0f%% more)", due, small, big, ownDataTarget, len(took[1]), 100*(sweepCommands-1)),
			measured: fmt.Sprintf("%.2f× (%s vs %s; engine CPU %.2f vs %.2f s); exactly the due deleted and unlisted: %v; "+
				"%d vs %d commands (%.1f per deleted session)", q, ms(ts), ms(tb), median(cpu[0]), median(cpu[1]),
				exact, cmds[0], cmds[1], ratioOf(float64(cmds[1]), float64(due))),
			ok: q >= ownDataTarget && exact && cq <= sweepCommands,
		},
		{
			target:   fmt.Sprintf("a sweep with nothing due beside %d sessions reads no document", big),
			measured: fmt.Sprintf("%d reads, %d writes, deleted %d, %s", idle.db.reads, idle.db.writes, idle.deleted, ms(idle.took)),
			ok:       idle.db.reads == 0 && idle.db.writes == 0 && idle.deleted == 0,
		},
	}
}

// median returns the middle of xs (the upper one of an even count).
func median[T cmp.Ordered](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func floodErrors(x *row) int {
	if x.flood == nil {
		return 0
	}
	return x.flood.errors
}

func ms(d time.Duration) string {
	f := float64(d) / float64(time.Millisecond)
	switch {
	case f >= 100:
		return fmt.Sprintf("%.0f ms", f)
	case f >= 10:
		return fmt.Sprintf("%.1f ms", f)
	}
	return fmt.Sprintf("%.2f ms", f)
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
