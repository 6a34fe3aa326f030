package graph_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
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
