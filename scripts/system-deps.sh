#!/usr/bin/env bash
# Install the Debian packages some tests need, when they are missing:
#   chromium    - the report is opened in a real headless browser (tests/test_browser.py)
#   postgresql  - SQL sources are ingested from a real PostgreSQL server
#   openjdk-17-jre-headless - PySpark 4 (the personas[spark] extra) needs Java 17 or newer
# Runs apt-get as root (or through sudo); otherwise prints what to install and the tests that
# need it skip locally (under CI=1 they fail instead, so CI cannot pass by skipping).
set -euo pipefail
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
java_major() { java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1; }
if ! command -v java >/dev/null 2>&1 || [ "$(java_major)" -lt 17 ] 2>/dev/null; then
  need+=(openjdk-17-jre-headless)
fi
[ ${#need[@]} -eq 0 ] && exit 0
echo "installing Debian packages: ${need[*]}"
if [ "$(id -u)" -eq 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo apt-get update -qq
  sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
  echo "warning: cannot install ${need[*]} (not root, no sudo); the tests that need them will be skipped" >&2
fi
