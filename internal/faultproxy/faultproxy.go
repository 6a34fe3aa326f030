// Package faultproxy is a TCP proxy for tests that injects database faults:
// it forwards connections to a target address, and on command delays what
// the target sends back (a slow database) or cuts every connection and
// refuses new ones (a database that went away).
//
// It counts the connections it carries, so a test can check that a client
// under faults keeps a bounded number of them open.
package faultproxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Proxy forwards TCP connections from its own loopback address to a target
// (a TCP address, or a unix socket such as `gatehouse db`'s).
// It is safe for concurrent use.
type Proxy struct {
	ln      net.Listener
	network string
	target  string
	done    chan struct{} // closed by Close
	wg      sync.WaitGroup

	mu    sync.Mutex
	delay time.Duration
	cut   bool
	conns map[*link]struct{}
	peak  int
	total int
}

// link is one client connection and its connection to the target.
type link struct {
	client, upstream net.Conn
	closed           chan struct{}
	once             sync.Once
}

func (l *link) close() {
	l.once.Do(func() {
		close(l.closed)
		_ = l.client.Close()
		_ = l.upstream.Close()
	})
}

// Start listens on a free loopback port and forwards every connection to
// target on network ("tcp" or "unix"). Close must be called to stop it.
func Start(network, target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: %w", err)
	}
	p := &Proxy{ln: ln, network: network, target: target, done: make(chan struct{}), conns: map[*link]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr returns the host:port clients connect to.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetDelay makes every chunk the target sends reach the client d later
// (0 forwards at once). It applies to chunks read from now on.
func (p *Proxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay = d
}

// Cut closes every open connection and, until Restore, closes new ones as
// soon as they are accepted: to a client, the target is gone.
func (p *Proxy) Cut() {
	p.mu.Lock()
	p.cut = true
	open := make([]*link, 0, len(p.conns))
	for l := range p.conns {
		open = append(open, l)
	}
	p.mu.Unlock()
	for _, l := range open {
		l.close()
	}
}

// Restore ends a Cut: new connections are forwarded again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

// Stats are connection counts.
type Stats struct {
	Open  int // forwarded connections open now
	Peak  int // most open at once since Start or ResetPeak
	Total int // connections forwarded since Start
}

// Stats returns the connection counts.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Stats{Open: len(p.conns), Peak: p.peak, Total: p.total}
}

// ResetPeak sets the peak to the number of connections open now.
func (p *Proxy) ResetPeak() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.peak = len(p.conns)
}

// Close stops listening, closes every connection and waits for the
// proxy's goroutines to end.
func (p *Proxy) Close() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	close(p.done)
	err := p.ln.Close()
	p.Cut()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		} else if err != nil {
			// Temporary (out of file descriptors): back off, bounded by Close.
			select {
			case <-p.done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		p.mu.Lock()
		cut := p.cut
		p.mu.Unlock()
		if cut {
			_ = c.Close()
			continue
		}
		p.wg.Add(1)
		go p.forward(c)
	}
}

func (p *Proxy) forward(client net.Conn) {
	defer p.wg.Done()
	upstream, err := net.DialTimeout(p.network, p.target, 5*time.Second)
	if err != nil {
		_ = client.Close()
		return
	}
	l := &link{client: client, upstream: upstream, closed: make(chan struct{})}
	p.mu.Lock()
	if p.cut { // cut while dialling
		p.mu.Unlock()
		l.close()
		return
	}
	p.conns[l] = struct{}{}
	p.total++
	p.peak = max(p.peak, len(p.conns))
	p.mu.Unlock()

	var wg sync.WaitGroup
	wg.Go(func() {
		_, _ = io.Copy(upstream, client)
		l.close()
	})
	wg.Go(func() {
		p.copyDelayed(l)
		l.close()
	})
	wg.Wait()

	p.mu.Lock()
	delete(p.conns, l)
	p.mu.Unlock()
}

// copyDelayed copies what the target sends to the client, holding each
// chunk for the delay in force when it was read. It returns when either side
// fails or the link is closed.
func (p *Proxy) copyDelayed(l *link) {
	buf := make([]byte, 32<<10)
	for {
		n, err := l.upstream.Read(buf)
		if n > 0 {
			p.mu.Lock()
			d := p.delay
			p.mu.Unlock()
			if d > 0 {
				t := time.NewTimer(d)
				select {
				case <-l.closed:
					t.Stop()
					return
				case <-t.C:
				}
			}
			if _, werr := l.client.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
