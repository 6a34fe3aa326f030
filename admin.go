package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"gatehouse/auth"
	"gatehouse/storage"
)

const commandUsage = `usage:
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
