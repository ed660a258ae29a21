#!/bin/sh
# A fake "npm install --package-lock-only" for the tests: usage resolve.sh LOG.
# Its lockfile pins each declared package at 1.0.0 and vite at the exact
# version its spec names (8.4.0 for a range), so that sets that differ only
# in vite's range resolve alike, as npm resolves "^8.0.0" and "8.x". A set
# that names fail-me fails as npm fails on a version that does not exist,
# one that names offline-me as npm fails without a network, and one that
# names nospace-me as npm fails on a full disk, naming its directory. One
# that names peer-conflict-me fails as npm fails on a peer conflict, unless
# --legacy-peer-deps follows LOG.
log="$1"
legacy="$2"
echo "resolve $(cksum < package.json | cut -d' ' -f1) $legacy" >> "$log"
if grep -q peer-conflict-me package.json && [ "$legacy" != "--legacy-peer-deps" ]; then
  echo "npm error code ERESOLVE" >&2
  echo "npm error ERESOLVE unable to resolve dependency tree" >&2
  echo "npm error Could not resolve dependency:" >&2
  echo "npm error peer react@\"^17.0.0\" from peer-conflict-me@1.0.0" >&2
  exit 1
fi
if grep -q fail-me package.json; then
  echo "npm error code ETARGET" >&2
  echo "npm error notarget No matching version found for fail-me@1.0.0." >&2
  echo "npm error notarget In most cases you or one of your dependencies are requesting" >&2
  echo "npm error A complete log of this run can be found in: /root/.npm/_logs/x-debug-0.log" >&2
  exit 1
fi
if grep -q offline-me package.json; then
  echo "npm error code ECONNREFUSED" >&2
  echo "npm error FetchError: request to https://registry.example/offline-me failed, reason: connect ECONNREFUSED 10.0.0.1:443" >&2
  echo "npm error A complete log of this run can be found in: /root/.npm/_logs/y-debug-0.log" >&2
  exit 1
fi
if grep -q nospace-me package.json; then
  echo "npm error code ENOSPC" >&2
  echo "npm error nospc ENOSPC: no space left on device, mkdir '$(pwd)/node_modules'" >&2
  exit 1
fi
vite=$(sed -n 's/^    "vite": "\([0-9][0-9.]*\)",\{0,1\}$/\1/p' package.json)
[ -n "$vite" ] || vite=8.4.0
{
  printf '{"lockfileVersion":3,"packages":{"":{"name":"x"}'
  sed -n 's/^    "\([^"]*\)": "[^"]*",\{0,1\}$/\1/p' package.json | grep -vx vite | while read -r n; do
    printf ',"node_modules/%s":{"version":"1.0.0"}' "$n"
  done
  printf ',"node_modules/vite":{"version":"%s"}}}\n' "$vite"
} > package-lock.json
