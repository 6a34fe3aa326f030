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
// them at once. With no delay, every line is written through.
type logWriter struct {
	mu    sync.Mutex
	out   io.Writer
	buf   *bufio.Writer
	delay time.Duration
	timer *time.Timer // the pending flush; nil while nothing waits
}

func newLogWriter(w io.Writer, delay time.Duration) *logWriter {
	return &logWriter{out: w, buf: bufio.NewWriterSize(w, 32<<10), delay: delay}
}

func (l *logWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.delay == 0 {
		return l.out.Write(p)
	}
	if l.timer == nil {
		l.timer = time.AfterFunc(l.delay, func() { _ = l.Flush() })
	}
	n, err := l.buf.Write(p)
	l.dropOnError(err)
	return n, err
}

// Flush writes out what waits.
func (l *logWriter) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	err := l.buf.Flush()
	l.dropOnError(err)
	return err
}

// dropOnError drops the waiting lines after a failed write, so that the
// next ones are tried afresh: a bufio.Writer refuses every write after its
// first error.
func (l *logWriter) dropOnError(err error) {
	if err != nil {
		l.buf.Reset(l.out)
	}
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
