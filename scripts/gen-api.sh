#!/usr/bin/env bash
# Generates the Envoy v3 API C# types from the official .proto files.
#
# The protos come from a pinned npm package (@grpc/grpc-js-xds ships a snapshot of
# envoy-api, xds, googleapis and protoc-gen-validate). Nothing fetched or generated here is
# committed: it all lives under the cache folder given as $2 and is reused by later builds.
#
# usage: gen-api.sh <protoc> <cache-dir> <protobuf-include-dir>
set -euo pipefail

PKG_NAME="@grpc/grpc-js-xds"
PKG_VERSION="1.14.1"
PKG_INTEGRITY="sha512-F2mVXwEeMWw1znPUrp+8ykjsIOVnf7Rv+EyIvXOfz73w5tNolCnzokpLkE/d2Ehx30PJmZXqCQdMpx8DcBJohA=="

protoc="$1"
cache="$2"
wkt_include="$3"
stamp="$cache/generated.stamp"
# The key names the package, the protoc and the patches below: bump the trailing "patches-N"
# whenever a patch changes, so a cache generated before the change is regenerated instead of
# silently keeping the old types (the stamp would otherwise still match).
# patches-2: tcp_proxy's upstream_connect_mode / max_early_data_bytes.
key="$PKG_NAME@$PKG_VERSION $(basename "$(dirname "$(dirname "$(dirname "$protoc")")")") v3 patches-2"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ]; then
  exit 0
fi

rm -rf "$cache/pkg" "$cache/cs"
mkdir -p "$cache/pkg" "$cache/cs"

tgz="$cache/grpc-js-xds-$PKG_VERSION.tgz"
if [ ! -f "$tgz" ]; then
  command -v npm >/dev/null || { echo "gen-api: npm is needed to fetch $PKG_NAME@$PKG_VERSION" >&2; exit 1; }
  (cd "$cache" && npm pack --silent "$PKG_NAME@$PKG_VERSION" >/dev/null 2>&1) || { echo "gen-api: npm pack $PKG_NAME@$PKG_VERSION failed" >&2; exit 1; }
  mv "$cache/grpc-grpc-js-xds-$PKG_VERSION.tgz" "$tgz"
fi

actual="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
if [ "$actual" != "$PKG_INTEGRITY" ]; then
  rm -f "$tgz"
  echo "gen-api: integrity mismatch for $PKG_NAME@$PKG_VERSION: got $actual" >&2
  exit 1
fi

tar xzf "$tgz" -C "$cache/pkg"
deps="$cache/pkg/package/deps"

# The package's validate.proto predates the `ignore_empty` rule fields the Envoy protos use.
# Add them with their upstream field numbers so the annotations parse.
python3 - "$deps/protoc-gen-validate/validate/validate.proto" <<'PY'
import re, sys
path = sys.argv[1]
src = open(path).read()
numbers = {"FloatRules": 8, "DoubleRules": 8, "Int32Rules": 8, "Int64Rules": 8, "UInt32Rules": 8,
           "UInt64Rules": 8, "SInt32Rules": 8, "SInt64Rules": 8, "Fixed32Rules": 8, "Fixed64Rules": 8,
           "SFixed32Rules": 8, "SFixed64Rules": 8, "StringRules": 26, "BytesRules": 14,
           "RepeatedRules": 5, "MapRules": 6}
out, i = [], 0
for m in re.finditer(r"message (\w+) \{", src):
    name = m.group(1)
    if name not in numbers or "ignore_empty" in src[m.end():src.find("\n}", m.end())]:
        continue
    end = src.find("\n}", m.end())
    out.append(src[i:end])
    out.append("\n    optional bool ignore_empty = %d;" % numbers[name])
    i = end
out.append(src[i:])
open(path, "w").write("".join(out))
PY

