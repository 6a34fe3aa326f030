package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gatehouse/auth"
	"gatehouse/internal/datadir"
	"gatehouse/internal/embedded"
	"gatehouse/storage"
)

// commandUsage lists gatehouse's commands, an entry each (a line indented
// further continues the entry above it): -h prints it all, `gatehouse
// user -h` the entries of user, and a command gatehouse does not know is
// answered with it.
const commandUsage = `usage:
  gatehouse                    serve the API and the playground (settings: gatehouse -h)
  gatehouse user add NAME      create a user; the password is read from stdin
  gatehouse user passwd NAME   set a user's password and end all of its sessions
  gatehouse user totp reset NAME
                               remove a user's second factor (a lost phone) and end all of its sessions
  gatehouse user totp reset-all
                               remove every user's second factor (a TOTP key lost for good), the server stopped
  gatehouse user passkeys reset NAME
                               delete all of a user's passkeys (a lost device, an unknown passkey) and end all of its sessions
  gatehouse db [-addr HOST:PORT -tls-cert F -tls-key F -tls-client-ca F]
                               serve the embedded database alone (for several gatehouse instances)
  gatehouse backup [-force] FILE
                               write a consistent copy of the embedded database to FILE, while the server runs
  gatehouse restore [-force] FILE
                               put a backup in place of DATA_DIR's database, the server stopped
                               (-force: replace a database there, keeping it aside in DATA_DIR)
  gatehouse -version           print the version
settings (gatehouse -h lists them) go before the command: gatehouse -data-dir DIR user add NAME`

// usageOf returns the usage of one command (its entries in commandUsage),
// or "" if gatehouse has no such command.
func usageOf(command string) string {
	var entries []string
	in := false
	for _, line := range strings.Split(commandUsage, "\n") {
		switch {
		case strings.HasPrefix(line, "  gatehouse "):
			in = strings.HasPrefix(line, "  gatehouse "+command+" ")
		case !strings.HasPrefix(line, "    "):
			in = false
		}
		if in {
			entries = append(entries, line)
		}
	}
	if len(entries) == 0 {
		return ""
	}
	return "usage:\n" + strings.Join(entries, "\n")
}

// adminSocket is the socket in DATA_DIR on which a server that owns the
// data runs the user commands for `gatehouse user`.
const adminSocket = "admin.sock"

// users is what the user commands need: the auth.Service itself, or the
// admin socket of the server that owns DATA_DIR.
type users interface {
	CreateUser(ctx context.Context, username, password string) error
	SetPassword(ctx context.Context, username, password string) error
	// ResetTOTP reports whether the user had a second factor.
	ResetTOTP(ctx context.Context, username string) (bool, error)
	// ResetPasskeys returns how many passkeys it deleted.
	ResetPasskeys(ctx context.Context, username string) (int, error)
}

// isTOTPReset reports whether args is `user totp reset NAME` or `user
// totp reset-all`, the user commands that read no password.
func isTOTPReset(args []string) bool {
	return len(args) == 4 && args[0] == "user" && args[1] == "totp" && args[2] == "reset" ||
		len(args) == 3 && args[0] == "user" && args[1] == "totp" && args[2] == "reset-all"
}

// isPasskeysReset reports whether args is `user passkeys reset NAME`.
func isPasskeysReset(args []string) bool {
	return len(args) == 4 && args[0] == "user" && args[1] == "passkeys" && args[2] == "reset"
}

// readsNoPassword reports whether args is a user command without a password.
func readsNoPassword(args []string) bool { return isTOTPReset(args) || isPasskeysReset(args) }

// checkCommand says whether args, what follows the settings, is a command
// gatehouse knows, before anything is opened for it: if not, a *usageError
// with the usage. A -h in it prints the command's usage to help and
// returns flag.ErrHelp.
func checkCommand(args []string, help io.Writer) error {
	if args[0] == "db" {
		_, err := parseDBFlags(args[1:], help)
		return err
	}
	if usage := usageOf(args[0]); usage != "" && slices.ContainsFunc(args[1:], isHelp) {
		fmt.Fprintln(help, usage)
		return flag.ErrHelp
	}
	if len(args) == 3 && args[0] == "user" && (args[1] == "add" || args[1] == "passwd") || readsNoPassword(args) {
		return nil
	}
	if args[0] == "backup" || args[0] == "restore" {
		_, _, err := parseBackupArgs(args)
		return err
	}
	if usage := usageOf(args[0]); usage != "" {
		return &usageError{err: fmt.Errorf("not a command: gatehouse %s", strings.Join(args, " ")), usage: usage}
	}
	return &usageError{err: fmt.Errorf("unknown command %q", args[0]), usage: commandUsage}
}

