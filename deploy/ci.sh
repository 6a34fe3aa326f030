#!/usr/bin/env bash
# Tests the deployment kit (deploy/), as far as a machine without a Docker
# engine allows; .ci/run calls it. Installs Debian's caddy and nginx (and
# curl, openssl, file) when missing, and fails, never skips, if it cannot.
#
#   1. deploy/build.sh (the Dockerfile's build command) makes a static
#      binary (CGO_ENABLED=0, -trimpath, no ELF interpreter) that keeps its
#      build information; it starts with deploy/gatehouse.env and answers
#      GraphQL, and the image's healthcheck tells ready from not.
#   2. Caddy and nginx, with deploy/Caddyfile and deploy/nginx.conf, in
#      front of it over https (a certificate made here): a preflight from
#      the app's origin, sign-up and log-in through the proxy from
#      127.0.0.2 with a forged X-Forwarded-For; the session records
#      127.0.0.2 (TRUSTED_PROXIES), the cookie is __Host- and Secure.
#   3. systemd-analyze verify and security on deploy/gatehouse.service.
#   4. deploy/compose.yaml loads with compose-go (docker compose's loader)
#      and keeps its promises; the image is built only if an engine answers.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
tmp=$(mktemp -d)
pids=()
logs=() # shown when a step fails
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  for f in "${logs[@]}"; do echo "--- $f" >&2; tail -n 40 "$f" >&2 || true; done
  echo "deploy/ci.sh: FAIL: $*" >&2
  exit 1
}

echo "== deploy: tools (Debian packages caddy, nginx-light, curl, openssl, file)"
missing=()
command -v caddy >/dev/null || missing+=(caddy)
command -v nginx >/dev/null || missing+=(nginx-light)
command -v curl >/dev/null || missing+=(curl)
command -v openssl >/dev/null || missing+=(openssl)
command -v file >/dev/null || missing+=(file)
command -v readelf >/dev/null || missing+=(binutils)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -q || fail "apt-get update failed; install ${missing[*]} by hand"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" ||
    fail "apt-get install ${missing[*]} failed"
fi
command -v systemd-analyze >/dev/null || fail "systemd-analyze is missing (Debian package systemd)"

echo "== deploy: Docker"
if docker info >/dev/null 2>&1; then
  docker build -f deploy/Dockerfile -t gatehouse:ci . || fail "docker build"
else
  echo "no Docker engine answers 'docker info': the image is NOT built here;"
  echo "its build command, deploy/build.sh, is built and tested below instead"
fi
grep -q '^RUN .*deploy/build.sh /out$' deploy/Dockerfile ||
  fail "deploy/Dockerfile no longer builds with deploy/build.sh: this test would not test it"

echo "== deploy: static binary (deploy/build.sh)"
deploy/build.sh "$tmp/bin"
bin=$tmp/bin/gatehouse
file "$bin" "$tmp/bin/healthcheck"
for b in "$bin" "$tmp/bin/healthcheck"; do
  out=$(file "$b") && grep -q 'statically linked' <<<"$out" || fail "$b is not statically linked: $out"
  out=$(readelf -l "$b") || fail "readelf -l $b"
  if grep -q INTERP <<<"$out"; then fail "$b has an ELF interpreter"; fi
done
info=$(go version -m "$bin")
for want in 'build	CGO_ENABLED=0' 'build	-trimpath=true'; do
  grep -qF "$want" <<<"$info" || fail "go version -m $bin lacks '$want'"
done
version=$("$bin" -version)
echo "$version"
if [ -d .git ]; then # a clone (CI's): the commit is recorded
  grep -qF 'build	vcs.revision=' <<<"$info" || fail "go version -m $bin names no commit"
  grep -q ', commit ' <<<"$version" || fail "gatehouse -version names no commit"
else
  echo "not a git clone (.git is no directory): Go records no commit here"
fi

