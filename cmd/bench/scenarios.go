package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"time"

	"gatehouse/auth"
	"gatehouse/storage"
)

// population is the main database's seeded data.
type population struct {
	users  []*storage.User // users[0] owns exactly the listed sessions
	all    sessionSet      // every seeded session, listed ones included
	lister sessionSet
	seen   time.Time // when they were last seen (seeded or refreshed)
}

// allPhases are the groups of scenarios, in the order they run.
var allPhases = []string{"reads", "writes", "logins", "lists", "growth", "oneprocess"}

// runAll runs the phases in order. On error it returns what it measured
// so far, with the error.
func (b *bench) runAll(ctx context.Context) (*results, error) {
	res := newResults(b.cfg)
	res.database = "embedded FerretDB v1.24.2 on SQLite, standalone (`gatehouse db`)"
	if b.engine == nil {
		res.database = "MONGODB_URI (engine not measured)"
	}
	defer func() { res.elapsed = time.Since(res.started) }()

	if err := b.useDatabase(ctx, mainDB); err != nil {
		return nil, err
	}
	pop, err := b.seedMain(ctx)
	if err != nil {
		return nil, err
	}
	phases := map[string]func(context.Context, *results, *population) error{
		"reads": b.reads, "writes": b.writeChecks, "logins": b.logins, "lists": b.lists,
		"growth": b.growth, "oneprocess": b.oneProcessPhase,
	}
	for _, name := range allPhases {
		if !contains(b.cfg.phases, name) {
			continue
		}
		if err := phases[name](ctx, res, pop); err != nil {
			res.notes = append(res.notes, "run stopped early: "+err.Error())
			return res, err
		}
	}
	return res, nil
}

func (b *bench) seedMain(ctx context.Context) (*population, error) {
	cfg := b.cfg
	t0 := time.Now()
	users, err := seedUsers(ctx, b.store, "bench-user", cfg.users, cfg.bcryptCost)
	if err != nil {
		return nil, fmt.Errorf("seed users: %w", err)
	}
	pop := &population{users: users}
	pop.lister, err = seedSessions(ctx, b.store, users[:1], listed, sessionTTL)
	if err != nil {
		return nil, fmt.Errorf("seed sessions: %w", err)
	}
	rest, err := seedSessions(ctx, b.store, users[1:], cfg.sessions-listed, sessionTTL)
	if err != nil {
		return nil, fmt.Errorf("seed sessions: %w", err)
	}
	pop.seen = time.Now()
	pop.all = sessionSet{
		tokens: append(append([]string{}, pop.lister.tokens...), rest.tokens...),
		ids:    append(append([]string{}, pop.lister.ids...), rest.ids...),
		owners: append(append([]string{}, pop.lister.owners...), rest.owners...),
	}
	if err := b.indexed(ctx); err != nil {
		return nil, err
	}
	b.progress("seeded %d users and %d sessions in %v", cfg.users, cfg.sessions, time.Since(t0).Round(time.Millisecond))
	return pop, nil
}

