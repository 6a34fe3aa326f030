package graph_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"gatehouse/auth"
	"gatehouse/graph"
	"gatehouse/graph/model"
)

func TestAttackExpensiveQueries(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client()
	c.register(t, "deep", pw)
	nested := "{ me { id } }"
	for range 20 {
		nested = "{ __schema { types { fields { type " + strings.Repeat("{ ofType ", 14) + "{ name }" + strings.Repeat(" }", 14) + " } } } }"
	}
	var aliased strings.Builder
	aliased.WriteString("{")
	for i := range 40 {
		fmt.Fprintf(&aliased, " a%d: me { id }", i)
	}
	aliased.WriteString(" }")
	bomb := `query { ...F0 } fragment F0 on Query { ...F1 ...F1 ...F1 } fragment F1 on Query { ...F2 ...F2 ...F2 }
		fragment F2 on Query { ...F3 ...F3 ...F3 } fragment F3 on Query { ...F4 ...F4 ...F4 } fragment F4 on Query { ...F5 ...F5 ...F5 }
		fragment F5 on Query { me { id username createdAt } }`
	var huge strings.Builder
	huge.WriteString("{ me { ")
	for range 6000 {
		huge.WriteString("id ")
	}
	huge.WriteString("} }")
	for _, tc := range []struct{ name, query, code string }{
		{"deeply nested", nested, "DEPTH_LIMIT_EXCEEDED"},
		{"aliased to death", aliased.String(), "FIELD_LIMIT_EXCEEDED"},
		{"fragment bomb", bomb, "FIELD_LIMIT_EXCEEDED"},
		{"too many tokens", huge.String(), "GRAPHQL_PARSE_FAILED"},
		{"same-named fields", "{ me { " + strings.Repeat("id ", 25) + "} }", "FIELD_LIMIT_EXCEEDED"},
		{"fragment cycle", `{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }`, "FIELD_LIMIT_EXCEEDED"},
		{"page too big", `{ a: sessions(first: 100) { id user { id username createdAt } data createdAt lastSeenAt expiresAt current } b: sessions(first: 100) { id user { id username } data createdAt } }`, "COMPLEXITY_LIMIT_EXCEEDED"},
	} {
		r := c.do(t, tc.query, nil)
		if got := r.code(t); got != tc.code {
			t.Errorf("%s: code %q (%s), want %s", tc.name, got, r.Errors[0].Message, tc.code)
		}
	}
	// What clients really send passes: full introspection, a page of 100.
	var schema map[string]any
	c.ok(t, introspectionQuery, nil, &schema)
	if schema["__schema"] == nil {
		t.Error("introspection returned no schema")
	}
	var page struct{ Sessions []sessionWithData }
	c.ok(t, `{ sessions(first: 100) { `+sessionFields+` } }`, nil, &page)
}

func TestIntrospectionCanBeTurnedOff(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(_ *auth.Config, o *graph.Options) { o.NoIntrospection = true })
	r := e.client().do(t, `{ __schema { types { name } } }`, nil)
	if len(r.Errors) == 0 {
		t.Errorf("introspection answered: %s", r.Data)
	}
	var out struct{ Me *model.User }
	e.client().ok(t, `{ me { id } }`, nil, &out) // ordinary queries still work
}

