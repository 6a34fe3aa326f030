#!/bin/sh
# Builds the static gatehouse binary and the container's healthcheck into
# OUTDIR. It is the one build command of the kit: deploy/Dockerfile runs it,
# and deploy/ci.sh runs it and tests what it made.
#
# CGO_ENABLED=0: a static binary, with no libc to match at run time (the
# embedded SQLite is modernc.org/sqlite, pure Go). -trimpath: no paths of
# the build machine in the binary. The build information stays (no
# -buildvcs=false): `gatehouse -version` and `go version -m` read it, and
# they name the commit when the source is a git checkout.
set -eu
out=${1:?usage: deploy/build.sh OUTDIR}
mkdir -p "$out" && out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.."
export CGO_ENABLED=0
go build -trimpath -buildvcs=auto -o "$out/gatehouse" .
go build -trimpath -buildvcs=auto -o "$out/healthcheck" ./deploy/healthcheck
