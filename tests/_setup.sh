#!/usr/bin/env bash
# Installs the Debian packages some tests need (PgBouncer, Chromium) when they are missing.
# Idempotent; safe to run on every test run. Needs root (CI and the dev machines run as root).
set -u
need=()
command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || need+=(pgbouncer)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