# The package's tcp_proxy.proto predates the delayed upstream connect fields:
# add the file-level UpstreamConnectMode enum and TcpProxy's upstream_connect_mode (21) and
# max_early_data_bytes (22, at most 1 MiB as upstream's rule says) with their upstream numbers,
# so YAML/JSON and binary xDS from a real control plane agree. Skipped when the snapshot already
# has the fields (a newer package), and idempotent.
python3 - "$deps/envoy-api/envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto" <<'PY3'
import sys
path = sys.argv[1]
src = open(path).read()
if "upstream_connect_mode" not in src:
    start = src.index("\nmessage TcpProxy {")
    end = src.index("\n}", start)
    fields = ("\n\n  // When the upstream connection is opened (patched in by Legate's gen-api.sh).\n"
              "  UpstreamConnectMode upstream_connect_mode = 21;\n\n"
              "  // Downstream bytes read and held before the upstream is connected (patched in).\n"
              "  google.protobuf.UInt32Value max_early_data_bytes = 22\n"
              "      [(validate.rules).uint32 = {lte: 1048576}];")
    enum = ("\n// When tcp_proxy opens the upstream connection (patched in by Legate's gen-api.sh).\n"
            "enum UpstreamConnectMode {\n"
            "  IMMEDIATE = 0;\n"
            "  ON_DOWNSTREAM_DATA = 1;\n"
            "  ON_DOWNSTREAM_TLS_HANDSHAKE = 2;\n"
            "}\n")
    src = src[:start] + enum + src[start:end] + fields + src[end:]
    open(path, "w").write(src)
PY3

# Files whose generated members clash with each other (protoc's C# naming) are left out.
excluded='envoy/extensions/rate_limit_descriptors/expr/v3/expr.proto|envoy/service/ext_proc/v3/external_processor.proto'

list="$cache/protos.txt"
# Every proto of the snapshot whose imports all resolve (the package leaves out envoy/api/v2,
# contrib, OpenCensus and OpenTelemetry protos, so files importing them are skipped).
python3 - "$deps" "$wkt_include" "$excluded" > "$list" <<'PY2'
import os, re, sys
deps, wkt, excluded = sys.argv[1], sys.argv[2], set(sys.argv[3].split("|"))
roots = {"envoy-api": ["envoy"], "xds": ["xds", "udpa"], "googleapis": ["google/api", "google/rpc"],
         "protoc-gen-validate": ["validate"]}
where = {}
for root, subs in roots.items():
    for sub in subs:
        for d, _, files in os.walk(os.path.join(deps, root, sub)):
            for f in files:
                if f.endswith(".proto"):
                    full = os.path.join(d, f)
                    where[os.path.relpath(full, os.path.join(deps, root))] = full
imports = {rel: re.findall(r'^import\s+(?:public\s+)?"([^"]+)";', open(full).read(), re.M)
           for rel, full in where.items()}
ok = {}
def usable(rel, seen=()):
    if rel in ok:
        return ok[rel]
    if rel.startswith("google/protobuf/"):
        return os.path.exists(os.path.join(wkt, rel))
    if rel not in where or rel in excluded or rel in seen:
        return rel in seen
    ok[rel] = all(usable(i, seen + (rel,)) for i in imports[rel])
    return ok[rel]
for rel in sorted(where):
    if usable(rel):
        print(rel)
PY2

# protoc wants paths relative to an include root.
mapfile -t rel < "$list"

"$protoc" \
  -I"$deps/envoy-api" -I"$deps/xds" -I"$deps/googleapis" -I"$deps/protoc-gen-validate" -I"$wkt_include" \
  --csharp_out="$cache/cs" --csharp_opt=base_namespace=,file_extension=.g.cs \
  "${rel[@]}" 2> >(grep -v ": warning: Import .* is unused." >&2)

echo "$key" > "$stamp"
echo "gen-api: generated $(find "$cache/cs" -name '*.cs' | wc -l) C# files from ${#rel[@]} protos"
