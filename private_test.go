package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gatehouse/graph/model"
	"gatehouse/internal/testlog"
	"gatehouse/storage"
)

// The attacks of these tests come from another OS user of the machine, or
// a sidecar: the database must be out of their reach. Tests run as root,
// so they check the modes and listeners that keep others out rather than
// switching users.

// listeners returns what process pid listens on: the ports of its TCP
// listening sockets, and the paths of its listening unix sockets.
func listeners(t *testing.T, pid int) (tcpPorts []int, unixPaths []string) {
	t.Helper()
	fds := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(fds)
	if err != nil {
		t.Skipf("cannot list the process's sockets: %v", err)
	}
	inodes := map[string]bool{}
	for _, e := range entries {
		if link, err := os.Readlink(filepath.Join(fds, e.Name())); err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	table := func(name string) [][]string {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, name))
		if err != nil {
			t.Skipf("cannot read the socket table: %v", err)
		}
		var rows [][]string
		for _, line := range strings.Split(string(b), "\n")[1:] {
			if f := strings.Fields(line); len(f) > 0 {
				rows = append(rows, f)
			}
		}
		return rows
	}
	for _, name := range []string{"tcp", "tcp6"} {
		for _, f := range table(name) { // sl local remote st ... inode
			if len(f) > 9 && f[3] == "0A" && inodes[f[9]] { // 0A: LISTEN
				port, _ := strconv.ParseUint(f[1][strings.LastIndexByte(f[1], ':')+1:], 16, 32)
				tcpPorts = append(tcpPorts, int(port))
			}
		}
	}
	for _, f := range table("unix") { // Num RefCount Protocol Flags Type St Inode Path
		if len(f) > 7 && f[3] == "00010000" && inodes[f[6]] { // __SO_ACCEPTCON: listening
			unixPaths = append(unixPaths, f[7])
		}
	}
	return tcpPorts, unixPaths
}

