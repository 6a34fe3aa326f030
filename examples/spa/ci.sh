#!/usr/bin/env bash
# CI for examples/spa: installs what the browser tests need, then checks the
# generated types against the live schema, builds the app and runs the
# end-to-end, two-factor, passkey, live session, runtime config, playground
# and schema tests in headless Chromium.
# Never skips: without Chromium (after trying to install it) it fails.
set -euo pipefail
cd "$(dirname "$0")"
start=$SECONDS
step() { echo "== [spa $((SECONDS - start))s] $*"; }

chromium=${CHROMIUM_PATH:-/usr/bin/chromium}
step "chromium"
if [ ! -x "$chromium" ]; then
  echo "$chromium is missing: installing Debian's chromium package"
  sudo=; [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && sudo=sudo
  { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null; } ||
    echo "installing chromium failed"
fi
if [ ! -x "$chromium" ]; then
  echo "FAIL: no Chromium at $chromium, and 'apt-get install chromium' did not provide one." >&2
  echo "The browser tests (examples/spa) need it: install Debian's chromium package, or set CHROMIUM_PATH." >&2
  exit 1
fi
"$chromium" --version 2>/dev/null | grep -v '^$' || true

step "node $(node --version), npm $(npm --version): npm ci"
npm ci --no-audit --no-fund --loglevel=error

# -race by default: the tests then also catch data races in the server, and
# the build reuses what .ci/run's 'go test -race ./...' compiled (seconds,
# where a plain cold build takes about 6 minutes on 2 cores).
# GATEHOUSE_BUILD_FLAGS= gives a plain build.
build_flags=${GATEHOUSE_BUILD_FLAGS--race}
step "go build $build_flags (the gatehouse binary every test starts)"
bin_dir=$(mktemp -d)
trap 'rm -rf "$bin_dir"' EXIT
(cd ../.. && go build $build_flags -o "$bin_dir/gatehouse" .)
export GATEHOUSE_BIN=$bin_dir/gatehouse

step "generated types match the live schema (npm run codegen:check)"
npm run --silent codegen:check

step "build (tsc + vite)"
npm run --silent build

step "tests: end to end, two-factor, passkeys, live sessions, runtime config, playground, schema (node --test)"
node --test --test-concurrency=1 --test-timeout=180000 test/*.test.mjs

step "done"
