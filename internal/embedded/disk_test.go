package embedded_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/internal/embedded"
	"gatehouse/storage"
)

// startEngine starts an engine of the test's own (disk limits are the
// engine's) and opens database "gatehouse" on it.
func startEngine(t *testing.T, walLimit, minFree int64) (*embedded.Server, *storage.Store, string) {
	t.Helper()
	dir := t.TempDir()
	e, err := embedded.Start(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	e.LimitDisk(walLimit, minFree)
	ctx := context.Background()
	st, err := storage.Open(ctx, e.URI(), "gatehouse", storage.Options{Dialer: e.Dialer(), Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	return e, st, filepath.Join(e.Dir(), "gatehouse.sqlite")
}

func session(id string, data string, expires time.Time) *storage.Session {
	now := time.Now()
	return &storage.Session{ID: id, SecretHash: []byte("secret"), UserID: "u" + id, UserKey: "k" + id, UserName: "n" + id,
		UserCreatedAt: now, Data: data, CreatedAt: now, LastSeenAt: now, ExpiresAt: expires}
}

func size(name string) int64 {
	fi, err := os.Stat(name)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// Under FerretDB v1 every update leaves the WAL one commit short of a full
// checkpoint, so without the engine's upkeep it grows by every write (about
// 16 KiB per update of 12 KB here); with it, it stays under the limit.
func TestWALStaysWithinLimitUnderUpdates(t *testing.T) {
	const limit = 2 << 20
	e, st, file := startEngine(t, limit, 0)
	ctx := context.Background()
	const clients = 4
	for i := range clients {
		if _, err := st.CreateSession(ctx, session(fmt.Sprint(i), "", time.Now().Add(time.Hour))); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.IndexIDs(ctx, "gatehouse"); err != nil {
		t.Fatal(err)
	}

	// Enough writes that the data alone is three times the limit.
	const dataLen = 12_000
	const writes = 3 * limit / dataLen
	var done atomic.Int64
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := done.Add(1); n <= writes; n = done.Add(1) {
				data := fmt.Sprintf(`{"n":%d,"x":"%s"}`, n, strings.Repeat("a", dataLen))
				if _, err := st.SetSessionData(ctx, fmt.Sprint(i), data); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	stopped := make(chan struct{})
	go func() { wg.Wait(); close(stopped) }()
	var most int64
	for sampling := true; sampling; {
		select {
		case <-stopped:
			sampling = false
		case <-time.After(10 * time.Millisecond):
		}
		most = max(most, size(file+"-wal"))
	}
	if most > limit {
		t.Errorf("WAL reached %d bytes during %d updates of %d bytes; want at most the limit, %d", most, writes, dataLen, limit)
	}
	if e.Disk().LastCheckpoint.IsZero() {
		t.Error("no checkpoint was recorded")
	}
	t.Logf("%d updates of %d bytes: WAL at most %d bytes (limit %d)", writes, dataLen, most, limit)
}

// Sessions that end leave free pages (deleted rows, dropped expiry files);
// they are given back, so the file follows the live data down.
func TestSpaceOfEndedSessionsIsReclaimed(t *testing.T) {
	e, st, file := startEngine(t, 4<<20, 0)
	ctx := context.Background()
	const n, batch, dataLen = 1000, 250, 6000
	data := fmt.Sprintf(`{"x":"%s"}`, strings.Repeat("b", dataLen))
	expires := time.Now().Add(time.Minute)
	for i := 0; i < n; i += batch {
		var ss []*storage.Session
		for j := i; j < i+batch; j++ {
			s := session(fmt.Sprint("s", j), data, expires)
			s.UserID = fmt.Sprint("u", j%100) // a hundred users of ten sessions
			ss = append(ss, s)
		}
		if err := st.CreateSessions(ctx, ss); err != nil {
			t.Fatal(err)
		}
		if err := e.IndexIDs(ctx, "gatehouse"); err != nil {
			t.Fatal(err)
		}
	}
	peak := waitSize(t, file, "the sessions to reach the file", func(s int64) bool { return s > n*dataLen })

	swept, err := st.DeleteExpiredSessions(ctx, expires.Add(48*time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	if swept != n {
		t.Fatalf("swept %d sessions, want %d", swept, n)
	}
	after := waitSize(t, file, "the file to shrink to a quarter of its peak", func(s int64) bool { return s < peak/4 })
	if e.Disk().LastVacuum.IsZero() {
		t.Error("no vacuum was recorded")
	}
	t.Logf("%d sessions: file %d bytes at peak, %d after they ended", n, peak, after)
}

// waitSize waits up to a minute (the upkeep looks for free pages every 5 s)
// for the size of file to satisfy ok, and returns it.
func waitSize(t *testing.T, file, what string, ok func(int64) bool) int64 {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		s := size(file)
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s: %s is %d bytes", what, file, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// DiskFull follows the free space: a minimum above what the disk has is a
// full disk, and lowering it again is space coming back.
func TestDiskFullFollowsFreeSpace(t *testing.T) {
	e, _, _ := startEngine(t, 4<<20, 0)
	waitFull := func(want bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for (e.DiskFull() != nil) != want {
			if time.Now().After(deadline) {
				t.Fatalf("DiskFull() = %v after 30 s; want full = %v", e.DiskFull(), want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFull(false)
	e.LimitDisk(4<<20, 1<<62)
	waitFull(true)
	if err := e.DiskFull(); !strings.Contains(err.Error(), "disk full") {
		t.Errorf("DiskFull() = %v; want it to say disk full", err)
	}
	if d := e.Disk(); d.FreeBytes <= 0 || d.FileBytes <= 0 {
		t.Errorf("Disk() = %+v; want the free space and the file's size", d)
	}
	e.LimitDisk(4<<20, 0)
	waitFull(false)
}

// A database made before gatehouse set incremental auto-vacuum (FerretDB's
// default is none) is converted at the next start, keeping its data.
func TestExistingDatabaseTakesIncrementalVacuum(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "gatehouse.sqlite")
	e, err := embedded.Start(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := storage.Open(ctx, e.URI(), "gatehouse", storage.Options{Dialer: e.Dialer()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateSession(ctx, session("kept", `{"a":1}`, time.Now().Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	_ = st.Close(ctx)
	e.Close()
	setVacuum := func(mode string) int {
		t.Helper()
		db, err := sql.Open("sqlite", "file:"+file)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if mode != "" {
			if _, err := db.Exec("PRAGMA auto_vacuum = " + mode + "; VACUUM"); err != nil {
				t.Fatal(err)
			}
		}
		var got int
		if err := db.QueryRow("PRAGMA auto_vacuum").Scan(&got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := setVacuum("NONE"); got != 0 {
		t.Fatalf("auto_vacuum = %d after setting NONE", got)
	}

	e, err = embedded.Start(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err = storage.Open(ctx, e.URI(), "gatehouse", storage.Options{Dialer: e.Dialer()})
	if err != nil {
		t.Fatal(err)
	}
	if s, err := st.SessionByID(ctx, "kept"); err != nil || s.Data != `{"a":1}` {
		t.Errorf("SessionByID after the conversion = %+v, %v", s, err)
	}
	_ = st.Close(ctx)
	e.Close()
	if got := setVacuum(""); got != 2 {
		t.Errorf("auto_vacuum = %d after a start; want 2 (incremental)", got)
	}
}
