package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
)

// A subscription on the real server lives past its HTTP read (10 s) and
// write (30 s) timeouts, answering the server's pings, and still hears of
// its session's revocation. The cookie of a same-origin upgrade
// authenticates it, as a browser's would.
func TestSubscriptionOutlivesTheHTTPTimeouts(t *testing.T) {
	t.Parallel()
	g := start(t, testEnv(t))
	laptop := dig(g.query("", `mutation { register(username: "liv", password: "correct horse") { token } }`), "register", "token")
	phone := dig(g.query("", `mutation { login(username: "liv", password: "correct horse") { token } }`), "login", "token")
	laptopID := dig(g.query(laptop, `{ session { id } }`), "session", "id")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := http.Header{}
	h.Set("Origin", g.url)
	h.Set("Cookie", "__Host-gatehouse_session="+laptop)
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(g.url, "http")+"/query",
		&websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}, HTTPHeader: h})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	write := func(m map[string]any) {
		if err := wsjson.Write(ctx, conn, m); err != nil {
			t.Fatal(err)
		}
	}
	type message struct {
		ID, Type string
		Payload  json.RawMessage
	}
	messages := make(chan message)
	go func() {
		defer close(messages)
		for {
			var m message
			if err := wsjson.Read(ctx, conn, &m); err != nil {
				return
			}
			messages <- m
		}
	}()
	write(map[string]any{"type": "connection_init"})
	write(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": `subscription { sessionEvents { type sessionId } }`}})

	pings, revokedAt := 0, time.Time{}
	timeout := time.After(60 * time.Second)
	revoke := time.After(32 * time.Second)
	for {
		select {
		case m, ok := <-messages:
			if !ok {
				t.Fatalf("the socket closed after %d pings", pings)
			}
			switch m.Type {
			case "connection_ack":
			case "ping":
				pings++
				write(map[string]any{"type": "pong"})
			case "next":
				if revokedAt.IsZero() {
					t.Fatalf("an event before the revocation: %s", m.Payload)
				}
				if want := `{"data":{"sessionEvents":{"type":"REVOKED","sessionId":"` + laptopID + `"}}}`; string(m.Payload) != want {
					t.Fatalf("event %s, want %s", m.Payload, want)
				}
				if pings < 1 {
					t.Errorf("no ping from the server in the %v before the revocation", 32*time.Second)
				}
				// The embedded engine has no change streams.
				if !strings.Contains(g.out.String(), `msg="live events: subscribers are told within a second, on every instance" mode="polling the event stream by _id every 100ms"`) {
					t.Errorf("the start-up log does not say how live events run:\n%s", g.out)
				}
				return
			default:
				t.Fatalf("unexpected message %+v", m)
			}
		case <-revoke:
			r := g.gql(phone, `mutation($id: ID!) { deleteSession(id: $id) }`, map[string]any{"id": laptopID})
			if toJSON(r) != `{"data":{"deleteSession":true}}` {
				t.Fatalf("revocation: %v", r)
			}
			revokedAt = time.Now()
		case <-timeout:
			t.Fatalf("no REVOKED; %d pings", pings)
		}
	}
}
