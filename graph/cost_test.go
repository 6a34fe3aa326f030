package graph_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// costShape is a request any anonymous client can send, made distinct by
// its number so that no cache spares its cost.
type costShape struct {
	name string
	// body is the i-th request's JSON body.
	body func(i int) []byte
	// code is the error code the answer carries; "" for none.
	code string
	// signedIn sends the request with a session's bearer token.
	signedIn bool
}

// query is a shape that sends q with a numbered comment appended.
func query(name, q, code string) costShape {
	quoted, _ := json.Marshal(q + "\n#")
	head := `{"query":` + string(quoted[:len(quoted)-1]) // to the number
	return costShape{name: name, code: code, body: func(i int) []byte {
		return fmt.Appendf(nil, `%s%d"}`, head, i)
	}}
}

func gqlBody(q string, vars map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{"query": q, "variables": vars})
	return b
}

// ordinary is the yardstick: an anonymous { me { id } }, the query a
// signed-out page sends. It is the same text every time, as real clients
// send, so the parsed-query cache serves it.
var ordinary = costShape{name: "ordinary", body: func(int) []byte { return gqlBody("{ me { id } }", nil) }}

// signedIn is the same query signed in: it looks the session up in the
// database, as most requests do.
var signedIn = costShape{name: "ordinary, signed in", signedIn: true, body: ordinary.body}

// repeatedFields is the query of issue 16: 54 KB, 4,900 fields, which
// cost a second of CPU before the field limit refused it.
var repeatedFields = query("54 KB of repeated fields", "{ me { "+strings.Repeat("createdAt ", 4900)+"} }", "GRAPHQL_PARSE_FAILED")

