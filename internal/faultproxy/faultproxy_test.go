package faultproxy_test

import (
	"bufio"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"gatehouse/internal/faultproxy"
)

// echoServer answers every line with the same line, until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return ln.Addr().String()
}

func start(t *testing.T) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.Start("tcp", echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// conn is a client connection through the proxy.
type conn struct {
	net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, p *faultproxy.Proxy) *conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &conn{Conn: c, r: bufio.NewReader(c)}
}

// roundTrip sends line and returns the answer (or the read error) and how
// long it took.
func (c *conn) roundTrip(line string) (string, time.Duration, error) {
	start := time.Now()
	_ = c.SetDeadline(start.Add(5 * time.Second))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return "", time.Since(start), err
	}
	got, err := c.r.ReadString('\n')
	return strings.TrimSuffix(got, "\n"), time.Since(start), err
}

func TestForwards(t *testing.T) {
	p := start(t)
	c := dial(t, p)
	for _, msg := range []string{"hello", strings.Repeat("x", 100<<10)} {
		got, _, err := c.roundTrip(msg)
		if err != nil || got != msg {
			t.Fatalf("round trip of %d bytes: got %d bytes, %v", len(msg), len(got), err)
		}
	}
}

func TestDelay(t *testing.T) {
	p := start(t)
	c := dial(t, p)
	_, warm, err := c.roundTrip("warm")
	if err != nil {
		t.Fatalf("undelayed round trip: %v", err)
	}
	// The delay stands out from what an undelayed round trip takes on this
	// machine now (the first, which may wait for the upstream dial): ten times
	// that, and at least 300 ms.
	d := max(300*time.Millisecond, 10*warm)
	p.SetDelay(d)
	got, took, err := c.roundTrip("slow")
	if err != nil || got != "slow" {
		t.Fatalf("delayed round trip: got %q, %v", got, err)
	}
	if took < d {
		t.Errorf("delayed round trip took %v, want at least %v", took, d)
	}
	p.SetDelay(0)
	if _, took, err := c.roundTrip("fast"); err != nil || took >= d {
		t.Errorf("round trip after SetDelay(0): %v, %v; want under %v", took, err, d)
	}
}

func TestCutAndRestore(t *testing.T) {
	p := start(t)
	old := dial(t, p)
	if _, _, err := old.roundTrip("before"); err != nil {
		t.Fatal(err)
	}
	p.Cut()
	if _, _, err := old.roundTrip("during"); err == nil {
		t.Error("an open connection still answers after Cut")
	}
	// New connections are accepted by the kernel, then closed unanswered.
	if got, _, err := dial(t, p).roundTrip("new"); err == nil {
		t.Errorf("a new connection answered %q during the cut", got)
	}
	p.Restore()
	if got, _, err := dial(t, p).roundTrip("after"); err != nil || got != "after" {
		t.Errorf("after Restore: got %q, %v", got, err)
	}
}

// A cut also interrupts a chunk held back by the delay at once.
func TestCutInterruptsDelay(t *testing.T) {
	p := start(t)
	c := dial(t, p)
	p.SetDelay(time.Hour)
	errc := make(chan error, 1)
	go func() {
		_, _, err := c.roundTrip("held")
		errc <- err
	}()
	waitFor(t, "the connection is open", func() bool { return p.Stats().Open == 1 })
	p.Cut()
	select {
	case err := <-errc:
		if err == nil {
			t.Error("the held chunk was delivered after Cut")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a cut connection still waits out its delay")
	}
	waitFor(t, "the link is dropped", func() bool { return p.Stats().Open == 0 })
}

func TestStats(t *testing.T) {
	p := start(t)
	a, b := dial(t, p), dial(t, p)
	for _, c := range []*conn{a, b} {
		if _, _, err := c.roundTrip("x"); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := p.Stats(), (faultproxy.Stats{Open: 2, Peak: 2, Total: 2}); got != want {
		t.Errorf("two open: got %+v, want %+v", got, want)
	}
	a.Close()
	waitFor(t, "one connection left", func() bool { return p.Stats().Open == 1 })
	if got, want := p.Stats(), (faultproxy.Stats{Open: 1, Peak: 2, Total: 2}); got != want {
		t.Errorf("one closed: got %+v, want %+v", got, want)
	}
	p.ResetPeak()
	if got := p.Stats().Peak; got != 1 {
		t.Errorf("peak after ResetPeak: got %d, want 1", got)
	}
}

// Close ends every goroutine the proxy started, even with connections open
// and chunks held back.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	target := echoServer(t)
	before := runtime.NumGoroutine()
	p, err := faultproxy.Start("tcp", target)
	if err != nil {
		t.Fatal(err)
	}
	var conns []*conn
	for range 5 {
		c := dial(t, p)
		if _, _, err := c.roundTrip("x"); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	p.SetDelay(time.Hour)
	for _, c := range conns {
		_, _ = io.WriteString(c, "held\n")
	}
	if err := p.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	for _, c := range conns {
		c.Close() // the echo server's side ends too
	}
	waitFor(t, "goroutines back to the start", func() bool { return runtime.NumGoroutine() <= before })
	if c, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		c.Close()
		t.Error("the proxy still accepts after Close")
	}
}

// waitFor polls cond for up to 5 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
