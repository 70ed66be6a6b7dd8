#!/usr/bin/env bash
# Runs every test. Installs what the tests need first (the .NET SDK must already be there).
# usage: scripts/test.sh [extra dotnet test args]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

# Tools the build and the tests call: npm fetches the pinned Envoy API protos at first build,
# python3 and openssl prepare them, curl is a real client in end-to-end tests, promtool (Debian's
# prometheus package) checks the /stats/prometheus output, h2load (nghttp2-client) drives HTTP/2 load,
# headless Chromium loads the admin dashboard.
# haproxy sends the PROXY protocol to Legate's proxy_protocol listener filter.
need=()
command -v npm >/dev/null || need+=(npm)
command -v python3 >/dev/null || need+=(python3)
command -v openssl >/dev/null || need+=(openssl)
command -v curl >/dev/null || need+=(curl)
command -v ss >/dev/null || need+=(iproute2)
command -v promtool >/dev/null || need+=(prometheus)
command -v h2load >/dev/null || need+=(nghttp2-client)
command -v chromium >/dev/null || need+=(chromium)
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test: installing ${need[*]}"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "test: please install: ${need[*]}" >&2
    exit 1
  fi
fi

rm -rf "$here/TestResults"
dotnet build Legate.slnx -c Release -nologo -v q
dotnet test Legate.slnx -c Release --no-build -nologo \
  --logger "trx" --results-directory "$here/TestResults" "$@"
