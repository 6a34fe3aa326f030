package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
)

// mdBlock is a fenced code block of a Markdown file.
type mdBlock struct {
	lang  string // the fence's info string: "sh", "graphql", "json", …
	line  int    // the opening fence's line, from 1
	body  string
	right bool // only blank lines separate it from the block before
}

// name says where the block is, for failure messages.
func (b mdBlock) name() string {
	first, _, _ := strings.Cut(strings.TrimSpace(b.body), "\n")
	return fmt.Sprintf("README.md:%d (%s)", b.line, first)
}

// fencedBlocks returns the fenced code blocks of a Markdown text, in order.
func fencedBlocks(t *testing.T, text string) []mdBlock {
	t.Helper()
	var (
		blocks []mdBlock
		open   *mdBlock
		body   []string
		blank  = true // nothing but blank lines since the last block closed
	)
	for i, line := range strings.Split(text, "\n") {
		switch {
		case open == nil && strings.HasPrefix(line, "```"):
			open = &mdBlock{lang: strings.TrimSpace(line[3:]), line: i + 1, right: blank && len(blocks) > 0}
			body = nil
		case open != nil && strings.TrimSpace(line) == "```":
			open.body = strings.Join(body, "\n") + "\n"
			blocks = append(blocks, *open)
			open, blank = nil, true
		case open != nil:
			body = append(body, line)
		case strings.TrimSpace(line) != "":
			blank = false
		}
	}
	if open != nil {
		t.Fatalf("README.md:%d: the code block is never closed", open.line)
	}
	return blocks
}

// The README's examples, run in order against a fresh server as a newcomer
// would run them, so that the README stays true:
//
//   - the first block is the two commands (`go run .`, `go test -race
//     ./...`), checked but not run;
//   - each ```graphql block is sent as the playground sends it: a JSON POST
//     to /query with the cookies that register and login set, once per
//     operation it defines, in order (the playground runs the operation
//     under the cursor);
//   - each later ```sh block runs with `bash -euo pipefail` in a directory
//     whose ./data is the server's DATA_DIR, with localhost:8080 replaced by
//     the server's address and `go run .` by the test's build of the same
//     program;
//   - a ```json or ```text block right after an example (blank lines only
//     between) is its output: JSON values in order ("…" stands for any
//     value), or lines of text ("…" stands for any characters). An example
//     without one must succeed with no GraphQL errors.
//
// A failure names the block by its line in README.md and its first line.
func TestREADMEExamples(t *testing.T) {
	t.Parallel()
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatalf("curl is missing (%v): the README's examples use it; install it (apt-get install curl)", err)
	}
	text, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := fencedBlocks(t, string(text))

	work := t.TempDir()
	env := map[string]string{"PORT": "0", "DATA_DIR": filepath.Join(work, "data"), "BCRYPT_COST": "4"}
	p := startProc(t, env) // HOST is the default, localhost
	u, err := url.Parse(p.url)
	if err != nil {
		t.Fatal(err)
	}
	addr := "localhost:" + u.Port() // the cookie is Secure: only localhost gets it over plain http
	jar, _ := cookiejar.New(nil)
	playground := &http.Client{Jar: jar, Timeout: 30 * time.Second}

	var ran struct{ graphql, sh, outputs int }
	for i, b := range blocks {
		if b.lang != "sh" && b.lang != "graphql" {
			continue
		}
		if i == 0 {
			checkTwoCommands(t, b)
			continue
		}
		var want *mdBlock
		if i+1 < len(blocks) && blocks[i+1].right && (blocks[i+1].lang == "json" || blocks[i+1].lang == "text") {
			want = &blocks[i+1]
			ran.outputs++
		}
		var got string
		switch b.lang {
		case "graphql":
			got = runGraphQL(t, playground, "http://"+addr, b, want == nil)
			ran.graphql++
		case "sh":
			got = runShell(t, curl, work, addr, b)
			ran.sh++
		}
		if want != nil {
			if err := sameOutput(want.lang, want.body, got); err != nil {
				t.Fatalf("%s: the output is not what README.md:%d shows: %v\ngot:\n%s", b.name(), want.line, err, got)
			}
		}
	}
	// The README as it is: a README that lost its examples fails here.
	if ran.graphql < 3 || ran.sh < 4 || ran.outputs < 5 {
		t.Errorf("ran %d graphql and %d sh blocks and checked %d outputs; want at least 3, 4 and 5", ran.graphql, ran.sh, ran.outputs)
	}
}

