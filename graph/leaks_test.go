package graph_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"gatehouse/auth"
	"gatehouse/graph"
	"gatehouse/graph/model"
)

// Neither responses nor logs ever carry a password, a hash or a token
// (other than AuthPayload.token).
func TestNoSecretsLeak(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client()
	reg := c.register(t, "leak", pw)
	u, _ := e.store.UserByKey(context.Background(), "leak")
	c.do(t, loginQuery, map[string]any{"u": "leak", "p": "wrong password"})
	var everything strings.Builder
	for _, q := range []string{introspectionQuery, `{ me { id username createdAt } sessions { ` + sessionFields + ` } session { id } }`} {
		r := c.do(t, q, nil)
		everything.Write(r.Data)
		fmt.Fprint(&everything, r.Errors)
	}
	secret := strings.SplitN(reg.Token, ".", 2)[1]
	for name, s := range map[string]string{"password": pw, "hash": u.PasswordHash, "secret": secret} {
		if strings.Contains(everything.String(), s) {
			t.Errorf("a response contains the %s", name)
		}
		if strings.Contains(e.logs.String(), s) {
			t.Errorf("the log contains the %s", name)
		}
	}
	if strings.Contains(everything.String(), "passwordHash") || strings.Contains(everything.String(), "secretHash") {
		t.Error("the schema exposes a hash field")
	}
}

// With introspection off, the schema does not leak through the back door:
// __schema and __type are a validation error (one per field, as Apollo
// Server answers), not a run that logs an internal error per field, and
// validation errors suggest no names.
func TestAttackIntrospectionOff(t *testing.T) {
	t.Parallel()
	open := newEnv(t)
	closed := newEnv(t, func(_ *auth.Config, o *graph.Options) { o.NoIntrospection = true })

	var aliases strings.Builder
	aliases.WriteString("{")
	for i := range 30 {
		fmt.Fprintf(&aliases, " a%d: __schema { types { name } }", i)
	}
	aliases.WriteString(" }")
	for _, tc := range []struct {
		name, query string
		errors      int // at least; a fragment's fields are validated where it is spread too
	}{
		{"30 aliases of __schema", aliases.String(), 30},
		{"__type", `{ __type(name: "User") { fields { name } } }`, 1},
		{"in a fragment", `query { ...F } fragment F on Query { __schema { queryType { name } } }`, 1},
		{"in an inline fragment", `{ ... on Query { __schema { queryType { name } } } }`, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := closed.client()
			id := "introspection-" + strings.ReplaceAll(tc.name, " ", "-")
			c.header.Set("X-Request-Id", id)
			r := c.do(t, tc.query, nil)
			if r.status != http.StatusUnprocessableEntity || len(r.Errors) < tc.errors || string(r.Data) != "null" && r.Data != nil {
				t.Errorf("status %d, %d errors, data %s; want 422, %d or more errors, no data", r.status, len(r.Errors), r.Data, tc.errors)
			}
			for _, e := range r.Errors {
				if e.Extensions["code"] != "GRAPHQL_VALIDATION_FAILED" || !strings.Contains(e.Message, "introspection") {
					t.Errorf("error %q %v, want GRAPHQL_VALIDATION_FAILED saying introspection is off", e.Message, e.Extensions)
				}
			}
			// The access log line is written as the response leaves; wait
			// for it, then count every line about this request.
			access := "msg=request id=" + id + " "
			for deadline := time.Now().Add(10 * time.Second); !strings.Contains(closed.logs.String(), access) && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
			var lines []string
			for line := range strings.Lines(closed.logs.String()) {
				if strings.Contains(line, "id="+id+" ") {
					lines = append(lines, line)
				}
			}
			if len(lines) != 1 || !strings.Contains(lines[0], access) || !strings.Contains(lines[0], "level=INFO") {
				t.Errorf("log lines about the request: %q; want only its access line", lines)
			}
		})
	}
	if logs := closed.logs.String(); strings.Contains(logs, "level=ERROR") || strings.Contains(logs, "level=WARN") {
		t.Errorf("refused introspection logged a warning or an error:\n%s", logs)
	}

	// Each of these makes a rule of gqlparser's suggest a name, as the
	// open server shows; the closed one names nothing.
	for _, q := range []string{
		`{ sesion { id } }`,                       // field
		`{ session(idd: "x") { id } }`,            // argument
		`{ me @include(iff: true) { id } }`,       // directive argument
		`{ me }`,                                  // scalar leaf
		`query { ...F } fragment F on Usr { id }`, // type
	} {
		if r := open.client().do(t, q, nil); !strings.Contains(fmt.Sprint(r.Errors), "Did you mean") {
			t.Errorf("%s: the open server suggests nothing (%v): the case tests nothing", q, r.Errors)
		}
		r := closed.client().do(t, q, nil)
		if len(r.Errors) == 0 || strings.Contains(fmt.Sprint(r.Errors), "Did you mean") {
			t.Errorf("%s: %v, want errors without a suggestion", q, r.Errors)
		}
		for _, e := range r.Errors {
			if e.Extensions["code"] != "GRAPHQL_VALIDATION_FAILED" {
				t.Errorf("%s: %q has code %v", q, e.Message, e.Extensions["code"])
			}
		}
	}
	var out struct {
		Me       *model.User
		Typename string `json:"__typename"`
	}
	closed.client().ok(t, `{ __typename me { id } }`, nil, &out) // what Apollo Client adds still works
	if out.Typename != "Query" {
		t.Errorf("__typename = %q, want Query", out.Typename)
	}
}