// costShapes are the most expensive requests found for an anonymous
// client, each within the body limit and, where it says so, just within
// the limits that stop the others, so that it gets as far as it can.
func costShapes() []costShape {
	var aliasedTypes strings.Builder
	for i := range 4 {
		fmt.Fprintf(&aliasedTypes, "t%d: types { ...FullType } ", i)
	}
	var aliases, ops, vars, uses, chain, fanout, spreads, typeTrees strings.Builder
	for i := range 31 {
		fmt.Fprintf(&aliases, "a%d: __typename ", i)
	}
	for i := range 100 {
		fmt.Fprintf(&ops, "query Q%d { me { id } } ", i)
	}
	for i := range 80 {
		fmt.Fprintf(&vars, "$v%d: Int ", i)
	}
	for range 300 {
		uses.WriteString("$v79 ")
	}
	for i := range 30 {
		fmt.Fprintf(&chain, "fragment F%d on Query { ... on Query { ...F%d } } ", i, i+1)
	}
	for i := range 20 {
		fmt.Fprintf(&fanout, "...G%d ", i)
		fmt.Fprintf(&spreads, "...S%d ", i)
	}
	fanout.WriteString("} ")
	spreads.WriteString("} ")
	for i := range 20 {
		fmt.Fprintf(&fanout, "fragment G%d on Query { me { id username createdAt } session { id } } ", i)
		fmt.Fprintf(&spreads, "fragment S%d on Query { s%d: me { id username createdAt } } ", i, i)
	}
	for i := range 25 {
		fmt.Fprintf(&typeTrees, "t%d: __type(name: \"Session\") { ...T } ", i)
	}
	return []costShape{
		// Refused before validation.
		repeatedFields,
		query("1,000 tokens of repeated fields", "{ me { "+strings.Repeat("id ", 990)+"} }", "FIELD_LIMIT_EXCEEDED"),
		query("a syntax error after 1,000 tokens", "{ me { "+strings.Repeat("id ", 990)+"(", "GRAPHQL_PARSE_FAILED"),
		query("too many aliases", "{ "+aliases.String()+"}", "FIELD_LIMIT_EXCEEDED"),
		query("deep nesting", "{ __schema { types { fields { type "+strings.Repeat("{ ofType ", 320)+"{ name }"+strings.Repeat(" }", 320)+" } } } }", "DEPTH_LIMIT_EXCEEDED"),
		query("fragment bomb", `{ ...F0 } fragment F0 on Query { ...F1 ...F1 ...F1 } fragment F1 on Query { ...F2 ...F2 ...F2 }
			fragment F2 on Query { ...F3 ...F3 ...F3 } fragment F3 on Query { ...F4 ...F4 ...F4 } fragment F4 on Query { ...F5 ...F5 ...F5 }
			fragment F5 on Query { me { id username createdAt } }`, "FIELD_LIMIT_EXCEEDED"),
		query("fragment cycle", "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }", "FIELD_LIMIT_EXCEEDED"),
		query("fragment chain", "{ ...F0 } "+chain.String()+"fragment F30 on Query { me { id } }", "FIELD_LIMIT_EXCEEDED"),
		query("fragment fan-out", "{ "+fanout.String(), "FIELD_LIMIT_EXCEEDED"),
		query("aliased introspection", "{ __schema { "+aliasedTypes.String()+"} } "+introspectionQuery[strings.Index(introspectionQuery, "fragment FullType"):], "FIELD_LIMIT_EXCEEDED"),
		query("25 aliased type trees", "{ "+typeTrees.String()+"} fragment T on __Type { kind name fields { name type { ...R } } interfaces { ...R } } "+
			"fragment R on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } }", "FIELD_LIMIT_EXCEEDED"),
		{name: "60 KB of numbers in variables", code: "BAD_REQUEST", body: func(i int) []byte {
			return gqlBody("{ me { id } }", map[string]any{"x": i, "n": json.RawMessage("[" + strings.Repeat("1,", 30<<10) + "1]")})
		}},
		// Within the limits: validated (and refused there, or run).
		query("overlapping fields at the limit", "{ "+strings.Repeat("me { id } ", 14)+"}", ""),
		query("overlapping fragments at the limit", "{ "+spreads.String(), ""),
		query("100 operations", ops.String(), "GRAPHQL_VALIDATION_FAILED"),
		query("repeated directives", "{ me { id "+strings.Repeat("@skip(if: false) ", 140)+"} }", "GRAPHQL_VALIDATION_FAILED"),
		query("repeated arguments", "{ session("+strings.Repeat(`id: "x" `, 330)+") { id } }", "GRAPHQL_VALIDATION_FAILED"),
		query("big list literal", "mutation { updateSessionData(data: {a: ["+strings.Repeat("1 ", 980)+"]}) { id } }", "UNAUTHENTICATED"),
		query("unused variables", "query("+vars.String()+") { me { id } }", "GRAPHQL_VALIDATION_FAILED"),
		query("variable uses", "mutation("+vars.String()+") { updateSessionData(data: {a: ["+uses.String()+"]}) { id } }", "GRAPHQL_VALIDATION_FAILED"),
		query("60 KB comment", "{ me { id } }\n#"+strings.Repeat("x", 60<<10), ""),
		query("60 KB of whitespace", "{ me { id } }"+strings.Repeat(" ", 60<<10), ""),
		{name: "9,000 numbers in variables", body: func(i int) []byte {
			return gqlBody("{ me { id } }", map[string]any{"x": i, "n": json.RawMessage("[" + strings.Repeat("1,", 9000) + "1]")})
		}},
		query("full introspection", introspectionQuery, ""),
		query("full introspection and a type", strings.Replace(introspectionQuery, "__schema {", `__type(name: "Session") { ...FullType } __schema {`, 1), ""),
	}
}

// costClient sends requests to one gatehouse and measures the CPU they
// cost.
type costClient struct {
	// send sends body and returns the answer's status and first bytes.
	send  func(tb testing.TB, body []byte, signedIn bool) (int, []byte)
	token string
}