// checkTwoCommands checks that the README opens with its two commands.
func checkTwoCommands(t *testing.T, b mdBlock) {
	t.Helper()
	var cmds []string
	for _, line := range strings.Split(strings.TrimSpace(b.body), "\n") {
		cmd, _, _ := strings.Cut(line, "#")
		cmds = append(cmds, strings.TrimSpace(cmd))
	}
	if want := []string{"go run .", "go test -race ./..."}; b.lang != "sh" || !reflect.DeepEqual(cmds, want) {
		t.Errorf("%s: the first block runs %q, want the two commands %q", b.name(), cmds, want)
	}
}

// runGraphQL sends each operation of the block, as the playground does, and
// returns the answers, one a line. Without an output to compare, an answer
// with errors fails the test.
func runGraphQL(t *testing.T, c *http.Client, base string, b mdBlock, noErrors bool) string {
	t.Helper()
	doc, gerr := parser.ParseQuery(&ast.Source{Input: b.body})
	if gerr != nil {
		t.Fatalf("%s: not a GraphQL document: %v", b.name(), gerr)
	}
	var answers []string
	for _, op := range doc.Operations {
		body, _ := json.Marshal(map[string]any{"query": b.body, "operationName": op.Name})
		req, err := http.NewRequest(http.MethodPost, base+"/query", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		res, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s: operation %q: %v", b.name(), op.Name, err)
		}
		answer, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			t.Fatalf("%s: operation %q: %v", b.name(), op.Name, err)
		}
		var decoded struct {
			Errors json.RawMessage `json:"errors"`
		}
		if err := json.Unmarshal(answer, &decoded); err != nil {
			t.Fatalf("%s: operation %q: status %d, not JSON: %v\n%s", b.name(), op.Name, res.StatusCode, err, answer)
		}
		if noErrors && (res.StatusCode != http.StatusOK || decoded.Errors != nil) {
			t.Fatalf("%s: operation %q: status %d: %s", b.name(), op.Name, res.StatusCode, answer)
		}
		answers = append(answers, string(answer))
	}
	if len(answers) == 0 {
		t.Fatalf("%s: no operation to run", b.name())
	}
	return strings.Join(answers, "\n")
}

// goRun makes `go run .` in an example run the test's build of gatehouse.
const goRun = `go() { if [ "${1-}" = run ] && [ "${2-}" = . ]; then shift 2; "$GATEHOUSE" "$@"; else command go "$@"; fi; }` + "\n"

// runShell runs an sh block in dir against the server at addr and returns
// its stdout; a non-zero exit fails the test.
func runShell(t *testing.T, curl, dir, addr string, b mdBlock) string {
	t.Helper()
	script := strings.ReplaceAll(b.body, "localhost:8080", addr)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", goRun+script)
	cmd.Dir = dir
	// Nothing of the test's environment but PATH (with curl's directory):
	// HOME is the example's directory, so that no ~/.curlrc applies.
	cmd.Env = []string{"PATH=" + filepath.Dir(curl) + ":" + os.Getenv("PATH"), "HOME=" + dir, "GATEHOUSE=" + binary(t)}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", b.name(), err, &stdout, &stderr)
	}
	return stdout.String()
}

// sameOutput compares an output the README shows with the one an example
// gave.
func sameOutput(lang, want, got string) error {
	if lang == "text" {
		wantLines := strings.Split(strings.TrimSpace(want), "\n")
		gotLines := strings.Split(strings.TrimSpace(got), "\n")
		if len(wantLines) != len(gotLines) {
			return fmt.Errorf("%d lines, want %d", len(gotLines), len(wantLines))
		}
		for i, w := range wantLines {
			parts := strings.Split(w, "…")
			for j := range parts {
				parts[j] = regexp.QuoteMeta(parts[j])
			}
			if !regexp.MustCompile("^" + strings.Join(parts, ".*") + "$").MatchString(gotLines[i]) {
				return fmt.Errorf("line %d is %q, want %q", i+1, gotLines[i], w)
			}
		}
		return nil
	}
	wantValues, err := jsonValues(want)
	if err != nil {
		return fmt.Errorf("the README's output: %v", err)
	}
	gotValues, err := jsonValues(got)
	if err != nil {
		return err
	}
	if len(wantValues) != len(gotValues) {
		return fmt.Errorf("%d JSON values, want %d", len(gotValues), len(wantValues))
	}
	for i := range wantValues {
		if !matches(wantValues[i], gotValues[i]) {
			return fmt.Errorf("value %d is %s, want %s", i+1, toJSON(gotValues[i]), toJSON(wantValues[i]))
		}
	}
	return nil
}