// isHelp reports whether arg asks for help, as the flag package reads it.
func isHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--h" || arg == "--help"
}

// runCommand runs an administration command with the password read from
// stdin: for deployments with ALLOW_SIGNUP=false, and for resetting a
// forgotten password.
func runCommand(ctx context.Context, svc users, args []string, password string, stdout io.Writer) error {
	if err := checkCommand(args, io.Discard); err != nil {
		return err
	}
	if isPasskeysReset(args) {
		name := args[3]
		n, err := svc.ResetPasskeys(ctx, name)
		if errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("user passkeys reset: no user %q", name)
		} else if err != nil {
			return fmt.Errorf("user passkeys reset: %w", err)
		}
		fmt.Fprintf(stdout, "%d passkeys of %q deleted; all of its sessions ended\n", n, name)
		return nil
	}
	if isTOTPReset(args) && args[2] == "reset-all" {
		all, ok := svc.(interface {
			ResetAllTOTP(context.Context) (int, error)
		})
		if !ok { // the admin socket: a server is running with its key
			return errors.New("user totp reset-all: a server is running on DATA_DIR: stop it first " +
				"(it started, so its TOTP key is the database's: is a reset needed?)")
		}
		n, err := all.ResetAllTOTP(ctx)
		if err != nil {
			return fmt.Errorf("user totp reset-all: %w", err)
		}
		fmt.Fprintf(stdout, "second factors of %d users removed; their sessions ended; the TOTP key in use is now the database's\n", n)
		return nil
	}
	if isTOTPReset(args) {
		name := args[3]
		had, err := svc.ResetTOTP(ctx, name)
		if errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("user totp reset: no user %q", name)
		} else if err != nil {
			return fmt.Errorf("user totp reset: %w", err)
		}
		if had {
			fmt.Fprintf(stdout, "second factor of %q removed; all of its sessions ended\n", name)
		} else {
			fmt.Fprintf(stdout, "%q had no second factor; all of its sessions ended\n", name)
		}
		return nil
	}
	name := args[2]
	var err error
	switch args[1] {
	case "add":
		if err := svc.CreateUser(ctx, name, password); err != nil {
			return fmt.Errorf("user add: %w", err)
		}
		fmt.Fprintf(stdout, "created user %q\n", name)
	case "passwd":
		err = svc.SetPassword(ctx, name, password)
		if errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("user passwd: no user %q", name)
		} else if err != nil {
			return fmt.Errorf("user passwd: %w", err)
		}
		fmt.Fprintf(stdout, "password of %q changed; all of its sessions ended\n", name)
	}
	return nil
}

// ownerWait is how long a command waits for the process that holds
// DATA_DIR to answer (a server that is still starting).
const ownerWait = 30 * time.Second

