package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// logDelay is how long a log line may wait in the buffer.
const logDelay = 100 * time.Millisecond

func newLogger(cfg *config, w *logWriter) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.logLevel}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if cfg.logFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(flushOnWarn{h, w})
}

// logWriter batches log output. The access log writes a line per request,
// and a write(2) per line, with the wake-up of whoever reads the pipe,
// cost about 7% of the CPU of a session check (cmd/bench, c=8). Lines
// reach w within the delay, or as soon as 32 KiB are waiting; Flush sends
// them at once.
type logWriter struct {
	mu    sync.Mutex
	buf   *bufio.Writer
	delay time.Duration
	timer *time.Timer // the pending flush; nil while nothing waits
}

func newLogWriter(w io.Writer, delay time.Duration) *logWriter {
	return &logWriter{buf: bufio.NewWriterSize(w, 32<<10), delay: delay}
}

func (l *logWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.timer == nil {
		l.timer = time.AfterFunc(l.delay, func() { _ = l.Flush() })
	}
	return l.buf.Write(p)
}

// Flush writes out what waits.
func (l *logWriter) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	return l.buf.Flush()
}

// flushOnWarn sends warnings and errors out at once, with what waited
// before them.
type flushOnWarn struct {
	slog.Handler
	w *logWriter
}

func (h flushOnWarn) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		if ferr := h.w.Flush(); err == nil {
			err = ferr
		}
	}
	return err
}

func (h flushOnWarn) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushOnWarn{h.Handler.WithAttrs(attrs), h.w}
}

func (h flushOnWarn) WithGroup(name string) slog.Handler {
	return flushOnWarn{h.Handler.WithGroup(name), h.w}
}
