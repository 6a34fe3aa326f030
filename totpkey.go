package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"gatehouse/auth"
)

// totpKeyFile is the file in DATA_DIR that holds the embedded default's
// TOTP key when TOTP_KEY is not set.
const totpKeyFile = "totp.key"

// loadTOTPKey returns the key in dir's totp.key, creating the file
// (owner-only, a new random key) if there is none. Backups of the
// database do not hold it: without it, the stored second-factor secrets
// cannot be read.
func loadTOTPKey(dir string) (key []byte, created bool, err error) {
	path := filepath.Join(dir, totpKeyFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		key = make([]byte, auth.KeySize)
		_, _ = rand.Read(key)
		_, werr := fmt.Fprintln(f, base64.StdEncoding.EncodeToString(key))
		if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
			_ = os.Remove(path)
			return nil, false, fmt.Errorf("write %s: %w", path, err)
		}
		return key, true, nil
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, false, fmt.Errorf("create %s: %w", path, err)
	}
	f, err = os.Open(path)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, false, fmt.Errorf("%s is not a regular file", path)
	}
	text, err := io.ReadAll(io.LimitReader(f, 1<<10))
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", path, err)
	}
	var v keyValue
	if err := v.Set(string(text)); err != nil || v == nil {
		return nil, false, fmt.Errorf("%s holds no TOTP key (want %d random bytes in base64): restore it from "+
			"where you keep it (the second factors of the database need it)", path, auth.KeySize)
	}
	return v, false, nil
}
