package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"gatehouse/auth"
	"gatehouse/internal/embedded"
	"gatehouse/storage"
)

const commandUsage = `usage:
  gatehouse db [-addr HOST:PORT]   serve the embedded database alone (for several gatehouse instances)
  gatehouse user add NAME      create a user; the password is read from stdin
  gatehouse user passwd NAME   set a user's password and end all of its sessions`

// runCommand runs an administration command: for deployments with
// ALLOW_SIGNUP=false, and for resetting a forgotten password.
func runCommand(ctx context.Context, svc *auth.Service, args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) != 3 || args[0] != "user" {
		return errors.New(commandUsage)
	}
	name := args[2]
	switch args[1] {
	case "add":
		password, err := readPassword(stdin)
		if err != nil {
			return err
		}
		if err := svc.CreateUser(ctx, name, password); err != nil {
			return fmt.Errorf("user add: %w", err)
		}
		fmt.Fprintf(stdout, "created user %q\n", name)
	case "passwd":
		password, err := readPassword(stdin)
		if err != nil {
			return err
		}
		err = svc.SetPassword(ctx, name, password)
		if errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("user passwd: no user %q", name)
		} else if err != nil {
			return fmt.Errorf("user passwd: %w", err)
		}
		fmt.Fprintf(stdout, "password of %q changed; all of its sessions ended\n", name)
	default:
		return errors.New(commandUsage)
	}
	return nil
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

// serveDatabase runs the embedded FerretDB alone on a fixed address, so that
// several gatehouse processes (MONGODB_URI=mongodb://ADDR/) can share it.
// It keeps the _id indexes of every database in place as clients create
// their collections.
func serveDatabase(ctx context.Context, cfg *config, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("db", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:27017", "address to serve the MongoDB wire protocol on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	e, err := embedded.StartOn(cfg.dataDir, *addr, log)
	if err != nil {
		return err
	}
	defer e.Close()
	log.Info("embedded database listening", "uri", e.URI(), "dir", cfg.dataDir)
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