// inProcess calls the handler directly: the cost of the GraphQL layer
// alone, without the HTTP server's own work per request.
func inProcess(h http.Handler, token string) costClient {
	return costClient{token: token, send: func(tb testing.TB, body []byte, signedIn bool) (int, []byte) {
		r := httptest.NewRequest(http.MethodPost, "/query", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		if signedIn {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		w := &discardWriter{h: http.Header{}}
		h.ServeHTTP(w, r)
		return w.status, w.body
	}}
}

// overHTTP sends requests to url through a real HTTP server (and client,
// whose work counts too, in this process).
func overHTTP(url, token string) costClient {
	return costClient{token: token, send: func(tb testing.TB, body []byte, signedIn bool) (int, []byte) {
		r, _ := http.NewRequest(http.MethodPost, url+"/query", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		if signedIn {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			tb.Fatal(err)
		}
		defer res.Body.Close()
		answer, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		_, _ = io.Copy(io.Discard, res.Body)
		return res.StatusCode, answer
	}}
}

// serve sends body and returns the answer's first error code ("" for
// none) and its first bytes.
func (c costClient) serve(tb testing.TB, s costShape, body []byte) (code string, answer []byte) {
	status, answer := c.send(tb, body, s.signedIn)
	if status >= 500 {
		tb.Fatalf("%s: status %d: %s", s.name, status, answer)
	}
	// The answer may be cut; a code is near its start.
	if i := bytes.Index(answer, []byte(`"code":"`)); i >= 0 {
		rest := answer[i+8:]
		return string(rest[:max(0, bytes.IndexByte(rest, '"'))]), answer
	}
	return "", answer
}

// requests numbers the requests of every shape, so that none repeats
// another.
var requests atomic.Int64

// cpuPerRequest is the CPU time (the whole process's, garbage collection
// included) that n requests of shape take, each distinct, per request.
func (c costClient) cpuPerRequest(tb testing.TB, s costShape, n int) time.Duration {
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = s.body(int(requests.Add(1)))
	}
	start := cpuTime(tb)
	for _, b := range bodies {
		c.serve(tb, s, b)
	}
	return (cpuTime(tb) - start) / time.Duration(n)
}

func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// costRatio is what a request of shape costs in CPU as a multiple of an
// ordinary request, measured in alternating rounds of n requests each:
// the least of each over the rounds, the least disturbed by whatever else
// the machine runs.
func (c costClient) costRatio(tb testing.TB, s costShape, rounds, n int) (ratio float64, cost time.Duration) {
	if got, answer := c.serve(tb, s, s.body(int(requests.Add(1)))); got != s.code {
		tb.Fatalf("%s: code %q, want %q: %s", s.name, got, s.code, answer)
	}
	base := time.Hour
	cost = time.Hour
	for range rounds {
		base = min(base, c.cpuPerRequest(tb, ordinary, n))
		cost = min(cost, c.cpuPerRequest(tb, s, n))
	}
	return float64(cost) / float64(max(base, time.Microsecond)), cost
}

// BenchmarkRequestCost reports, for each of the most expensive requests
// found (costShapes), its CPU cost as a multiple of an ordinary anonymous
// { me { id } } measured in the same run: called in process
// (x-ordinary), the GraphQL layer's own cost, and through a real HTTP
// server (x-ordinary-http), what a server spends; and the CPU per request
// in process (ns/req). Ratios, not times, are the result: machines differ.
//
//	go test -run '^$' -bench RequestCost ./graph
func BenchmarkRequestCost(b *testing.B) {
	e := newHandlerEnv(b)
	srv := httptest.NewServer(e.h)
	b.Cleanup(srv.Close)
	direct, viaHTTP := inProcess(e.h, e.token), overHTTP(srv.URL, e.token)
	for _, s := range append([]costShape{ordinary, signedIn}, costShapes()...) {
		b.Run(s.name, func(b *testing.B) {
			var ratio, ratioHTTP float64
			var cost time.Duration
			for b.Loop() {
				ratio, cost = direct.costRatio(b, s, 10, 10)
				ratioHTTP, _ = viaHTTP.costRatio(b, s, 10, 10)
			}
			b.ReportMetric(ratio, "x-ordinary")
			b.ReportMetric(ratioHTTP, "x-ordinary-http")
			b.ReportMetric(float64(cost.Nanoseconds()), "ns/req")
		})
	}
}

// Refusing a request costs a bounded multiple of an ordinary request,
// whatever its shape: every shape that gatehouse refuses, measured
// through the real server against { me { id } } in the same test. The
// bound is generous, for a busy machine: the worst measured is about 10
// times, and the quadratic validation this guards against cost 5,000
// times (a second for the 54 KB query of repeated fields).
func TestAttackRefusalCost(t *testing.T) {
	// Not parallel: CPU time is the whole process's.
	const bound = 50
	c := overHTTP(newEnv(t).url, "")
	early := map[string]bool{"BAD_REQUEST": true, "GRAPHQL_PARSE_FAILED": true, "DEPTH_LIMIT_EXCEEDED": true, "FIELD_LIMIT_EXCEEDED": true}
	for _, s := range costShapes() {
		if !early[s.code] {
			continue // validated, and answered or refused then
		}
		ratio, cost := c.costRatio(t, s, 3, 5)
		t.Logf("%s: %v, %.1f times an ordinary request", s.name, cost, ratio)
		if ratio > bound {
			t.Errorf("%s costs %.0f times an ordinary request (%v), want at most %d", s.name, ratio, cost, bound)
		}
	}
}

// A stream of unique large queries does not grow the heap: the caches are
// bounded in bytes and keep only documents within the limits. 1,000
// distinct refused 27 KB queries grew the process by a gigabyte when the
// caches counted entries and kept refused documents; then 100 distinct
// accepted 27 KB documents of 1,000 tokens, each also stored under its
// APQ hash, the most the caches can be made to hold.
func TestAttackUniqueQueriesMemory(t *testing.T) {
	// Not parallel: the heap is the whole process's.
	e := newHandlerEnv(t)
	c := inProcess(e.h, "")
	refused := query("27 KB of repeated fields", "{ me { "+strings.Repeat("createdAt ", 2450)+"} }", "GRAPHQL_PARSE_FAILED")
	accepted := costShape{name: "27 KB accepted, with its APQ hash", code: "UNAUTHENTICATED", body: func(i int) []byte {
		q := fmt.Sprintf("mutation { updateSessionData(data: {a: [%s]}) { id } }\n#%d %s", strings.Repeat("1 ", 980), i, strings.Repeat("x", 25<<10))
		sum := sha256.Sum256([]byte(q))
		b, _ := json.Marshal(map[string]any{"query": q, "extensions": map[string]any{
			"persistedQuery": map[string]any{"version": 1, "sha256Hash": hex.EncodeToString(sum[:])},
		}})
		return b
	}}
	for _, s := range []costShape{refused, accepted} {
		if got, answer := c.serve(t, s, s.body(0)); got != s.code {
			t.Fatalf("%s: code %q, want %q: %s", s.name, got, s.code, answer)
		}
	}
	before, start := liveHeap(), time.Now()
	for i := range 1000 {
		c.serve(t, refused, refused.body(i+1))
	}
	afterRefused, refusing := liveHeap(), time.Since(start)
	start = time.Now()
	for i := range 100 {
		c.serve(t, accepted, accepted.body(i+1))
	}
	after := liveHeap()
	runtime.KeepAlive(e) // and its caches, until measured
	t.Logf("live heap %d MiB; after 1,000 refused queries (%v) %+d KiB; after 100 accepted (%v) %+d KiB",
		before>>20, refusing, (afterRefused-before)>>10, time.Since(start), (after-before)>>10)
	if growth := afterRefused - before; growth > 8<<20 {
		t.Errorf("refused queries grew the live heap by %d MiB, want at most 8: something keeps them", growth>>20)
	}
	if growth := after - before; growth > 64<<20 {
		t.Errorf("live heap grew by %d MiB, want at most 64", growth>>20)
	}
}

// liveHeap is the bytes of live heap objects, after a collection.
func liveHeap() int64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC() // the first may leave finalizers' objects for the second
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
