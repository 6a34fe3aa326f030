package graph_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"gatehouse/auth"
	"gatehouse/graph"
	"gatehouse/graph/model"
)

const pw = "correct horse"

// The whole life of an account, as a client sees it.
func TestAccountFlow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	laptop, phone := e.client(), e.client()

	var reg authPayload
	t.Run("register opens a first session", func(t *testing.T) {
		reg = laptop.register(t, "  Alice ", pw)
		s := reg.Session
		if s.User.Username != "Alice" {
			t.Errorf("username: got %q, want %q (trimmed, case kept)", s.User.Username, "Alice")
		}
		if !s.Current || s.ID == "" || !strings.HasPrefix(reg.Token, s.ID+".") {
			t.Errorf("session %+v and token %q do not belong together", s, reg.Token)
		}
		if want := e.clock.Now(); !s.CreatedAt.Equal(want) || !s.LastSeenAt.Equal(want) {
			t.Errorf("createdAt %v lastSeenAt %v, want both %v", s.CreatedAt, s.LastSeenAt, want)
		}
		if want := e.clock.Now().Add(time.Hour); !s.ExpiresAt.Equal(want) {
			t.Errorf("expiresAt: got %v, want %v (now + TTL)", s.ExpiresAt, want)
		}
		if s.UserAgent == nil || !strings.HasPrefix(*s.UserAgent, "Go-http-client") {
			t.Errorf("userAgent: got %v, want the client's", s.UserAgent)
		}
		if s.IPAddress == nil || *s.IPAddress != "127.0.0.1" {
			t.Errorf("ipAddress: got %v, want 127.0.0.1", s.IPAddress)
		}
		if len(s.Data) != 0 {
			t.Errorf("data: got %v, want {}", s.Data)
		}
	})

	var second authPayload
	t.Run("login ignores case and opens a new session each time", func(t *testing.T) {
		second = phone.login(t, "ALICE", pw)
		if second.Session.ID == reg.Session.ID || second.Token == reg.Token {
			t.Fatal("login reused the registration session")
		}
		if second.Session.User.ID != reg.Session.User.ID {
			t.Errorf("user id: got %q, want %q", second.Session.User.ID, reg.Session.User.ID)
		}
		if got := phone.me(t); got != "Alice" {
			t.Errorf("me: got %q, want Alice", got)
		}
	})

	t.Run("sessions lists the caller's, newest first, marking this one", func(t *testing.T) {
		e.clock.Advance(time.Second)
		third := e.client().login(t, "alice", pw)
		var out struct{ Sessions []model.Session }
		laptop.ok(t, `{ sessions { id current } }`, nil, &out)
		var got []string
		for _, s := range out.Sessions {
			got = append(got, s.ID)
			if s.Current != (s.ID == reg.Session.ID) {
				t.Errorf("session %s: current = %v", s.ID, s.Current)
			}
		}
		want := []string{third.Session.ID, second.Session.ID, reg.Session.ID}
		// second and reg were created in the same millisecond: order them
		// by the id tie-break the store uses.
		if second.Session.CreatedAt.Equal(reg.Session.CreatedAt) && reg.Session.ID < second.Session.ID {
			want[1], want[2] = want[2], want[1]
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("sessions (-want +got):\n%s", diff)
		}
		laptop.ok(t, `mutation($id: ID) { deleteSession(id: $id) }`, map[string]any{"id": third.Session.ID}, new(any))
	})

	t.Run("session by id, current and not", func(t *testing.T) {
		var out struct{ Current, Other *model.Session }
		laptop.ok(t, `query($id: ID) { current: session { id current } other: session(id: $id) { id current user { username } } }`,
			map[string]any{"id": second.Session.ID}, &out)
		if out.Current == nil || out.Current.ID != reg.Session.ID || !out.Current.Current {
			t.Errorf("current session: got %+v", out.Current)
		}
		if out.Other == nil || out.Other.ID != second.Session.ID || out.Other.Current || out.Other.User.Username != "Alice" {
			t.Errorf("other session: got %+v", out.Other)
		}
	})

	t.Run("updateSessionData round-trips any JSON object", func(t *testing.T) {
		data := map[string]any{
			"int": 42.0, "neg": -7.0, "float": 0.25, "big": 9007199254740991.0, "str": "héllo, 世界 👋",
			"bool": true, "null": nil, "empty": map[string]any{}, "list": []any{1.0, "two", []any{}, map[string]any{"x": false}},
			"deep": map[string]any{"a": map[string]any{"b": map[string]any{"c": "d"}}}, "": "empty key", "key with spaces": 1.0,
		}
		var out struct{ UpdateSessionData sessionWithData }
		laptop.ok(t, `mutation($d: JSONObject!) { updateSessionData(data: $d) { id data current } }`, map[string]any{"d": data}, &out)
		if diff := cmp.Diff(data, out.UpdateSessionData.Data); diff != "" {
			t.Errorf("returned data (-want +got):\n%s", diff)
		}
		var read struct{ Session sessionWithData }
		laptop.ok(t, `{ session { data } }`, nil, &read)
		if diff := cmp.Diff(data, read.Session.Data); diff != "" {
			t.Errorf("data read back (-want +got):\n%s", diff)
		}
		// Replaced, not merged.
		var replaced struct{ UpdateSessionData sessionWithData }
		laptop.ok(t, `mutation { updateSessionData(data: {only: 1}) { data } }`, nil, &replaced)
		if diff := cmp.Diff(map[string]any{"only": 1.0}, replaced.UpdateSessionData.Data); diff != "" {
			t.Errorf("after replace (-want +got):\n%s", diff)
		}
		// Only the caller's session changed.
		var other struct{ Session sessionWithData }
		phone.ok(t, `{ session { data } }`, nil, &other)
		if len(other.Session.Data) != 0 {
			t.Errorf("the phone's data changed: %v", other.Session.Data)
		}
	})

	t.Run("another user cannot see or end the session", func(t *testing.T) {
		mallory := e.client()
		mallory.register(t, "mallory", pw)
		var out struct {
			Session       *model.Session
			DeleteSession bool
		}
		mallory.ok(t, `query($id: ID) { session(id: $id) { id } }`, map[string]any{"id": reg.Session.ID}, &out)
		if out.Session != nil {
			t.Errorf("mallory read alice's session: %+v", out.Session)
		}
		mallory.ok(t, `mutation($id: ID) { deleteSession(id: $id) }`, map[string]any{"id": reg.Session.ID}, &out)
		if out.DeleteSession {
			t.Error("mallory ended alice's session")
		}
		var missing struct{ DeleteSession bool }
		mallory.ok(t, `mutation { deleteSession(id: "AAAAAAAAAAAAAAAAAAAAAA") }`, nil, &missing)
		if missing.DeleteSession {
			t.Error("deleting a missing session returned true")
		}
		if laptop.me(t) != "Alice" {
			t.Error("alice's session died")
		}
	})

	t.Run("deleteSession by id revokes a device", func(t *testing.T) {
		var out struct{ DeleteSession bool }
		laptop.ok(t, `mutation($id: ID) { deleteSession(id: $id) }`, map[string]any{"id": second.Session.ID}, &out)
		if !out.DeleteSession {
			t.Fatal("deleteSession(id) returned false")
		}
		if got := phone.me(t); got != "" {
			t.Errorf("revoked phone is still %q", got)
		}
		if laptop.me(t) != "Alice" {
			t.Error("revoking the phone logged the laptop out")
		}
	})

	t.Run("deleteOtherSessions logs out everywhere else", func(t *testing.T) {
		a, b := e.client(), e.client()
		a.login(t, "alice", pw)
		b.login(t, "alice", pw)
		var out struct{ DeleteOtherSessions int }
		laptop.ok(t, `mutation { deleteOtherSessions }`, nil, &out)
		if out.DeleteOtherSessions != 2 {
			t.Errorf("deleteOtherSessions: got %d, want 2", out.DeleteOtherSessions)
		}
		if a.me(t) != "" || b.me(t) != "" {
			t.Error("another session survived")
		}
		if laptop.me(t) != "Alice" {
			t.Error("the caller's own session ended")
		}
	})

	t.Run("deleteSession without id logs out", func(t *testing.T) {
		var out struct{ DeleteSession bool }
		laptop.ok(t, `mutation { deleteSession }`, nil, &out)
		if !out.DeleteSession {
			t.Fatal("logout returned false")
		}
		if laptop.me(t) != "" {
			t.Error("still signed in after logout")
		}
		if _, err := e.store.SessionByID(context.Background(), reg.Session.ID); err == nil {
			t.Error("the session is still in the database")
		}
	})
}

