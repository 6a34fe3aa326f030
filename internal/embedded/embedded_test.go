package embedded_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"gatehouse/internal/dbtest"
	"gatehouse/internal/embedded"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

// The whole speed of the embedded mode rests on this: a FerretDB upgrade
// that changes how it stores or queries _id must fail here, loudly.
func TestIDLookupsUseIndex(t *testing.T) {
	st := dbtest.Open(t)
	_, srv := dbtest.URI(t)
	if srv == nil {
		t.Skip("MONGODB_URI is set: no embedded engine to inspect")
	}
	for _, coll := range []string{"users", "sessions", "throttle"} {
		plan, err := srv.QueryPlan(context.Background(), st.DatabaseName(), coll)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(plan, "USING INDEX") || !strings.Contains(plan, "_gatehouse_id") {
			t.Errorf("%s: _id look-up does not use the gatehouse index; plan:\n%s", coll, plan)
		}
	}
}

func TestStartFailsOnUnusableDir(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "file")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if s, err := embedded.Start(f.Name(), nil); err == nil {
		s.Close()
		t.Fatal("Start on a regular file: got nil error")
	}
}