// checkOwnerOnly fails the test for anything in dir that its owner's group
// or others could open, and for a dir not exactly 0700.
func checkOwnerOnly(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if m := fi.Mode().Perm(); m&0o077 != 0 || (p == dir && m != 0o700) {
			t.Errorf("%s: mode %04o, want owner-only", p, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A DATA_DIR that existed with loose modes (a copy, a restored backup, a
// directory made by hand) is owner-only once the server has started, every
// file in it too, and the log says what was fixed. Files the engine
// creates later are owner-only as well.
func TestLooseDataDirIsMadeOwnerOnly(t *testing.T) {
	t.Parallel()
	env := testEnv(t)
	dir := env["DATA_DIR"]
	g := start(t, env)
	signIn(t, g, "register", "lou")
	g.stop()

	loosened := map[string]bool{}
	if err := os.MkdirAll(filepath.Join(dir, "backup"), 0o777); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"notes.txt": "x", "backup/old.sqlite": "y"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o666); err != nil {
			t.Fatal(err)
		}
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		loosened[p] = true
		if d.IsDir() {
			return os.Chmod(p, 0o755)
		}
		return os.Chmod(p, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}

	g = start(t, env)
	checkOwnerOnly(t, dir)
	for p := range loosened {
		if !strings.Contains(g.out.String(), "path="+p+" was=") {
			t.Errorf("the log does not say %s was fixed", p)
		}
	}
	signIn(t, g, "login", "lou")
	signIn(t, g, "register", "lia") // the engine writes, maybe new files
	checkOwnerOnly(t, dir)
	if t.Failed() {
		t.Logf("server log:\n%s", g.out)
	}
}

// DATA_DIR of another user is refused with a message naming it: that
// user could read the hashes or plant a session whatever the modes.
func TestDataDirOfAnotherUserIsRefused(t *testing.T) {
	t.Parallel()
	env := testEnv(t)
	dir := filepath.Join(env["DATA_DIR"], "data")
	env["DATA_DIR"] = dir
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Skipf("cannot give a directory to another user (not root): %v", err)
	}
	err := run(context.Background(), []string{"gatehouse"}, func(k string) string { return env[k] }, strings.NewReader(""), &testlog.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "DATA_DIR "+dir) || !strings.Contains(err.Error(), "uid 65534") {
		t.Errorf("run on a DATA_DIR of uid 65534: %v, want a refusal naming DATA_DIR and its owner", err)
	}
}

// The server listens on TCP for its API only: the embedded engine has no
// port, and every socket it has is in DATA_DIR, owner-only. `gatehouse db`
// without -addr has no TCP listener at all.
func TestEngineHasNoTCPListener(t *testing.T) {
	t.Parallel()
	env := procEnv(t)
	p := startProc(t, env)
	u, err := url.Parse(p.url)
	if err != nil {
		t.Fatal(err)
	}
	apiPort, _ := strconv.Atoi(u.Port())
	ports, paths := listeners(t, p.cmd.Process.Pid)
	if len(ports) != 1 || ports[0] != apiPort {
		t.Errorf("the server listens on TCP ports %v, want only the API's %d", ports, apiPort)
	}
	for _, want := range []string{"ferretdb.sock", adminSocket} {
		if !containsString(paths, filepath.Join(env["DATA_DIR"], want)) {
			t.Errorf("unix listeners %v: no %s in DATA_DIR", paths, want)
		}
	}
	for _, path := range paths {
		if filepath.Dir(path) != env["DATA_DIR"] {
			t.Errorf("unix listener %s is outside DATA_DIR", path)
		}
	}
	checkOwnerOnly(t, env["DATA_DIR"])

	dbEnv := map[string]string{"DATA_DIR": t.TempDir()}
	db := startProc(t, dbEnv, "db")
	if strings.Contains(db.url, "127.0.0.1") || !strings.HasSuffix(db.url, "db.sock/") {
		t.Errorf("gatehouse db serves %s, want its socket", db.url)
	}
	ports, paths = listeners(t, db.cmd.Process.Pid)
	if len(ports) != 0 {
		t.Errorf("gatehouse db listens on TCP ports %v, want none", ports)
	}
	for _, path := range paths {
		if filepath.Dir(path) != dbEnv["DATA_DIR"] {
			t.Errorf("gatehouse db: unix listener %s is outside DATA_DIR", path)
		}
	}
	checkOwnerOnly(t, dbEnv["DATA_DIR"])
}

func containsString(list []string, s string) bool { return indexOf(list, s) >= 0 }

// While a process owns DATA_DIR, a second server or `gatehouse db` on it
// is refused at once, with a message naming DATA_DIR and the owner's pid;
// the owner goes on serving.
func TestSecondProcessOnDataDirIsRefused(t *testing.T) {
	t.Parallel()
	env := procEnv(t)
	p := startProc(t, env)
	tok, _ := signIn(t, &gatehouse{t: t, url: p.url}, "register", "olga")
	for _, args := range [][]string{nil, {"db"}} {
		began := time.Now()
		err := run(context.Background(), append([]string{"gatehouse"}, args...), func(k string) string { return env[k] }, strings.NewReader(""), &testlog.Buffer{})
		want := fmt.Sprintf("DATA_DIR %s is in use by another gatehouse process (pid %d)", env["DATA_DIR"], p.cmd.Process.Pid)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("gatehouse %v beside a running server: %v, want %q", args, err, want)
		}
		t.Logf("gatehouse %v refused after %v", args, time.Since(began))
	}
	if got := me(t, &gatehouse{t: t, url: p.url}, tok); got != "olga" {
		t.Errorf("the owner after the refusals: me = %q", got)
	}
}

// While a server runs on DATA_DIR, `gatehouse user` works through it (its
// admin socket), never opening the data: a password reset ends the
// sessions the running server serves, at once (cached ones included), and a user added is one it
// knows. The command's errors are the same as on its own.
func TestUserCommandsGoThroughTheRunningServer(t *testing.T) {
	t.Parallel()
	env := procEnv(t)
	p := startProc(t, env)
	g := &gatehouse{t: t, url: p.url}
	first, _ := signIn(t, g, "register", "alma")
	second, _ := signIn(t, g, "login", "alma")
	// The server keeps its sessions in its cache once read: user passwd
	// must end them there too.
	if !strings.Contains(p.out.String(), "session cache: on") {
		t.Fatalf("the server does not say its session cache is on:\n%s", p.out.String())
	}
	for range 2 {
		for i, tok := range []string{first, second} {
			if got := me(t, g, tok); got != "alma" {
				t.Fatalf("session %d before user passwd: me = %q", i, got)
			}
		}
	}

	cli := func(stdin string, args ...string) (string, error) {
		var out testlog.Buffer
		err := run(context.Background(), append([]string{"gatehouse"}, args...), func(k string) string { return env[k] }, strings.NewReader(stdin), &out)
		return out.String(), err
	}
	out, err := cli("a new password\n", "user", "passwd", "alma")
	if err != nil {
		t.Fatalf("user passwd: %v\n%s", err, out)
	}
	if !strings.Contains(out, "through the server that owns DATA_DIR") || !strings.Contains(out, fmt.Sprint("pid=", p.cmd.Process.Pid)) {
		t.Errorf("user passwd does not say it went through the server (pid %d):\n%s", p.cmd.Process.Pid, out)
	}
	for i, tok := range []string{first, second} {
		if got := me(t, g, tok); got != "" {
			t.Errorf("session %d survived user passwd on the running server, as %q", i, got)
		}
	}
	r, err := post(http.DefaultClient, g.url, "", loginMutation, map[string]any{"u": "alma", "p": "a new password"})
	if err != nil || r.token("login") == "" {
		t.Fatalf("login with the new password: %+v, %v", r, err)
	}
	// The change is in alma's security log, without an address: it came
	// from the shell, not from a client.
	var events model.SecurityEventConnection
	r, err = post(http.DefaultClient, g.url, r.token("login"), `{ securityEvents(first: 2) { edges { node { type ipAddress userAgent } } } }`, nil)
	if err != nil || r.into("securityEvents", &events) != nil || len(events.Edges) != 2 {
		t.Fatalf("securityEvents: %+v, %v", r, err)
	}
	if changed := events.Edges[1].Node; changed.Type != model.SecurityEventTypePasswordChanged || changed.IPAddress != nil || changed.UserAgent != nil {
		t.Errorf("the event before the sign-in: %+v, want PASSWORD_CHANGED without address or user agent", changed)
	}
	if r, err := post(http.DefaultClient, g.url, "", loginMutation, map[string]any{"u": "alma", "p": password}); err != nil || r.code() != "UNAUTHENTICATED" {
		t.Errorf("login with the old password: %+v, %v", r, err)
	}

	if out, err := cli("bruno's password\n", "user", "add", "bruno"); err != nil || !strings.Contains(out, `created user "bruno"`) {
		t.Fatalf("user add: %v\n%s", err, out)
	}
	if r, err := post(http.DefaultClient, g.url, "", loginMutation, map[string]any{"u": "bruno", "p": "bruno's password"}); err != nil || r.token("login") == "" {
		t.Errorf("login as the user added through the server: %+v, %v", r, err)
	}
	if _, err := cli("another password\n", "user", "add", "Bruno"); err == nil || !strings.Contains(err.Error(), "taken") {
		t.Errorf("user add of a taken name: %v, want username taken", err)
	}
	if _, err := cli("another password\n", "user", "passwd", "ghost"); err == nil || err.Error() != `user passwd: no user "ghost"` {
		t.Errorf("user passwd of an unknown user: %v", err)
	}
	if _, err := cli("short\n", "user", "add", "carla"); err == nil || !strings.Contains(err.Error(), "user add: ") {
		t.Errorf("user add with a short password: %v", err)
	}
	waitFor(t, 5*time.Second, "the server logs the commands", func() bool {
		return strings.Contains(p.out.String(), `msg="user command over the admin socket" command=passwd user=alma`)
	})
	if strings.Contains(p.out.String(), "a new password") {
		t.Error("the server log contains a password")
	}
}

// While `gatehouse db` owns DATA_DIR, `gatehouse user` reaches the data
// through its socket, as the instances do.
func TestUserCommandsGoThroughGatehouseDB(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := startProc(t, map[string]string{"DATA_DIR": dir}, "db")
	env := testEnv(t)
	env["DATA_DIR"] = dir
	var out testlog.Buffer
	err := run(context.Background(), []string{"gatehouse", "user", "add", "cora"}, func(k string) string { return env[k] }, strings.NewReader(password+"\n"), &out)
	if err != nil || !strings.Contains(out.String(), "through `gatehouse db`") {
		t.Fatalf("user add beside gatehouse db: %v\n%s", err, &out)
	}
	env = testEnv(t)
	env["MONGODB_URI"], env["TOTP_KEY"] = db.url, testTOTPKey
	if tok, _ := signIn(t, start(t, env), "login", "cora"); tok == "" {
		t.Error("an instance of gatehouse db does not know the user added")
	}
}

// A DATA_DIR longer than a socket address (108 bytes): the server's
// engine and admin sockets are bound and reached through the open
// directory, and the user commands work through the server.
// `gatehouse db` refuses it, since its instances could not connect.
func TestLongDataDir(t *testing.T) {
	t.Parallel()
	env := testEnv(t)
	env["DATA_DIR"] = filepath.Join(env["DATA_DIR"], strings.Repeat("a-long-directory-name/", 6))
	if len(env["DATA_DIR"]) <= 108 {
		t.Fatalf("DATA_DIR is only %d bytes", len(env["DATA_DIR"]))
	}
	g := start(t, env)
	tok, _ := signIn(t, g, "register", "lena")
	var out testlog.Buffer
	err := run(context.Background(), []string{"gatehouse", "user", "passwd", "lena"}, func(k string) string { return env[k] }, strings.NewReader("lena's new password\n"), &out)
	if err != nil || !strings.Contains(out.String(), "through the server") {
		t.Fatalf("user passwd through the server: %v\n%s", err, &out)
	}
	if got := me(t, g, tok); got != "" {
		t.Errorf("a session survived the password reset as %q", got)
	}
	for _, name := range []string{"ferretdb.sock", adminSocket} {
		fi, err := os.Lstat(filepath.Join(env["DATA_DIR"], name))
		if err != nil || fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, %v; want a socket of mode 0600 in DATA_DIR", name, fi, err)
		}
	}
	g.stop()
	err = run(context.Background(), []string{"gatehouse", "db"}, func(k string) string { return env[k] }, strings.NewReader(""), &testlog.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "shorter DATA_DIR") {
		t.Errorf("gatehouse db on a long DATA_DIR: %v", err)
	}
}