// freshen marks every seeded session as just seen, if they were seen more
// than a third of a touch interval ago, so that the read scenarios measure
// reads: their sessions would otherwise all fall due for a touch at the
// same moment, one interval after seeding, and a burst of writes would land
// in whichever scenario runs then. The writes check measures touches on
// purpose.
func freshen(ctx context.Context, st *storage.Store, pop *population, interval time.Duration) error {
	if time.Since(pop.seen) < interval/3 {
		return nil
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	prev := pop.seen.UTC().Add(sessionTTL)
	err := parallel(ctx, len(pop.all.ids), func(ctx context.Context, i int) error {
		sess := &storage.Session{ID: pop.all.ids[i], UserID: pop.all.owners[i], ExpiresAt: prev}
		return st.TouchSession(ctx, sess, now, now.Add(sessionTTL))
	})
	if err != nil {
		return fmt.Errorf("freshen sessions: %w", err)
	}
	pop.seen = time.Now()
	return nil
}

// uniform picks a random index below n for every request.
func uniform(n int) func(w, i int) int {
	return func(int, int) int { return rand.IntN(n) }
}

// gqlOp sends body with a random one of auths.
func (b *bench) gqlOp(body []byte, auths []string, want []byte, check func([]byte) error) op {
	gql := b.gql
	return func(ctx context.Context, w, i int) error {
		a := ""
		if len(auths) > 0 {
			a = auths[rand.IntN(len(auths))]
		}
		return gql.post(ctx, body, a, want, check)
	}
}

// loginOp logs the users in round-robin.
func (b *bench) loginOp(users []*storage.User) op {
	bodies := make([][]byte, len(users))
	for i, u := range users {
		bodies[i] = gqlBody(loginMutation, map[string]any{"u": u.Name, "p": benchPassword})
	}
	var next atomic.Uint64
	gql := b.gql
	return func(ctx context.Context, w, i int) error {
		return gql.post(ctx, bodies[next.Add(1)%uint64(len(bodies))], "", loginWant, nil)
	}
}

// load measures one scenario, adds it to res and reports it on the
// progress log.
func (b *bench) load(ctx context.Context, res *results, name string, conc int, span time.Duration, do op) (*row, error) {
	return b.loadAfter(ctx, res, name, conc, b.cfg.warmup, span, do)
}

// loadAfter is load with a warm-up of its own.
func (b *bench) loadAfter(ctx context.Context, res *results, name string, conc int, warmup, span time.Duration, do op) (*row, error) {
	return b.loadPrepared(ctx, res, name, conc, warmup, span, nil, do)
}

// loadPrepared is loadAfter with prep before each request, outside its
// time (see drivePrepared).
func (b *bench) loadPrepared(ctx context.Context, res *results, name string, conc int, warmup, span time.Duration, prep, do op) (*row, error) {
	r := &row{name: name, conc: conc}
	var err error
	r.use, err = b.measure(ctx, func() {
		r.res = drivePrepared(ctx, conc, window{warmup: warmup, span: span, max: b.cfg.maxRequests}, prep, do)
	})
	if err != nil {
		return nil, err
	}
	res.rows = append(res.rows, r)
	b.progress("%-34s c=%-3d %8.0f/s  p50 %-9v p99 %-9v errors %d%s", name, conc, r.res.rate(),
		r.res.pct(.5).Round(time.Microsecond), r.res.pct(.99).Round(time.Microsecond), r.res.errors, errSuffix(r.res))
	return r, ctx.Err()
}

func errSuffix(r *loadResult) string {
	if r.firstErr == "" {
		return ""
	}
	return " (first: " + r.firstErr + ")"
}

// reads runs, at each concurrency and side by side so that the ratios
// compare moments of the same noise: the raw look-up, session, me, and
// session under a login flood.
func (b *bench) reads(ctx context.Context, res *results, pop *population) error {
	cfg := b.cfg
	coll := b.raw.Database(b.db).Collection(sessionsCollection)
	sessionOp := b.gqlOp(sessionQuery, bearers(pop.all.tokens), sessionWant, nil)
	meOp := b.gqlOp(meQuery, bearers(pop.all.tokens), meWant, nil)
	rawOp := rawLookup(coll, pop.all.ids, uniform(len(pop.all.ids)))
	var err error
	for _, c := range cfg.conc {
		if err := freshen(ctx, b.store, pop, res.touchInterval); err != nil {
			return err
		}
		if res.raw[c], err = b.load(ctx, res, "raw look-up", c, cfg.span, rawOp); err != nil {
			return err
		}
		if res.session[c], err = b.load(ctx, res, "session", c, cfg.span, sessionOp); err != nil {
			return err
		}
		res.session[c].vs = ratio(res.session[c], res.raw[c], "raw look-up")
		if res.me[c], err = b.load(ctx, res, "me", c, cfg.span, meOp); err != nil {
			return err
		}
		res.me[c].vs = ratio(res.me[c], res.raw[c], "raw look-up")
		if res.flood[c], err = b.underFlood(ctx, res, pop, c, sessionOp); err != nil {
			return err
		}
		// Let the flood's aftermath (the bcrypt pool's extra Ps, the
		// engine's write-ahead log) settle before the next scenario.
		select {
		case <-time.After(floodSettle):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// floodSettle is the pause after a login flood.
const floodSettle = time.Second

// underFlood runs the session scenario at c while cfg.floodConc clients
// log in as fast as they can.
func (b *bench) underFlood(ctx context.Context, res *results, pop *population, c int, sessionOp op) (*row, error) {
	cfg := b.cfg
	var flood *loadResult
	floodDone := make(chan struct{})
	go func() {
		defer close(floodDone)
		flood = drive(ctx, cfg.floodConc, window{warmup: cfg.warmup, span: cfg.span, max: cfg.maxRequests},
			b.loginOp(pop.users[1:]))
	}()
	r, err := b.load(ctx, res, "session + login flood", c, cfg.span, sessionOp)
	<-floodDone
	if err != nil {
		return nil, err
	}
	r.flood = flood
	base := res.session[c]
	r.vs = fmt.Sprintf("p99 %.2f× without; flood: %.1f logins/s, %d errors",
		ratioOf(r.res.pct(.99).Seconds(), base.res.pct(.99).Seconds()), flood.rate(), flood.errors)
	return r, nil
}

// writeChecks streams session requests on one session that was just seen
// (no write is due) and on one last seen long ago (exactly one is), and
// counts the database writes each stream causes; then it measures session
// checks beside sustained data writes (underDataWrites).
func (b *bench) writeChecks(ctx context.Context, res *results, pop *population) error {
	c := maxOf(b.cfg.conc)
	for _, age := range []time.Duration{0, 5 * res.touchInterval} {
		seen := time.Now().UTC().Truncate(time.Millisecond).Add(-age)
		tok := auth.NewToken()
		if _, err := b.store.CreateSession(ctx, newSession(pop.users[1], tok, seen, seen.Add(sessionTTL))); err != nil {
			return err
		}
		name := "writes: one fresh session"
		if age > 0 {
			name = "writes: one stale session"
		}
		r, err := b.load(ctx, res, name, c, b.cfg.span,
			b.gqlOp(sessionQuery, bearers([]string{tok.String()}), sessionWant, nil))
		if err != nil {
			return err
		}
		after, err := b.store.SessionByID(ctx, tok.SessionID)
		if err != nil {
			return err
		}
		wc := &writeCheck{row: r, age: age, before: seen, after: after.LastSeenAt}
		allowed := 0
		if age > 0 {
			allowed = 1
		}
		r.vs = fmt.Sprintf("%d update(s) for %d requests (allowed: %d); lastSeenAt moved: %v",
			r.use.db.updates, r.res.sent, allowed, !wc.after.Equal(wc.before))
		res.writes = append(res.writes, wc)
	}
	return b.underDataWrites(ctx, res, pop)
}

// logins measures, at each concurrency, the bcrypt ceiling and then the
// logins, side by side so that the ratio compares moments of the same
// noise.
func (b *bench) logins(ctx context.Context, res *results, pop *population) error {
	cfg := b.cfg
	cores := runtime.NumCPU()
	hash := bcryptCompare([]byte(pop.users[0].PasswordHash))
	for _, c := range cfg.loginConc {
		ceil, err := b.load(ctx, res, "bcrypt ceiling", cores, cfg.loginSpan, hash)
		if err != nil {
			return err
		}
		ceil.vs = fmt.Sprintf("cost %d on all %d cores, in the load generator", cfg.bcryptCost, cores)
		h := ceil.res.pct(.5) // one hash, with every core hashing
		// The warm-up lasts a round of the queue at least, so that the
		// measured logins wait as long as they do in the steady state.
		warmup := max(cfg.warmup, h*time.Duration((c+cores-1)/cores))
		r, err := b.loginLoad(ctx, res, c, warmup, b.loginOp(pop.users[1:]))
		if err != nil {
			return err
		}
		r.vs = fmt.Sprintf("%s; p99 %s, bound %s = %s queue wait + 2 × %s hash", ratio(r, ceil, "bcrypt ceiling"),
			ms(r.res.pct(.99)), ms(r.wait+2*h), ms(r.wait), ms(h))
		res.bcrypt[c], res.login[c] = ceil, r
	}
	return nil
}

// loginLoad runs the login scenario, with its queue wait as the server
// measured it: the mean time the logins that got a bcrypt slot after the
// warm-up had waited for it.
func (b *bench) loginLoad(ctx context.Context, res *results, c int, warmup time.Duration, do op) (*row, error) {
	type scrape struct {
		seconds, count float64
		err            error
	}
	first := make(chan scrape, 1)
	t := time.AfterFunc(warmup, func() {
		var s scrape
		s.seconds, s.count, s.err = b.gql.bcryptWaits(ctx)
		first <- s
	})
	defer t.Stop()
	r, err := b.loadAfter(ctx, res, "login", c, warmup, b.cfg.loginSpan, do)
	if err != nil {
		return nil, err
	}
	s0 := <-first
	if s0.err != nil {
		return nil, s0.err
	}
	seconds, count, err := b.gql.bcryptWaits(ctx)
	if err != nil {
		return nil, err
	}
	r.wait = time.Duration(ratioOf(seconds-s0.seconds, count-s0.count) * float64(time.Second))
	return r, nil
}

// lists runs the raw list and sessions side by side at each concurrency:
// the user's list of ids, then each of its sessions by _id.
func (b *bench) lists(ctx context.Context, res *results, pop *population) error {
	cfg := b.cfg
	listOp := b.gqlOp(sessionsQuery, bearers(pop.lister.tokens), sessionsWant, countIDs(listed))
	var err error
	for _, c := range cfg.conc {
		if err := freshen(ctx, b.store, pop, res.touchInterval); err != nil {
			return err
		}
		if res.rawList[c], err = b.load(ctx, res, "raw list", c, cfg.span,
			rawList(b.raw.Database(b.db), pop.users[0].ID, listed)); err != nil {
			return err
		}
		if res.sessions[c], err = b.load(ctx, res, "sessions (10 listed)", c, cfg.span, listOp); err != nil {
			return err
		}
		res.sessions[c].vs = ratio(res.sessions[c], res.rawList[c], "raw list")
	}
	return nil
}

func ratio(r, base *row, name string) string {
	return fmt.Sprintf("%.2f× %s", ratioOf(r.res.rate(), base.res.rate()), name)
}

func ratioOf(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
