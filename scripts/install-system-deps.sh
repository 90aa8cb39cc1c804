#!/usr/bin/env bash
# Installs the Debian packages the test suite drives for real: PostgreSQL (a throwaway cluster per test
# session, started by tests/conftest.py), Chromium (driven by Playwright), nginx (the X-Accel front, started
# per test by tests/fixtures/nginx.py) and SoftHSM2 (a PKCS#11 token). Idempotent; needs root.
set -euo pipefail
need=()
[ -x /usr/lib/postgresql/*/bin/initdb ] 2>/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v softhsm2-util >/dev/null 2>&1 || need+=(softhsm2)  # the PKCS#11 token the HSM tests sign with
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-system-deps: need root to apt-get install ${need[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # Debian starts the packaged nginx service on port 80; the suite runs its own instances instead.
  if [[ " ${need[*]} " == *" nginx-light "* ]]; then nginx -s quit 2>/dev/null || true; fi
fi
echo "system deps ok: $(ls -d /usr/lib/postgresql/*/bin | head -1), $(command -v chromium)"
