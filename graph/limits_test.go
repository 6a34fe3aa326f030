package graph_test

import (
	"fmt"
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
