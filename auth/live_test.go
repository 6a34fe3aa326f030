package auth

import (
	"testing"

	"gatehouse/storage"
)

// A data update goes to its own session's subscribers only, anything else
// to all of the user's; a subscriber with no room left is woken to check
// its session, keeping the notice that explains an ending.
func TestDispatch(t *testing.T) {
	var l live
	sub := func(session string) *subscriber {
		s := &subscriber{sessionID: session, userID: "u", client: session, notices: make(chan *storage.Notice, 2), resync: make(chan struct{}, 1)}
		if err := l.add(s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := sub("a"), sub("b")
	l.dispatch(&storage.Notice{UserID: "u", Type: NoticeDataUpdated, SessionID: "a"})
	l.dispatch(&storage.Notice{UserID: "other", Type: EventPasswordChanged})
	if len(a.notices) != 1 || len(b.notices) != 0 {
		t.Fatalf("a data update of a, and another user's notice: a holds %d, b %d; want 1 and 0", len(a.notices), len(b.notices))
	}
	l.dispatch(&storage.Notice{UserID: "u", Type: EventSignedIn, SessionID: "c"})
	changed := &storage.Notice{UserID: "u", Type: EventPasswordChanged}
	l.dispatch(changed)
	l.dispatch(&storage.Notice{UserID: "u", Type: EventSignedIn, SessionID: "d"})
	if len(a.notices) != 2 || len(a.resync) != 1 || a.explain.Load() != changed {
		t.Fatalf("a full: %d notices, woken %v, explained by %+v; want 2, woken, by the password change", len(a.notices), len(a.resync) == 1, a.explain.Load())
	}
	if len(b.notices) != 2 || len(b.resync) != 1 || b.explain.Load() != nil {
		t.Fatalf("b: %d notices, woken %v, explained by %+v; want the sign-in and the password change, woken for the last sign-in, no explanation", len(b.notices), len(b.resync) == 1, b.explain.Load())
	}
}