func TestChangePassword(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	me, other := e.client(), e.client()
	reg := me.register(t, "bob", pw)
	other.login(t, "bob", pw)
	oldToken := reg.Token

	r := me.do(t, `mutation { changePassword(currentPassword: "wrong password", newPassword: "new password!") { token } }`, nil)
	if got := r.code(t); got != "BAD_USER_INPUT" {
		t.Errorf("wrong current password: code %q, want BAD_USER_INPUT", got)
	}
	if other.me(t) != "bob" {
		t.Fatal("a failed change ended other sessions")
	}

	var out struct{ ChangePassword model.AuthPayload }
	me.ok(t, `mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) { token session { id current } } }`,
		map[string]any{"c": pw, "n": "new password!"}, &out)
	p := out.ChangePassword
	if p.Token == oldToken || p.Session.ID != reg.Session.ID || !p.Session.Current {
		t.Fatalf("changePassword: got %+v; want the same session with a new token", p)
	}
	if other.me(t) != "" {
		t.Error("another session survived the password change")
	}
	stale := e.client()
	stale.token = oldToken
	if stale.me(t) != "" {
		t.Error("the old token still works")
	}
	me.token = p.Token
	if me.me(t) != "bob" {
		t.Error("the new token does not work")
	}
	if r := e.client().do(t, loginQuery, map[string]any{"u": "bob", "p": pw}); r.code(t) != "UNAUTHENTICATED" {
		t.Error("the old password still logs in")
	}
	e.client().login(t, "bob", "new password!")
}

