#!/bin/sh
# A fake "npm install" for the tests: usage install.sh LOG HOLD. It logs the
# lockfile it installs, waits while the file HOLD exists (a gate the test
# opens), and makes node_modules.
# A third argument (--legacy-peer-deps) is logged.
log="$1"; hold="$2"
echo "install $(cksum < package-lock.json | cut -d' ' -f1) $(grep -o '"node_modules/[^"]*"' package-lock.json | tr -d '\n') $3" >> "$log"
while [ -e "$hold" ]; do sleep 0.02; done
mkdir -p node_modules/vite
