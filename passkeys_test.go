package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"gatehouse/internal/softauthn"
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

// gql sends a query with variables.
func (g *gatehouse) gql(token, q string, vars map[string]any) map[string]any {
	g.t.Helper()
	body, _ := json.Marshal(map[string]any{"query": q, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, g.url+"/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		g.t.Fatal(err)
	}
	return out
}