func TestLoginTreatsUnknownUserLikeWrongPassword(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.client().register(t, "carol", pw)
	for _, tc := range []struct{ name, user, pass string }{
		{"wrong password", "carol", "not the password"},
		{"unknown user", "nobody", "not the password"},
	} {
		r := e.client().do(t, loginQuery, map[string]any{"u": tc.user, "p": tc.pass})
		if got := r.code(t); got != "UNAUTHENTICATED" {
			t.Errorf("%s: code %q, want UNAUTHENTICATED", tc.name, got)
		}
		if got := r.Errors[0].Message; got != "invalid username or password" {
			t.Errorf("%s: message %q", tc.name, got)
		}
	}
	if n := e.sessionCount(); n != 1 {
		t.Errorf("sessions: got %d, want 1 (failed logins open none)", n)
	}
}

func TestLoginRehashesAtConfiguredCost(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.client().register(t, "dave", pw)
	u, _ := e.store.UserByKey(ctx, "dave")
	if !strings.HasPrefix(u.PasswordHash, "$2a$04$") {
		t.Fatalf("hash %q is not at cost 4", u.PasswordHash[:7])
	}

	// A second server, configured with cost 5, on the same database.
	e2 := newEnvOn(t, e.store, func(c *auth.Config, _ *graph.Options) { c.BcryptCost = 5 })
	e2.client().login(t, "dave", pw)
	u, _ = e.store.UserByKey(ctx, "dave")
	if !strings.HasPrefix(u.PasswordHash, "$2a$05$") {
		t.Errorf("hash after login: %q, want cost 5", u.PasswordHash[:7])
	}
	e2.client().login(t, "dave", pw) // and the new hash still matches
}
