package graph_test

import (
	"testing"
	"time"
)

// cached makes the next requests of c's session be served from the session
// cache, and checks that they are: one request fills it, the next hits.
func (c *client) cached(t *testing.T) {
	t.Helper()
	c.me(t)
	before := c.e.store.CacheStats().Hits
	if c.me(t) == "" {
		t.Fatal("signed out before the change")
	}
	if c.e.store.CacheStats().Hits == before {
		t.Fatal("the session was not served from the cache")
	}
}

// sessionData returns the data of session id as c reads it (its own
// session for ""), or nil when c reads no such session.
func (c *client) sessionData(t *testing.T, id string) map[string]any {
	t.Helper()
	var out struct{ Session *sessionWithData }
	vars := map[string]any{}
	if id != "" {
		vars["id"] = id
	}
	c.ok(t, `query($id: ID) { session(id: $id) { data } }`, vars, &out)
	if out.Session == nil {
		return nil
	}
	return out.Session.Data
}

// twoDevices signs ada up on a laptop and in on a phone, whose session
// is then served from the cache.
func twoDevices(t *testing.T) (e *env, laptop, phone *client, phoneID string) {
	t.Helper()
	e = newEnv(t)
	laptop, phone = e.client(), e.client()
	laptop.register(t, "ada", "correct horse")
	phoneID = phone.login(t, "ada", "correct horse").Session.ID
	phone.cached(t)
	return e, laptop, phone, phoneID
}

// TestCacheIsCoherent: with the session cache on (as the embedded server
// runs it) and the phone's session in it, every change to that session
// made through the API is honoured by the phone's very next request.
func TestCacheIsCoherent(t *testing.T) {
	t.Parallel()
	ended := []struct {
		name   string
		change func(t *testing.T, e *env, laptop, phone *client, phoneID string)
	}{
		{"revoked from another device", func(t *testing.T, _ *env, laptop, _ *client, phoneID string) {
			laptop.ok(t, `mutation($id: ID) { deleteSession(id: $id) }`, map[string]any{"id": phoneID}, &struct{}{})
		}},
		{"signed out", func(t *testing.T, _ *env, _, phone *client, _ string) {
			phone.ok(t, `mutation { deleteSession }`, nil, &struct{}{})
		}},
		{"signed out everywhere else", func(t *testing.T, _ *env, laptop, _ *client, _ string) {
			laptop.ok(t, `mutation { deleteOtherSessions }`, nil, &struct{}{})
		}},
		{"password changed", func(t *testing.T, _ *env, laptop, _ *client, _ string) {
			laptop.changePassword(t, "correct horse", "battery staple")
		}},
		{"second factor enabled", func(t *testing.T, _ *env, laptop, _ *client, _ string) {
			laptop.enableTOTP(t, "correct horse")
		}},
		{"expired", func(t *testing.T, e *env, _, _ *client, _ string) {
			e.clock.Advance(time.Hour) // the TTL, since its last use
		}},
	}
	for _, tc := range ended {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, laptop, phone, phoneID := twoDevices(t)
			tc.change(t, e, laptop, phone, phoneID)
			if got := phone.me(t); got != "" {
				t.Errorf("the phone's next request after the change is signed in as %q", got)
			}
			if r := phone.do(t, `mutation { updateSessionData(data: {a: 1}) { id } }`, nil); r.code(t) != "UNAUTHENTICATED" {
				t.Errorf("a mutation after the change: %s, want UNAUTHENTICATED", r.code(t))
			}
			if n := e.sessionCount(); n != 1 {
				t.Errorf("%d sessions stored, want 1: the laptop's", n)
			}
		})
	}

	t.Run("data updated", func(t *testing.T) {
		t.Parallel()
		_, laptop, phone, phoneID := twoDevices(t)
		laptop.sessionData(t, phoneID) // the laptop reads it too: cached
		phone.ok(t, `mutation { updateSessionData(data: {theme: "dark"}) { id } }`, nil, &struct{}{})
		if got := phone.sessionData(t, ""); got["theme"] != "dark" {
			t.Errorf("the phone's next read of its data: %v, want theme dark", got)
		}
		if got := laptop.sessionData(t, phoneID); got["theme"] != "dark" {
			t.Errorf("the laptop's next read of the phone's data: %v, want theme dark", got)
		}
	})
}
