#!/usr/bin/env bash
# Refreshes the playground's third-party files from npm: installs the pinned
# packages below into a temporary directory, copies the files the page loads
# and each package's LICENSE here, and writes VERSIONS.json (each package's
# version, each file's source and sha384 integrity). Run by hand after
# changing a version, then `go test ./graph/` (TestPlaygroundAssets checks
# every embedded file against VERSIONS.json) and the browser test
# (bash examples/spa/ci.sh). Needs node and npm; CI does not run it.
#
# graphiql 4 is the last GraphiQL with a UMD build that runs without a
# bundler (5 is ES modules and Monaco); React 18 is the last React with UMD
# builds. These are the versions gqlgen's own GraphiQL page loads.
set -euo pipefail
cd "$(dirname "$0")"

packages=(graphiql@4.1.2 react@18.2.0 react-dom@18.2.0)
# served name  <- package/path
files=(
  "graphiql.min.js          graphiql/graphiql.min.js"
  "graphiql.min.css         graphiql/graphiql.min.css"
  "react.production.min.js  react/umd/react.production.min.js"
  "react-dom.production.min.js react-dom/umd/react-dom.production.min.js"
)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm init -y >/dev/null &&
  npm install --no-audit --no-fund --ignore-scripts --loglevel=error --save-exact "${packages[@]}")

mkdir -p licenses
for p in "${packages[@]}"; do
  name=${p%@*}
  cp "$tmp/node_modules/$name/LICENSE" "licenses/$name.LICENSE"
done
for f in "${files[@]}"; do
  read -r name from <<<"$f"
  cp "$tmp/node_modules/$from" "$name"
done

# VERSIONS.json: written by node, which npm brought anyway.
node - "$tmp" "${files[@]}" >VERSIONS.json <<'JS'
const { createHash } = require('node:crypto');
const { readFileSync } = require('node:fs');
const [tmp, ...files] = process.argv.slice(2);
const pkg = (name) => JSON.parse(readFileSync(`${tmp}/node_modules/${name}/package.json`, 'utf8'));
const out = { comment: 'Written by refresh.sh: do not edit by hand.', packages: {}, files: {} };
for (const f of files) {
  const [name, from] = f.trim().split(/\s+/);
  const pkgName = from.split('/')[0];
  const { version, license } = pkg(pkgName);
  out.packages[pkgName] = { version, license, licenseFile: `licenses/${pkgName}.LICENSE` };
  const sum = createHash('sha384').update(readFileSync(name)).digest('base64');
  out.files[name] = { from: `${pkgName}@${version}/${from.slice(pkgName.length + 1)}`, integrity: `sha384-${sum}` };
}
process.stdout.write(JSON.stringify(out, null, 2) + '\n');
JS
echo "refreshed: ${packages[*]}"
