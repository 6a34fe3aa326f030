// Command composecheck validates deploy/compose.yaml without a Docker
// engine: it loads the file with compose-go, the loader of `docker compose`
// itself (schema, interpolation, references between services, networks and
// volumes), and then checks what the kit promises of it. deploy/ci.sh runs
// it; it is a module of its own, so gatehouse's dependencies stay as they
// are.
//
//	go run . ../compose.yaml
package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: composecheck compose.yaml")
		os.Exit(2)
	}
	opts, err := cli.NewProjectOptions([]string{os.Args[1]}, cli.WithOsEnv, cli.WithInterpolation(true))
	if err == nil {
		var p *types.Project
		if p, err = opts.LoadProject(context.Background()); err == nil {
			err = check(p)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "composecheck:", err)
		os.Exit(1)
	}
	fmt.Println("composecheck: ok:", os.Args[1])
}

// check returns the first way p falls short of the kit's promises.
func check(p *types.Project) error {
	g, err := p.GetService("gatehouse")
	if err != nil {
		return err
	}
	if g.Build == nil {
		return fmt.Errorf("gatehouse: no build")
	}
	if _, err := os.Stat(filepath.Join(g.Build.Context, g.Build.Dockerfile)); err != nil {
		return fmt.Errorf("gatehouse: build: %w", err)
	}
	if len(g.Ports) != 0 {
		return fmt.Errorf("gatehouse publishes ports: only the proxy should")
	}
	env := func(k string) string {
		if v := g.Environment[k]; v != nil {
			return *v
		}
		return ""
	}

	// MONGODB_URI names the mongo service, which gatehouse waits for.
	u, err := url.Parse(env("MONGODB_URI"))
	if err != nil || u.Scheme != "mongodb" {
		return fmt.Errorf("gatehouse: MONGODB_URI=%q is not a mongodb:// URI", env("MONGODB_URI"))
	}
	m, err := p.GetService(u.Hostname())
	if err != nil {
		return fmt.Errorf("gatehouse: MONGODB_URI names no service: %w", err)
	}
	if !strings.HasPrefix(m.Image, "mongo:") {
		return fmt.Errorf("%s: image %q is not the official mongo image", m.Name, m.Image)
	}
	if m.HealthCheck == nil || len(m.HealthCheck.Test) == 0 {
		return fmt.Errorf("%s: no healthcheck", m.Name)
	}
	if d, ok := g.DependsOn[m.Name]; !ok || d.Condition != types.ServiceConditionHealthy {
		return fmt.Errorf("gatehouse does not wait for %s to be healthy", m.Name)
	}
	named := false
	for _, v := range m.Volumes {
		named = named || v.Type == types.VolumeTypeVolume && v.Target == "/data/db" && p.Volumes[v.Source].Name != ""
	}
	if !named {
		return fmt.Errorf("%s: /data/db is not on a named volume", m.Name)
	}

	// TRUSTED_PROXIES is the proxy's fixed address, on a network both join.
	c, err := p.GetService("caddy")
	if err != nil {
		return err
	}
	trusted := false
	for name, n := range c.Networks {
		if _, both := g.Networks[name]; both && n != nil && n.Ipv4Address != "" {
			trusted = trusted || env("TRUSTED_PROXIES") == n.Ipv4Address
		}
	}
	if !trusted {
		return fmt.Errorf("gatehouse: TRUSTED_PROXIES=%q is not caddy's fixed address on a network they share", env("TRUSTED_PROXIES"))
	}
	if env("COOKIE_SECURE") != "true" {
		return fmt.Errorf("gatehouse: COOKIE_SECURE is not true behind a TLS proxy")
	}
	if !strings.HasPrefix(env("CORS_ORIGINS"), "https://") {
		return fmt.Errorf("gatehouse: CORS_ORIGINS=%q: want the app's https origin", env("CORS_ORIGINS"))
	}
	if up := c.Environment["GATEHOUSE_UPSTREAM"]; up == nil || *up != "gatehouse:8080" {
		return fmt.Errorf("caddy: GATEHOUSE_UPSTREAM is not gatehouse:8080")
	}
	return nil
}
