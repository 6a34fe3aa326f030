package main

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"gatehouse/internal/softauthn"
	"gatehouse/internal/testlog"
)

// With the default relying party (localhost), the playground's own origin,
// http://localhost:PORT, is allowed for passkeys, also when PORT=0 picks
// the port; another port is not.
func TestPasskeysOnTheDefaultOrigin(t *testing.T) {
	g := start(t, testEnv(t))
	u, _ := url.Parse(g.url)
	origin := "http://localhost:" + u.Port()
	token := dig(g.query("", `mutation { register(username: "pia", password: "correct horse") { token } }`), "register", "token")

	a := softauthn.New(origin)
	begin := g.query(token, `mutation { beginPasskeyRegistration { challengeId options } }`)
	id, options := challengeOf(t, begin, "beginPasskeyRegistration")
	cred, err := a.Create(options)
	if err != nil {
		t.Fatal(err)
	}
	r := g.gql(token, `mutation($id: ID!, $c: JSONObject!) { finishPasskeyRegistration(challengeId: $id, credential: $c) { name } }`,
		map[string]any{"id": id, "c": json.RawMessage(cred)})
	if r["errors"] != nil {
		t.Fatalf("registration on %s: %v\n%s", origin, r, g.out)
	}

	login := func(a *softauthn.Authenticator) map[string]any {
		id, options := challengeOf(t, g.query("", `mutation { beginPasskeyLogin { challengeId options } }`), "beginPasskeyLogin")
		cred, err := a.Get(options)
		if err != nil {
			t.Fatal(err)
		}
		return g.gql("", `mutation($id: ID!, $c: JSONObject!) { finishPasskeyLogin(challengeId: $id, credential: $c) { session { factors } } }`,
			map[string]any{"id": id, "c": json.RawMessage(cred)})
	}
	if r := login(a); toJSON(r) != `{"data":{"finishPasskeyLogin":{"session":{"factors":["PASSKEY"]}}}}` {
		t.Fatalf("sign-in on %s: %v", origin, r)
	}
	other := softauthn.New("http://localhost:1")
	other.Import(a.Credentials()[0])
	if r := login(other); toJSON(r["data"]) != "null" {
		t.Fatalf("sign-in from another origin: %v", r)
	}
}

func challengeOf(t *testing.T, r map[string]any, field string) (string, []byte) {
	t.Helper()
	data, _ := r["data"].(map[string]any)
	c, _ := data[field].(map[string]any)
	id, _ := c["challengeId"].(string)
	options, err := json.Marshal(c["options"])
	if id == "" || err != nil {
		t.Fatalf("%s: %v", field, r)
	}
	return id, options
}

// `gatehouse user passkeys reset NAME` deletes a user's passkeys and ends
// its sessions, through the running server or with it stopped.
func TestUserPasskeysReset(t *testing.T) {
	env := testEnv(t)
	g := start(t, env)
	u, _ := url.Parse(g.url)
	a := softauthn.New("http://localhost:" + u.Port())
	token := dig(g.query("", `mutation { register(username: "planted", password: "correct horse") { token } }`), "register", "token")
	id, options := challengeOf(t, g.query(token, `mutation { beginPasskeyRegistration { challengeId options } }`), "beginPasskeyRegistration")
	cred, err := a.Create(options)
	if err != nil {
		t.Fatal(err)
	}
	if r := g.gql(token, `mutation($id: ID!, $c: JSONObject!) { finishPasskeyRegistration(challengeId: $id, credential: $c) { id } }`,
		map[string]any{"id": id, "c": json.RawMessage(cred)}); r["errors"] != nil {
		t.Fatal(r)
	}
	var out testlog.Buffer
	cmd := func(args ...string) error {
		return run(context.Background(), append([]string{"gatehouse"}, args...), func(k string) string { return env[k] }, strings.NewReader(""), &out)
	}
	if err := cmd("user", "passkeys", "reset", "Planted"); err != nil || !strings.Contains(out.String(), `1 passkeys of "Planted" deleted; all of its sessions ended`) {
		t.Fatalf("user passkeys reset through the server: %v\n%s", err, &out)
	}
	if r := g.query(token, `{ me { username } }`); toJSON(r) != `{"data":{"me":null}}` {
		t.Errorf("a session survived: %v", r)
	}
	id, options = challengeOf(t, g.query("", `mutation { beginPasskeyLogin { challengeId options } }`), "beginPasskeyLogin")
	cred, _ = a.Get(options)
	if r := g.gql("", `mutation($id: ID!, $c: JSONObject!) { finishPasskeyLogin(challengeId: $id, credential: $c) { token } }`,
		map[string]any{"id": id, "c": json.RawMessage(cred)}); r["errors"] == nil {
		t.Errorf("the deleted passkey still signs in: %v", r)
	}
	g.stop()
	if err := cmd("user", "passkeys", "reset", "planted"); err != nil || !strings.Contains(out.String(), `0 passkeys of "planted" deleted`) {
		t.Errorf("user passkeys reset with the server stopped: %v\n%s", err, &out)
	}
	if err := cmd("user", "passkeys", "reset", "ghost"); err == nil || !strings.Contains(err.Error(), `no user "ghost"`) {
		t.Errorf("an unknown user: %v", err)
	}
}