// `gatehouse db -addr` serves other hosts with mutual TLS only: -addr
// without the certificates is refused at start; a client without a
// certificate, or with one of another CA, is refused at the handshake
// and reaches nothing; a client with a certificate of the CA works, on the
// same data as the socket.
func TestDatabaseServesOtherHostsWithMutualTLSOnly(t *testing.T) {
	t.Parallel()
	runDB := func(env map[string]string, args ...string) error {
		return run(context.Background(), append([]string{"gatehouse", "db"}, args...), func(k string) string { return env[k] }, strings.NewReader(""), &testlog.Buffer{})
	}
	pki := t.TempDir()
	ca, caKey := newCert(t, pki, "ca", nil, nil, true)
	newCert(t, pki, "server", ca, caKey, false)
	newCert(t, pki, "client", ca, caKey, false)
	other, otherKey := newCert(t, pki, "other-ca", nil, nil, true)
	newCert(t, pki, "rogue", other, otherKey, false)
	file := func(name string) string { return filepath.Join(pki, name) }

	for _, args := range [][]string{
		{"-addr", "127.0.0.1:0"},
		{"-addr", "127.0.0.1:0", "-tls-cert", file("server.pem"), "-tls-key", file("server-key.pem")},
		{"-tls-cert", file("server.pem"), "-tls-key", file("server-key.pem"), "-tls-client-ca", file("ca.pem")},
	} {
		if err := runDB(testEnv(t), args...); err == nil || !strings.Contains(err.Error(), "-addr") {
			t.Errorf("gatehouse db %v: %v, want a refusal", args, err)
		}
	}
	if err := runDB(testEnv(t), "-addr", "127.0.0.1:0", "-tls-cert", file("server.pem"), "-tls-key", file("server-key.pem"), "-tls-client-ca", file("server-key.pem")); err == nil {
		t.Error("gatehouse db with a CA file holding no certificate started")
	}

	env := testEnv(t)
	db := start2(t, env, `msg="embedded database listening for other hosts, with mutual TLS" addr=(\S+)`, "db",
		"-addr", "127.0.0.1:0", "-tls-cert", file("server.pem"), "-tls-key", file("server-key.pem"), "-tls-client-ca", file("ca.pem"))
	uri := func(client string) string {
		q := url.Values{"tls": {"true"}, "tlsCAFile": {file("ca.pem")}}
		if client != "" {
			q.Set("tlsCertificateKeyFile", file(client+"-bundle.pem"))
		}
		return "mongodb://" + db.url + "/?" + q.Encode()
	}
	for _, client := range []string{"", "rogue"} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		st, err := storage.Open(ctx, uri(client), "gatehouse", storage.Options{Timeout: 3 * time.Second})
		cancel()
		if err == nil {
			_ = st.Close(context.Background())
			t.Errorf("a client with certificate %q was served", client)
		}
	}
	waitFor(t, 10*time.Second, "the refusals are logged", func() bool {
		return strings.Count(db.out.String(), `msg="database client refused"`) >= 2
	})

	instance := testEnv(t)
	instance["MONGODB_URI"], instance["TOTP_KEY"] = uri("client"), testTOTPKey
	signIn(t, start(t, instance), "register", "tim")
	m := regexp.MustCompile(`msg="embedded database listening" uri=(\S+)`).FindStringSubmatch(db.out.String())
	if m == nil {
		t.Fatalf("no socket in the log:\n%s", db.out)
	}
	if _, err := openShared(t, m[1], "gatehouse").UserByKey(context.Background(), "tim"); err != nil {
		t.Errorf("the user registered over mutual TLS, read on the socket: %v", err)
	}
}

// newCert writes name.pem and name-key.pem (and name-bundle.pem, both in
// one, as the driver's tlsCertificateKeyFile wants) into dir: a CA when ca
// is true, self-signed when parent is nil, otherwise a leaf for 127.0.0.1
// signed by parent.
func newCert(t *testing.T, dir, name string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, ca bool) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	if ca {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	for file, data := range map[string][]byte{name + ".pem": certPEM, name + "-key.pem": keyPEM, name + "-bundle.pem": append(certPEM, keyPEM...)} {
		if err := os.WriteFile(filepath.Join(dir, file), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return cert, key
}
