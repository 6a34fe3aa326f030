package main

import (
	"errors"
	"gatehouse/internal/testlog"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// Info lines wait in the buffer (the access log would otherwise cost a
// write per request); a warning sends them out at once, after them.
func TestLogWarningsFlushAtOnce(t *testing.T) {
	out := &testlog.Buffer{}
	w := newLogWriter(out, time.Hour)
	log := newLogger(&config{logLevel: slog.LevelInfo}, w).With("instance", "a")
	log.Info("request", "status", 200)
	if got := out.String(); got != "" {
		t.Fatalf("info line written at once: %q", got)
	}
	log.Warn("database slow")
	got := out.String()
	if i, j := strings.Index(got, "msg=request"), strings.Index(got, `msg="database slow"`); i < 0 || j < i {
		t.Errorf("after a warning the output is %q, want the info line then the warning", got)
	}
}

// Lines reach the output after the delay, with no further writes.
func TestLogLinesArriveWithinTheDelay(t *testing.T) {
	out := &testlog.Buffer{}
	w := newLogWriter(out, 20*time.Millisecond)
	newLogger(&config{logLevel: slog.LevelInfo, logFormat: "json"}, w).Info("request", "status", 200)
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(out.String(), `"msg":"request"`); {
		if time.Now().After(deadline) {
			t.Fatalf("line not written 5s after a 20ms delay; output %q", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A full buffer goes out without waiting for the timer.
func TestLogBufferFlushesWhenFull(t *testing.T) {
	out := &testlog.Buffer{}
	w := newLogWriter(out, time.Hour)
	line := strings.Repeat("x", 1023) + "\n"
	for range 40 { // 40 KiB > the 32 KiB buffer
		if _, err := w.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(out.String()); n < 32<<10 {
		t.Errorf("%d bytes written after 40 KiB of lines, want the first 32 KiB at least", n)
	}
}

// failingWriter fails its first n writes.
type failingWriter struct {
	testlog.Buffer
	fails int
}

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.fails > 0 {
		f.fails--
		return 0, errors.New("disk full")
	}
	return f.Buffer.Write(p)
}

// A failed write loses the lines that waited, not every later one.
func TestLogRecoversFromAWriteError(t *testing.T) {
	out := &failingWriter{fails: 1}
	w := newLogWriter(out, time.Hour)
	log := newLogger(&config{logLevel: slog.LevelInfo}, w)
	log.Warn("lost")
	log.Warn("kept")
	if got := out.String(); strings.Contains(got, "lost") || !strings.Contains(got, "kept") {
		t.Errorf("output after one failed write: %q, want only the later line", got)
	}
}

// Commands write through: their log lines and their output stay in order.
func TestLogWithoutDelayWritesThrough(t *testing.T) {
	out := &testlog.Buffer{}
	newLogger(&config{logLevel: slog.LevelInfo}, newLogWriter(out, 0)).Info("created")
	if !strings.Contains(out.String(), "msg=created") {
		t.Errorf("output %q, want the line at once", out.String())
	}
}