// openForCommand opens the database for an administration command. With
// MONGODB_URI, or while no process holds DATA_DIR, that is openDatabase
// (the command then holds DATA_DIR, and a server starting meanwhile waits
// for nothing: it is refused). While a server holds it, the command goes
// through that server's admin socket (remote); while `gatehouse db` does,
// the command connects to its socket as the instances do.
func openForCommand(ctx context.Context, cfg *config, log *slog.Logger) (db *database, remote users, err error) {
	deadline := time.Now().Add(ownerWait)
	for {
		db, err := openDatabase(ctx, cfg, log)
		var inUse *datadir.InUseError
		if !errors.As(err, &inUse) {
			return db, nil, err
		}
		// db.sock first: `gatehouse db` has an admin socket too, for backups.
		if c, err := datadir.Dial(ctx, cfg.dataDir, dbSocket); err == nil {
			_ = c.Close()
			log.Info("user command: through `gatehouse db`, which owns DATA_DIR", "dir", inUse.Dir, "pid", inUse.PID)
			cfg.mongoURI = embedded.SocketURI(filepath.Join(inUse.Dir, dbSocket))
			continue
		}
		if c, err := datadir.Dial(ctx, cfg.dataDir, adminSocket); err == nil {
			_ = c.Close()
			log.Info("user command: through the server that owns DATA_DIR", "dir", inUse.Dir, "pid", inUse.PID)
			return nil, adminClient(cfg.dataDir), nil
		}
		if time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("%w; it did not answer on %s within %v", err, filepath.Join(inUse.Dir, adminSocket), ownerWait)
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// serveAdmin serves the user commands on the owner-only admin socket in
// DATA_DIR, through svc, so that `gatehouse user` works while this server
// owns the data (and its own state stays coherent), and `gatehouse backup`
// (handleBackup). stop closes it.
func serveAdmin(e *embedded.Server, svc *auth.Service, log *slog.Logger) (stop func(), err error) {
	ln, err := e.Listen(adminSocket)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /backup", handleBackup(e.Dir(), log))
	mux.HandleFunc("POST /user/{command}", func(w http.ResponseWriter, r *http.Request) {
		var req adminRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&req); err != nil {
			http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
			return
		}
		command := r.PathValue("command")
		var err error
		had := false
		switch command {
		case "add":
			err = svc.CreateUser(r.Context(), req.Name, req.Password)
		case "passwd":
			err = svc.SetPassword(r.Context(), req.Name, req.Password)
		case "totp-reset":
			had, err = svc.ResetTOTP(r.Context(), req.Name)
		case "passkeys-reset":
			var n int
			n, err = svc.ResetPasskeys(r.Context(), req.Name)
			w.Header().Set("Deleted", strconv.Itoa(n))
		default:
			http.NotFound(w, r)
			return
		}
		var aerr *auth.Error
		switch {
		case err == nil && had:
			log.Info("user command over the admin socket", "command", command, "user", req.Name)
			w.WriteHeader(http.StatusOK) // totp-reset: there was one
			return
		case err == nil:
			log.Info("user command over the admin socket", "command", command, "user", req.Name)
			w.WriteHeader(http.StatusNoContent)
			return
		case errors.Is(err, storage.ErrNotFound):
			w.WriteHeader(http.StatusNotFound)
		case errors.As(err, &aerr):
			w.WriteHeader(http.StatusBadRequest)
		default:
			w.WriteHeader(http.StatusInternalServerError)
		}
		log.Warn("user command over the admin socket failed", "command", command, "user", req.Name, "err", err)
		_, _ = io.WriteString(w, err.Error())
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() { _ = srv.Serve(ln) }()
	log.Info("admin socket listening", "path", filepath.Join(e.Dir(), adminSocket))
	return func() { _ = srv.Close() }, nil
}

// adminRequest is the body of a user command on the admin socket.
type adminRequest struct {
	Name     string `json:"name"`
	Password string `json:"password"`
}

// adminClient runs the user commands through the admin socket in dir.
type adminClient string

func (dir adminClient) CreateUser(ctx context.Context, name, password string) error {
	_, _, err := dir.call(ctx, "add", name, password)
	return err
}

func (dir adminClient) SetPassword(ctx context.Context, name, password string) error {
	_, _, err := dir.call(ctx, "passwd", name, password)
	return err
}

func (dir adminClient) ResetPasskeys(ctx context.Context, name string) (int, error) {
	_, header, err := dir.call(ctx, "passkeys-reset", name, "")
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(header.Get("Deleted"))
}

func (dir adminClient) ResetTOTP(ctx context.Context, name string) (bool, error) {
	status, _, err := dir.call(ctx, "totp-reset", name, "")
	return status == http.StatusOK, err // 200: there was one; 204: none
}

// call runs command over the socket and returns the status and header of
// its success.
func (dir adminClient) call(ctx context.Context, command, name, password string) (int, http.Header, error) {
	c := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return datadir.Dial(ctx, string(dir), adminSocket)
		},
	}}
	defer c.CloseIdleConnections()
	body, _ := json.Marshal(adminRequest{Name: name, Password: password})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://gatehouse/user/"+command, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	res, err := c.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("admin socket: %w", err)
	}
	defer res.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(res.Body, 4<<10))
	switch res.StatusCode {
	case http.StatusNoContent, http.StatusOK:
		return res.StatusCode, res.Header, nil
	case http.StatusNotFound:
		return 0, nil, storage.ErrNotFound
	default:
		return 0, nil, errors.New(string(msg))
	}
}

// readPassword reads one line: the password, never an argument (arguments
// show up in process lists and shell history).
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 1024)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("read password: empty; pipe it on stdin, for example: printf '%s\\n' \"$PW\" | gatehouse user add NAME")
	}
	return line, nil
}