// The document limits, on a server with small ones: each refuses what it
// should, with its code and before validation, counting every operation
// and fragment definition of the document as validation walks them.
func TestDocumentLimits(t *testing.T) {
	t.Parallel()
	small := graph.Limits{Tokens: 60, Depth: 4, Selections: 12, Aliases: 2, Overlaps: 3, Complexity: 100}
	e := newEnv(t, func(_ *auth.Config, o *graph.Options) { o.Limits = small })
	c := e.client()
	for _, tc := range []struct{ name, query, code string }{
		{"within every limit", `{ a: me { id } b: me { id } }`, ""},
		{"tokens", "{ me { " + strings.Repeat("id ", 60) + "} }", "GRAPHQL_PARSE_FAILED"},
		{"tokens, comments included", "{ me { id } }" + strings.Repeat("\n#", 60), "GRAPHQL_PARSE_FAILED"},
		{"depth", `{ __schema { types { fields { type { name } } } } }`, "DEPTH_LIMIT_EXCEEDED"},
		{"depth through a fragment", `{ __schema { ...S } } fragment S on __Schema { types { fields { type { name } } } }`, "DEPTH_LIMIT_EXCEEDED"},
		{"selections", `{ me { id username createdAt } session { id createdAt expiresAt lastSeenAt current } sessions { id current } }`, "FIELD_LIMIT_EXCEEDED"},
		{"selections of every operation", `query A { me { id username createdAt } session { id } } query B { me { id username createdAt } session { id current } }`, "FIELD_LIMIT_EXCEEDED"},
		{"selections of an unused fragment", `{ me { id } } fragment U on Query { me { id username createdAt } session { id createdAt expiresAt lastSeenAt current } sessions { id } }`, "FIELD_LIMIT_EXCEEDED"},
		{"aliases", `{ a: me { id } b: me { id } c: me { id } }`, "FIELD_LIMIT_EXCEEDED"},
		{"aliases in a fragment count where used", `{ ...F } fragment F on Query { a: me { id } b: me { id } }`, ""},
		{"an aliased introspection field", `{ s: __schema { queryType { name } } }`, "FIELD_LIMIT_EXCEEDED"},
		{"an alias under introspection", `{ __schema { ...S } } fragment S on __Schema { q: queryType { name } }`, "FIELD_LIMIT_EXCEEDED"},
		{"introspection", `{ __schema { queryType { name } } __type(name: "User") { name } }`, ""},
		{"same-named fields", `{ me { id } me { id } me { id } }`, "FIELD_LIMIT_EXCEEDED"},
		{"repeated fragment spreads", `{ ...A ...A ...A } fragment A on Query { __typename }`, "FIELD_LIMIT_EXCEEDED"},
		{"fragment cycle", `{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }`, "FIELD_LIMIT_EXCEEDED"},
	} {
		r := c.do(t, tc.query, nil)
		got := ""
		if len(r.Errors) > 0 {
			got = r.code(t)
		}
		if got != tc.code {
			t.Errorf("%s: code %q (%+v), want %q", tc.name, got, r.Errors, tc.code)
		}
	}

	// The same over GET.
	req, _ := http.NewRequest(http.MethodGet, e.url+"/query?query="+url.QueryEscape(`{ me { id } me { id } me { id } }`), nil)
	if r := c.send(t, req); r.code(t) != "FIELD_LIMIT_EXCEEDED" {
		t.Errorf("GET: %+v", r.Errors)
	}
}

// A query text that the limits refuse is not kept for APQ: its hash alone
// finds nothing afterwards.
func TestAPQKeepsNoRefusedQuery(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client()
	q := "{ me { " + strings.Repeat("id ", 300) + "} }"
	sum := sha256.Sum256([]byte(q))
	ext := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hex.EncodeToString(sum[:])}}
	send := func(body map[string]any) *response {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, e.url+"/query", bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		return c.send(t, req)
	}
	if r := send(map[string]any{"query": q, "extensions": ext}); r.code(t) != "FIELD_LIMIT_EXCEEDED" {
		t.Errorf("query with its hash: %+v", r.Errors)
	}
	if r := send(map[string]any{"extensions": ext}); r.code(t) != "PERSISTED_QUERY_NOT_FOUND" {
		t.Errorf("hash alone after a refusal: %+v", r.Errors)
	}
}

// One variable given to many fields is decoded once per field: the
// JSONObject arguments of a request are bounded in all, before any
// resolver runs, and nothing is stored.
func TestJSONArgumentsAreBoundedInAll(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	c.register(t, "wide", "correct horse")
	list := make([]any, 700)
	for i := range list {
		list[i] = 1
	}
	op := func(fields int) string {
		var b strings.Builder
		b.WriteString("mutation($d: JSONObject!) {")
		for i := range fields {
			fmt.Fprintf(&b, " f%d: updateSessionData(data: $d) { id }", i)
		}
		return b.String() + " }"
	}
	vars := map[string]any{"d": map[string]any{"a": list}} // 702 values
	r := c.do(t, op(30), vars)                             // 21,060 in all
	if r.code(t) != "BAD_USER_INPUT" || !strings.Contains(r.Errors[0].Message, "at most 20000 values") {
		t.Fatalf("30 fields sharing a 702-value variable: %+v, want BAD_USER_INPUT naming the limit", r.Errors)
	}
	var out struct{ Session sessionWithData }
	c.ok(t, `{ session { data } }`, nil, &out)
	if len(out.Session.Data) != 0 {
		t.Fatalf("the refused request stored %v", out.Session.Data)
	}
	c.ok(t, op(20), vars, &struct{}{}) // 14,040: within
}
