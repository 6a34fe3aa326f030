package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"gatehouse/internal/datadir"
	"gatehouse/internal/embedded"
)

// dbSocket is the socket in DATA_DIR on which `gatehouse db` serves the
// instances of this machine.
const dbSocket = "db.sock"

// handshakeTimeout bounds a TLS handshake on `gatehouse db -addr`: a client
// that connects and stalls holds nothing for longer.
const handshakeTimeout = 10 * time.Second

// serveDatabase runs the embedded FerretDB alone, so that several gatehouse
// processes can share it: on an owner-only socket in DATA_DIR for this
// machine's instances (MONGODB_URI=mongodb://<percent-encoded path>/), and,
// with -addr, on TCP for other hosts, with mutual TLS only. It keeps the
// _id indexes of every database in place as clients create their
// collections.
func serveDatabase(ctx context.Context, cfg *config, args []string, log *slog.Logger) error {
	f, err := parseDBFlags(args, io.Discard)
	if err != nil {
		return err
	}
	var tlsConfig *tls.Config
	if f.addr != "" {
		if tlsConfig, err = mutualTLS(f.certFile, f.keyFile, f.caFile); err != nil {
			return err
		}
	}

	e, err := embedded.Start(cfg.dataDir, log)
	if err != nil {
		return err
	}
	defer e.Close()
	e.LimitDisk(cfg.walLimit, cfg.minFree)
	path := filepath.Join(e.Dir(), dbSocket)
	if len(path) > datadir.MaxSocketPath {
		return fmt.Errorf("DATA_DIR %s: its socket %s is %d bytes long, more than a socket address holds (%d), so instances could not connect: use a shorter DATA_DIR (a symlink to it will do)",
			e.Dir(), dbSocket, len(path), datadir.MaxSocketPath)
	}
	ln, err := e.Listen(dbSocket)
	if err != nil {
		return err
	}
	defer ln.Close()
	stopBackups, err := serveBackupOnly(e, log)
	if err != nil {
		return err
	}
	defer stopBackups()
	go func() { _ = e.Serve(ln) }()
	log.Info("embedded database listening", "uri", embedded.SocketURI(path), "dir", e.Dir())
	if tlsConfig != nil {
		ml, err := listenMutualTLS(f.addr, tlsConfig, log)
		if err != nil {
			return err
		}
		defer ml.Close()
		go func() { _ = e.Serve(ml) }()
		log.Info("embedded database listening for other hosts, with mutual TLS", "addr", ml.Addr().String())
	}

	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if err := e.IndexAll(ctx); err != nil && ctx.Err() == nil {
			log.Warn("index _id", "err", err)
		}
		select {
		case <-ctx.Done():
			log.Info("stopped")
			return nil
		case <-t.C:
		}
	}
}

// dbFlags are the flags of `gatehouse db`.
type dbFlags struct {
	addr, certFile, keyFile, caFile string
}

// parseDBFlags reads the flags of `gatehouse db` and checks them, before
// anything is opened: a mistake is a *usageError. -h prints the command's
// usage and flags to help and returns flag.ErrHelp.
func parseDBFlags(args []string, help io.Writer) (*dbFlags, error) {
	f := &dbFlags{}
	fs := flag.NewFlagSet("gatehouse db", flag.ContinueOnError)
	fs.StringVar(&f.addr, "addr", "", "also serve other hosts on this TCP `HOST:PORT`, with mutual TLS only (needs -tls-cert, -tls-key and -tls-client-ca)")
	fs.StringVar(&f.certFile, "tls-cert", "", "PEM `file` of the certificate (chain) -addr presents")
	fs.StringVar(&f.keyFile, "tls-key", "", "PEM `file` of the private key of -tls-cert")
	fs.StringVar(&f.caFile, "tls-client-ca", "", "PEM `file` of the CA certificates a client's certificate must chain to")
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	usage := func() string {
		var b strings.Builder
		fs.SetOutput(&b)
		fs.PrintDefaults()
		return usageOf("db") + "\nflags:\n" + b.String() + "DATA_DIR and the LOG_ settings apply too (gatehouse -h)."
	}
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprintln(help, usage())
		return nil, err
	case err != nil:
		return nil, &usageError{err: fmt.Errorf("db: %w", err), usage: usage()}
	case fs.NArg() > 0:
		return nil, &usageError{err: fmt.Errorf("db: unexpected %q", fs.Arg(0)), usage: usage()}
	case f.addr == "" && (f.certFile != "" || f.keyFile != "" || f.caFile != ""):
		return nil, &usageError{err: errors.New("db: -tls-cert, -tls-key and -tls-client-ca go with -addr")}
	case f.addr != "" && (f.certFile == "" || f.keyFile == "" || f.caFile == ""):
		return nil, &usageError{err: errors.New("db: -addr serves other hosts, so it needs mutual TLS: give -tls-cert, -tls-key and -tls-client-ca too " +
			"(the database has no passwords; this machine's instances need no -addr: they use the socket in DATA_DIR)")}
	case f.addr != "":
		if _, _, err := net.SplitHostPort(f.addr); err != nil {
			return nil, &usageError{err: fmt.Errorf("db: -addr %q: want HOST:PORT, like 10.0.0.5:27017", f.addr)}
		}
	}
	return f, nil
}

// mutualTLS is the TLS configuration of `gatehouse db -addr`: the server
// presents certFile/keyFile, and every client must present a certificate
// that chains to caFile (parseDBFlags made sure all three are given).
func mutualTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("db: -tls-cert/-tls-key: %w", err)
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("db: -tls-client-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("db: -tls-client-ca: no PEM certificate in %s", caFile)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS13,
	}, nil
}

// mtlsListener accepts TCP connections and passes on only those that
// complete a TLS handshake with a client certificate from the CA. The
// handshakes run concurrently and within handshakeTimeout, so a client that
// stalls holds up no other, and a refused client never reaches the
// database (not even a connection to the engine is made for it).
type mtlsListener struct {
	net.Listener // TCP
	config       *tls.Config
	log          *slog.Logger
	conns        chan net.Conn
	done         chan struct{}
	once         sync.Once
}

func listenMutualTLS(addr string, config *tls.Config, log *slog.Logger) (*mtlsListener, error) {
	tcp, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("db: -addr: %w", err)
	}
	l := &mtlsListener{Listener: tcp, config: config, log: log, conns: make(chan net.Conn), done: make(chan struct{})}
	go l.acceptTCP()
	return l, nil
}

func (l *mtlsListener) acceptTCP() {
	for {
		c, err := l.Listener.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		} else if err != nil { // out of file descriptors, say: wait, as net/http does
			l.log.Warn("database: accept", "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		go l.handshake(c)
	}
}

func (l *mtlsListener) handshake(c net.Conn) {
	tc := tls.Server(c, l.config)
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		l.log.Warn("database client refused", "remote", c.RemoteAddr().String(), "err", err)
		_ = c.Close()
		return
	}
	select {
	case l.conns <- tc:
	case <-l.done:
		_ = tc.Close()
	}
}

// Accept returns the next client that completed its handshake.
func (l *mtlsListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting; connections already accepted stay open.
func (l *mtlsListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}
