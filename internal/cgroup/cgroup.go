// Package cgroup reads the limits of the process's cgroup (v2) from a file
// system rooted at /, so that tests can hand it fake files.
package cgroup

import (
	"bufio"
	"bytes"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// read returns the trimmed content of file name in the process's cgroup v2
// directory; ok is false where there is no such cgroup or file.
func read(root fs.FS, name string) (string, bool) {
	b, err := fs.ReadFile(root, "proc/self/cgroup")
	if err != nil {
		return "", false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		rest, found := strings.CutPrefix(sc.Text(), "0::/") // the v2 hierarchy
		if !found {
			continue
		}
		val, err := fs.ReadFile(root, path.Join("sys/fs/cgroup", rest, name))
		if err != nil {
			return "", false
		}
		return strings.TrimSpace(string(val)), true
	}
	return "", false
}

// MemoryMax is the cgroup's memory limit in bytes; ok is false where there
// is none.
func MemoryMax(root fs.FS) (limit int64, ok bool) {
	val, ok := read(root, "memory.max")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(val, 10, 64)
	return n, err == nil && n > 0 // "max" means none
}
