package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"gatehouse/auth"
	"gatehouse/storage"
)

// Users stored by a version that did not claim look-alike names get their
// claims when the server starts: a look-alike of one is refused from the
// first request on, and look-alikes that already exist are logged and keep
// signing in.
func TestStartClaimsExistingNames(t *testing.T) {
	env := testEnv(t)
	st, closeDB := openDataDir(t, env["DATA_DIR"])
	hash, err := auth.HashPassword("correct horse", 4)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"alice", "\u0430lice"} { // the second with a Cyrillic а
		u := &storage.User{Key: name, ID: auth.NewID(), Name: name, PasswordHash: hash, CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
		if err := st.CreateUser(context.Background(), u); err != nil {
			t.Fatal(err)
		}
	}
	closeDB()

	g := start(t, env)
	if !strings.Contains(g.out.String(), "existing usernames look alike") {
		t.Errorf("the existing look-alikes are not logged:\n%s", g.out)
	}
	r := g.query("", `mutation { register(username: "\u0251lice", password: "correct horse") { token } }`)
	if s := toJSON(r); !strings.Contains(s, "BAD_USER_INPUT") || !strings.Contains(s, "username taken") {
		t.Errorf("register a look-alike of alice: %s", s)
	}
	for _, name := range []string{"alice", "\u0430lice"} {
		r := g.query("", `mutation { login(username: "`+name+`", password: "correct horse") { token } }`)
		if !strings.Contains(toJSON(r), "token") {
			t.Errorf("login as %+q: %v", name, r)
		}
	}
}
