#!/usr/bin/env bash
# deps.sh installs what the test suite needs when it is missing: the Debian
# packages (as root, with apt-get), a check that Node is new enough for Vite 8,
# and the npm packages of the test fixtures (into a cache outside the clone,
# keyed by each fixture's lockfile; see internal/testenv).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the end-to-end tests drive: program -> package.
declare -A want=([chromium]=chromium [redis-server]=redis-server [bwrap]=bubblewrap [mkfs.ext4]=e2fsprogs [python3]=python3)
missing=()
for prog in "${!want[@]}"; do
  command -v "$prog" >/dev/null 2>&1 || missing+=("${want[$prog]}")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    log=$(mktemp)
    if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
      cat "$log" >&2
      echo "deps: apt-get could not install ${missing[*]}" >&2
      exit 1
    fi
    rm -f "$log"
  else
    echo "deps: missing ${missing[*]}; install them (Debian: apt-get install ${missing[*]})" >&2
  fi
fi

if ! command -v node >/dev/null 2>&1; then
  echo "deps: node is missing; Vite 8 needs Node >= 20.19 (https://nodejs.org)" >&2
  exit 1
fi
node -e '
const [a, b] = process.versions.node.split(".").map(Number);
if (a < 20 || (a === 20 && b < 19)) {
  console.error(`deps: Node ${process.versions.node} is too old; Vite 8 needs >= 20.19`);
  process.exit(1);
}'

go run ./internal/cmd/fixtures
