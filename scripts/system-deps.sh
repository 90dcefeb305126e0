#!/usr/bin/env bash
# Installs what the test suite needs beyond Python when it is missing: PostgreSQL server binaries
# (the tests start a private cluster), a Java runtime (for Spark) and Chromium (the console's browser
# tests drive /usr/bin/chromium). Does nothing when present.
set -euo pipefail
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || need+=(postgresql)
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "missing: ${need[*]}; install them (apt-get install ${need[*]})" >&2
  exit 1
fi
echo "installing ${need[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