// jsonValues decodes a sequence of JSON values.
func jsonValues(s string) ([]any, error) {
	var values []any
	dec := json.NewDecoder(strings.NewReader(s))
	for {
		var v any
		if err := dec.Decode(&v); errors.Is(err, io.EOF) {
			return values, nil
		} else if err != nil {
			return nil, fmt.Errorf("not a sequence of JSON values: %v", err)
		}
		values = append(values, v)
	}
}

// matches says whether got is want, where "…" in want stands for any value.
func matches(want, got any) bool {
	switch w := want.(type) {
	case string:
		if w == "…" {
			return true
		}
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok || !matches(wv, gv) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !matches(w[i], g[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(want, got)
}

var mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// The README stays short, and each of its links leads somewhere: a file of
// the repository and, after a #, one of its headings.
func TestREADMELinks(t *testing.T) {
	t.Parallel()
	text, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(text, []byte("\n")); n > 250 {
		t.Errorf("README.md has %d lines, want at most 250: move details to docs/", n)
	}
	links := 0
	for _, m := range mdLink.FindAllStringSubmatch(string(text), -1) {
		target := m[1]
		if strings.Contains(target, "://") {
			continue
		}
		links++
		path, anchor, _ := strings.Cut(target, "#")
		if path == "" {
			path = "README.md"
		}
		if anchor == "" {
			if _, err := os.Stat(path); err != nil {
				t.Errorf("link %s: %v", target, err)
			}
			continue
		}
		content, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("link %s: %v", target, err)
		} else if !hasHeading(string(content), anchor) {
			t.Errorf("link %s: %s has no heading #%s", target, path, anchor)
		}
	}
	if links < 10 {
		t.Errorf("found %d links to files of the repository, want at least 10", links)
	}
}

// hasHeading says whether a Markdown text has a heading whose GitHub anchor
// is anchor.
func hasHeading(text, anchor string) bool {
	for _, line := range strings.Split(text, "\n") {
		title, ok := strings.CutPrefix(strings.TrimLeft(line, "#"), " ")
		if !strings.HasPrefix(line, "#") || !ok {
			continue
		}
		var slug strings.Builder
		for _, r := range strings.ToLower(title) {
			switch {
			case r == ' ':
				slug.WriteRune('-')
			case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
				slug.WriteRune(r)
			}
		}
		if slug.String() == anchor {
			return true
		}
	}
	return false
}

// configRow is a row of the README's configuration table:
// | `VARIABLE` | `-flag` | `default` or (empty) | meaning |
var configRow = regexp.MustCompile("(?m)^\\| `([A-Z0-9_]+)` \\| `-([a-z0-9-]+)` \\| ([^|]*) \\|")

// The README's configuration table has one row per setting of config.go,
// with its flag and default, and no row for a setting that is gone.
func TestREADMEConfigTable(t *testing.T) {
	t.Parallel()
	text, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string][]string{} // variable → flag, default
	for _, m := range configRow.FindAllStringSubmatch(string(text), -1) {
		rows[m[1]] = []string{m[2], strings.TrimSpace(m[3])}
	}
	settings := (&config{}).settings()
	for _, s := range settings {
		row, ok := rows[s.env]
		if !ok {
			t.Errorf("README.md's configuration table has no row for %s (-%s, default %q)", s.env, s.flag, s.def)
			continue
		}
		delete(rows, s.env)
		def := "(empty)"
		if s.def != "" {
			def = "`" + s.def + "`"
		}
		if row[0] != s.flag || !strings.HasPrefix(row[1], def) {
			t.Errorf("README.md: %s has flag -%s, default %s; config.go says -%s, %s", s.env, row[0], row[1], s.flag, def)
		}
	}
	for env := range rows {
		t.Errorf("README.md's configuration table has %s, which config.go does not have", env)
	}
	if len(settings) < 20 {
		t.Errorf("config.go lists %d settings, want at least 20", len(settings))
	}
}