echo "== deploy: the binary starts with deploy/gatehouse.env and answers GraphQL"
# The env file's values as the unit gives them (HOST, TRUSTED_PROXIES,
# COOKIE_SECURE, CORS_ORIGINS), on a free port and a DATA_DIR of the test.
(
  set -a; . deploy/gatehouse.env; set +a
  export PORT=0 DATA_DIR="$tmp/data" BCRYPT_COST=4
  exec "$bin"
) >"$tmp/gatehouse.log" 2>&1 &
pids+=($!)
logs+=("$tmp/gatehouse.log")
addr=
for _ in $(seq 600); do
  addr=$(sed -nE 's/.*msg="gatehouse listening" addr=http:\/\/(\S+).*/\1/p' "$tmp/gatehouse.log")
  [ -n "$addr" ] && break
  kill -0 "${pids[-1]}" 2>/dev/null || break
  sleep 0.1
done
[ -n "$addr" ] || fail "gatehouse did not start"
port=${addr##*:}
[ "${addr%:*}" = 127.0.0.1 ] || fail "gatehouse listens on $addr, not on 127.0.0.1 (HOST of gatehouse.env)"
got=$(curl -sS "http://$addr/query" -H 'Content-Type: application/json' -d '{"query":"{ me { id } }"}')
[ "$got" = '{"data":{"me":null}}' ] || fail "GraphQL answered $got"
PORT=$port "$tmp/bin/healthcheck" || fail "healthcheck: gatehouse is ready, yet it says no"
if "$tmp/bin/healthcheck" "http://$addr/healthz-nothing-here"; then fail "healthcheck: a 404 passed"; fi
if PORT=1 "$tmp/bin/healthcheck"; then fail "healthcheck: nothing listening, yet it passed"; fi

# through PROXY URL CURL_TLS_ARGS...: the browser's flow through a proxy at
# URL (https://auth.example.com:PORT), from 127.0.0.2, as user PROXY.
through() {
  local name=$1 url=$2; shift 2
  local c=(curl -sS --fail-with-body --interface 127.0.0.2 "$@" -H 'Content-Type: application/json')
  local h

  h=$("${c[@]}" -o /dev/null -D - -X OPTIONS "$url/query" -H 'Origin: https://app.example.com' \
    -H 'Access-Control-Request-Method: POST' -H 'Access-Control-Request-Headers: content-type') ||
    fail "$name: the preflight failed"
  grep -qi '^access-control-allow-origin: https://app.example.com' <<<"$h" &&
    grep -qi '^access-control-allow-credentials: true' <<<"$h" ||
    fail "$name: the preflight from https://app.example.com was not allowed with credentials:"$'\n'"$h"
  grep -qi '^strict-transport-security: max-age=' <<<"$h" || fail "$name: no Strict-Transport-Security"

  "${c[@]}" -o /dev/null "$url/query" -d '{"query":"mutation { register(username: \"'"$name"'\", password: \"correct horse battery\") { token } }"}' ||
    fail "$name: register"
  h=$("${c[@]}" -D - -o "$tmp/body" -c "$tmp/jar-$name" "$url/query" -H 'X-Forwarded-For: 203.0.113.7' \
    -d '{"query":"mutation { login(username: \"'"$name"'\", password: \"correct horse battery\") { session { id } } }"}') ||
    fail "$name: login: $(cat "$tmp/body")"
  grep -qiE '^set-cookie: __Host-gatehouse_session=[^;]+;.*; Secure' <<<"$h" ||
    fail "$name: login set no Secure __Host-gatehouse_session cookie:"$'\n'"$h"
  got=$("${c[@]}" -b "$tmp/jar-$name" "$url/query" -H 'X-Forwarded-For: 203.0.113.7' \
    -d '{"query":"{ session { ipAddress } me { username } }"}') || fail "$name: the session query failed: $got"
  [ "$got" = '{"data":{"session":{"ipAddress":"127.0.0.2"},"me":{"username":"'"$name"'"}}}' ] ||
    fail "$name: want the session of $name from 127.0.0.2 (the client, not the proxy nor the forged header), got $got"
  # A subscription's WebSocket upgrade from the app's page passes the
  # proxy: 101 with graphql-transport-ws (curl then waits on the open
  # socket until --max-time).
  h=$(curl -sS --http1.1 --interface 127.0.0.2 "$@" -o /dev/null -D - --max-time 3 -b "$tmp/jar-$name" "$url/query" \
    -H 'Origin: https://app.example.com' -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
    -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' \
    -H 'Sec-WebSocket-Protocol: graphql-transport-ws' 2>/dev/null || true)
  grep -qE '^HTTP/1.1 101' <<<"$h" && grep -qi '^sec-websocket-protocol: graphql-transport-ws' <<<"$h" ||
    fail "$name: the WebSocket upgrade did not pass:"$'\n'"$h"
  echo "$name: preflight, https sign-up and log-in, Secure __Host- cookie, session ipAddress 127.0.0.2, WebSocket upgrade: ok"
}

# Two free-looking ports for a proxy (it binds them itself; a clash fails
# loudly), below the kernel's ephemeral range, where no outgoing connection
# can be holding them (CI once lost port 39356 to one).
ports() {
  local lo _
  read -r lo _ </proc/sys/net/ipv4/ip_local_port_range
  [ "$lo" -gt 22000 ] || lo=32768 # an unusual range: assume the default
  local b=$((20000 + RANDOM % (lo - 20002)))
  echo "$b $((b + 1))"
}

echo "== deploy: Caddy (deploy/Caddyfile)"
caddy validate --config deploy/Caddyfile --adapter caddyfile >"$tmp/caddy-validate.log" 2>&1 ||
  { cat "$tmp/caddy-validate.log"; fail "caddy validate deploy/Caddyfile"; }
# One upstream: an active health check would turn a readiness flap into a
# 503 for the whole site (the Caddyfile says when to add one).
if grep -qE '^[[:space:]]*health_uri' deploy/Caddyfile &&
  ! grep -qE '^[[:space:]]*reverse_proxy[[:space:]]+[^{[:space:]]+[[:space:]]+[^{[:space:]]' deploy/Caddyfile; then
  fail "deploy/Caddyfile: health_uri with a single upstream (a failed /readyz makes the whole site 503)"
fi
read -r http https <<<"$(ports)"
# The Caddyfile as shipped, imported after the test's global options: other
# ports, certificates from Caddy's own CA (no ACME offline), which is never
# installed into the system's trust store, state in $tmp.
cat >"$tmp/Caddyfile" <<EOF
{
	http_port $http
	https_port $https
	admin off
	local_certs
	skip_install_trust
	storage file_system {
		root $tmp/caddy
	}
}
import $repo/deploy/Caddyfile
EOF
GATEHOUSE_UPSTREAM=$addr caddy run --config "$tmp/Caddyfile" --adapter caddyfile >"$tmp/caddy.log" 2>&1 &
pids+=($!)
logs+=("$tmp/caddy.log")
ca=$tmp/caddy/pki/authorities/local/root.crt
tls=(--resolve "auth.example.com:$https:127.0.0.1" --cacert "$ca")
for _ in $(seq 300); do
  [ -f "$ca" ] && curl -s -o /dev/null "${tls[@]}" "https://auth.example.com:$https/healthz" && break
  kill -0 "${pids[-1]}" 2>/dev/null || break
  sleep 0.1
done
through caddy "https://auth.example.com:$https" "${tls[@]}"

echo "== deploy: nginx (deploy/nginx.conf)"
read -r http https <<<"$(ports)"
mkdir -p "$tmp/nginx"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=auth.example.com \
  -addext subjectAltName=DNS:auth.example.com -keyout "$tmp/nginx/key.pem" -out "$tmp/nginx/cert.pem" 2>/dev/null
# deploy/nginx.conf with the test's ports, certificate and gatehouse's port;
# each replacement must match, so that what is tested is the file.
conf=$(cat deploy/nginx.conf)
sub() {
  grep -qF -- "$1" <<<"$conf" || fail "deploy/nginx.conf no longer has '$1'"
  conf=${conf//"$1"/"$2"}
}
sub 'listen 80;' "listen $http;"
sub 'listen [::]:80;' "listen [::]:$http;"
sub 'listen 443 ssl' "listen $https ssl"
sub 'listen [::]:443 ssl' "listen [::]:$https ssl"
sub '/etc/letsencrypt/live/auth.example.com/fullchain.pem' "$tmp/nginx/cert.pem"
sub '/etc/letsencrypt/live/auth.example.com/privkey.pem' "$tmp/nginx/key.pem"
sub 'server 127.0.0.1:8080;' "server $addr;"
printf '%s\n' "$conf" >"$tmp/nginx/gatehouse.conf"
cat >"$tmp/nginx/nginx.conf" <<EOF
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log;
events {}
http {
    access_log off;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    include $tmp/nginx/gatehouse.conf;
}
EOF
logs+=("$tmp/nginx/error.log")
nginx -t -q -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf" || fail "nginx -t"
nginx -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf" -g 'daemon off;' &
pids+=($!)
tls=(--resolve "auth.example.com:$https:127.0.0.1" --cacert "$tmp/nginx/cert.pem")
for _ in $(seq 300); do
  curl -s -o /dev/null "${tls[@]}" "https://auth.example.com:$https/healthz" && break
  kill -0 "${pids[-1]}" 2>/dev/null || break
  sleep 0.1
done
through nginx "https://auth.example.com:$https" "${tls[@]}"
got=$(curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' --resolve "auth.example.com:$http:127.0.0.1" "http://auth.example.com:$http/query")
[ "$got" = "301 https://auth.example.com/query" ] || fail "nginx: plain http answered '$got', not a redirect to https"

echo "== deploy: systemd (deploy/gatehouse.service)"
# verify needs ExecStart's program to exist: an alternate root holds the
# unit as shipped, the static binary at its ExecStart path, and this
# machine's own units (the targets it orders itself after).
root=$tmp/root
mkdir -p "$root/etc/systemd/system" "$root/usr/local/bin" "$root/usr/lib/systemd"
cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
cp "$bin" "$root/usr/local/bin/gatehouse"
verify() { systemd-analyze verify --root="$root" gatehouse.service 2>&1; }
cp deploy/gatehouse.service "$root/etc/systemd/system/"
out=$(verify) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify complains (an unknown key or a bad value):"$'\n'"$out"
# Its exposure score stays low (1.5 when written; 0 is best, 10 worst).
systemd-analyze security --offline=true --root="$root" --threshold=20 gatehouse.service | tail -1 ||
  fail "systemd-analyze security: the sandbox's exposure is over 2.0"
# The check can fail: a misspelt key is reported.
sed 's/^ProtectSystem=/ProtectSytem=/' deploy/gatehouse.service >"$root/etc/systemd/system/gatehouse.service"
grep -q "Unknown key 'ProtectSytem'" <<<"$(verify)" || fail "systemd-analyze verify missed a misspelt key"
echo "systemd-analyze verify: clean; a misspelt key is caught"

echo "== deploy: compose (deploy/compose.yaml)"
(cd deploy/composecheck && go build -o "$tmp/bin/composecheck" .)
# compose.yaml takes TOTP_KEY from the environment, and refuses to load
# without it.
if "$tmp/bin/composecheck" deploy/compose.yaml 2>/dev/null; then fail "compose.yaml loaded without TOTP_KEY"; fi
export TOTP_KEY; TOTP_KEY=$(head -c 32 /dev/urandom | base64)
"$tmp/bin/composecheck" deploy/compose.yaml
# The checks can fail: a copy with another TRUSTED_PROXIES is refused.
mkdir "$tmp/deploy"
ln -s "$repo/deploy/Dockerfile" "$tmp/deploy/Dockerfile"
sed 's/TRUSTED_PROXIES: 172.30.0.2/TRUSTED_PROXIES: 172.30.0.3/' deploy/compose.yaml >"$tmp/deploy/compose.yaml"
if "$tmp/bin/composecheck" "$tmp/deploy/compose.yaml" 2>/dev/null; then fail "composecheck passed a wrong TRUSTED_PROXIES"; fi
if docker compose version >/dev/null 2>&1; then
  docker compose -f deploy/compose.yaml config -q || fail "docker compose config"
else
  echo "no 'docker compose' plugin here: compose.yaml is checked with compose-go only"
fi
echo "== deploy: ok"
