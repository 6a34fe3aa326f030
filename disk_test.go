package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The disk fills up (a file takes the space DB_MIN_FREE asks for) and
// /readyz says 503, and the log why; the file goes and /readyz is ready again; /metrics
// shows the database's files meanwhile.
func TestReadyzFollowsTheDisk(t *testing.T) {
	env := testEnv(t)
	var st unix.Statfs_t
	if err := unix.Statfs(env["DATA_DIR"], &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	margin := min(int64(2<<30), free/4) // what other processes may take meanwhile
	env["DB_MIN_FREE"] = fmt.Sprint(free - margin)
	env["METRICS_ADDR"] = freeAddr(t)
	g := start(t, env)

	get := func(url string) (int, string) {
		t.Helper()
		res, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}
	waitFor(t, 30*time.Second, "readyz 200 with the space there", func() bool { c, _ := get(g.url + "/readyz"); return c == 200 })

	filler := filepath.Join(filepath.Dir(env["DATA_DIR"]), "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(filler)
	if err := unix.Fallocate(int(f.Fd()), 0, 0, 2*margin); err != nil {
		t.Fatalf("fallocate %d bytes (the test fills the disk this way): %v", 2*margin, err)
	}
	f.Close()
	waitFor(t, 30*time.Second, "readyz 503 with the disk full", func() bool { c, _ := get(g.url + "/readyz"); return c == 503 })
	// The answer is masked, as every internal error is; the log says why.
	if !strings.Contains(g.out.String(), "DATA_DIR's disk is full") || !strings.Contains(g.out.String(), `msg="not ready" err="embedded: disk full: `) {
		t.Errorf("the log does not say the disk is full:\n%s", g.out)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "readyz 200 with the space back", func() bool { c, _ := get(g.url + "/readyz"); return c == 200 })

	_, metrics := get("http://" + env["METRICS_ADDR"] + "/metrics")
	for _, name := range []string{"gatehouse_db_file_bytes", "gatehouse_db_wal_bytes", "gatehouse_db_free_bytes",
		"gatehouse_db_last_checkpoint_timestamp_seconds", "gatehouse_db_last_vacuum_timestamp_seconds"} {
		if !regexp.MustCompile(`(?m)^` + name + ` [0-9.e+]+$`).MatchString(metrics) {
			t.Errorf("/metrics has no %s gauge", name)
		}
	}
	if m := regexp.MustCompile(`(?m)^gatehouse_db_file_bytes ([0-9.e+]+)$`).FindStringSubmatch(metrics); m == nil || m[1] == "0" {
		t.Errorf("gatehouse_db_file_bytes = %v; want the database's size", m)
	}
}
