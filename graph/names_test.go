package graph_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Look-alike usernames: once "alice" exists, names that look like it
// (Unicode TS #39 confusables, in either case) are refused exactly as a
// taken name is, and "ali  ce" with a run of spaces is refused as input to
// fix. The database holds one user, and alice still signs in.
func TestLookalikeUsernamesRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.client().register(t, "alice", pw)
	taken := e.client().do(t, registerQuery, map[string]any{"u": "ALICE", "p": pw})
	if taken.code(t) != "BAD_USER_INPUT" {
		t.Fatalf("ALICE: %+v", taken.Errors)
	}

	for _, tc := range []struct{ name, username string }{
		{"Cyrillic a", "\u0430lice"},
		{"Latin alpha", "\u0251lice"},
		{"dotless i", "al\u0131ce"},
		{"capital I for l", "aIice"},
		{"Cyrillic a, i and e", "\u0430l\u0456c\u0435"},
		{"mathematical monospace", "\U0001D68A\U0001D695\U0001D692\U0001D68C\U0001D68E"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.client().do(t, registerQuery, map[string]any{"u": tc.username, "p": pw})
			if got := r.code(t); got != "BAD_USER_INPUT" {
				t.Errorf("register %+q: code %q, want BAD_USER_INPUT", tc.username, got)
			}
			// The same answer as for the name itself: nothing tells a
			// look-alike from the name.
			if diff := cmp.Diff(taken.Errors, r.Errors); diff != "" {
				t.Errorf("register %+q: errors differ from a taken name's (-taken +got):\n%s", tc.username, diff)
			}
		})
	}
	r := e.client().do(t, registerQuery, map[string]any{"u": "ali  ce", "p": pw})
	if r.code(t) != "BAD_USER_INPUT" || !strings.Contains(r.Errors[0].Message, "two spaces") {
		t.Errorf("register \"ali  ce\": %+v", r.Errors)
	}

	if n, err := e.store.CountUsers(context.Background()); err != nil || n != 1 {
		t.Errorf("users stored: %d, %v; want 1", n, err)
	}
	if got := e.sessionCount(); got != 1 {
		t.Errorf("%d sessions stored, want alice's 1", got)
	}
	if c := e.client(); c.login(t, "alice", pw).Token == "" || c.me(t) != "alice" {
		t.Error("alice cannot sign in")
	}
}
