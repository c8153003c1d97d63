#!/usr/bin/env bash
# scripts/setup.sh: everything a fresh Debian 12 machine needs to build and
# test shardring. Idempotent; run as root (or with sudo available).
#   1. installs the Debian packages below (apt-get update first);
#   2. builds wolfSSL 5.5.4 from Debian's own source package, with assembly
#      (AES-NI, AVX, SP math in asm), into .cache/wolfssl (ignored by git).
#      Debian's binary wolfSSL has no assembly: ~78 MB/s AES-GCM vs ~1.9 GB/s.
#      When that build fails, the system library is used and CMake says so.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${SHARDRING_CACHE:-$ROOT/.cache}"
WOLFSSL_PREFIX="$CACHE/wolfssl"
WOLFSSL_STAMP="$WOLFSSL_PREFIX/.shardring-stamp"
WOLFSSL_FLAGS=(
  --enable-static --disable-shared --with-pic
  --enable-tls13 --enable-sni --enable-alpn --enable-session-ticket
  --enable-supportedcurves --enable-ecc --enable-curve25519 --enable-aesgcm=small
  --enable-chacha --enable-poly1305 --enable-sha512 --enable-harden
  --enable-intelasm --enable-aesni --enable-sp --enable-sp-asm
  --enable-altcertchains --disable-oldtls
  --disable-examples --disable-crypttests --disable-benchmark
)
# --enable-aesgcm=small: no per-key GHASH table. The default 4-bit table is
# 512 bytes in each of a session's two AES-GCM keys, and the AES-NI/AVX2 code
# never reads it (it derives H from the key schedule); only the C fallback
# on a CPU without AES-NI does, which is then slower.
# No --enable-opensslextra: its OpenSSL compatibility layer doubled the heap
# of an idle client session (8.5 -> 4.5 KiB without it, tls_memory_test: an
# X509 copy of the peer's certificate, a larger WOLFSSL). The few behaviours
# of it that tls/ relies on are asked for by name: the verify callback for
# every certificate of the chain, valid or not; the alert history; resuming
# from a ticket with wolfSSL's own session cache off; copying a session.
WOLFSSL_DEFINES=(
  -DWOLFSSL_NO_SOCK -DWOLFSSL_USER_IO
  -DWOLFSSL_ALWAYS_VERIFY_CB -DWOLFSSL_VERIFY_CB_ALL_CERTS -DWOLFSSL_EXTRA_ALERTS
  -DWOLFSSL_FORCE_CACHE_ON_TICKET -DHAVE_EXT_CACHE
  -DSHARDRING_TRIM_TLSX
)
# Our patches to that source, applied after Debian's (scripts/wolfssl/):
#   trim-tls13-extensions.patch (SHARDRING_TRIM_TLSX): a TLS 1.3 session
#     frees the hello extensions it never reads again once the handshake is
#     over (key shares, the offered PSK and its ticket, groups, versions,
#     signature algorithms): about 0.7 KiB of every idle shard's 3.4 KiB of
#     wolfSSL heap. No configure flag does it: with SNI or ALPN compiled in,
#     wolfSSL keeps the whole list.
WOLFSSL_PATCHES=("$ROOT"/scripts/wolfssl/*.patch)

PACKAGES=(
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
  clang-format clang-tidy
  liburing-dev libwolfssl-dev libsimdjson-dev libabsl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  zlib1g-dev libzstd-dev openssl ca-certificates
  python3 python3-websockets dpkg-dev patch xz-utils autoconf automake libtool
  rapidjson-dev nlohmann-json3-dev
  libboost-dev gnuplot-nox libssl-dev
  prometheus python3-prometheus-client
  redis-server libhiredis-dev python3-redis
)

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}"
fi

# Prints one-line deb-src entries for the Debian entries of the system's apt
# sources: deb822 files (sources.list.d/*.sources, Debian 12's form) and
# one-line files (sources.list, sources.list.d/*.list). Only suites of this
# release's codename are kept (a third-party repository rarely has sources).
derive_deb_src() {
  local codename
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  [[ -n "$codename" ]] || return 1
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f "$f" ]] || continue
    sed -nE 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+)[[:space:]]+([^[:space:]]+)[[:space:]]+(.*)$/deb-src \2 \3 \4/p' "$f" |
      awk -v c="$codename" '$3 ~ "^" c "([-/]|$)"'
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] || continue
    # One stanza per paragraph: Types, URIs, Suites, Components, Enabled.
    awk -v c="$codename" '
      function flush(   i, n, u, su, nu, ns) {
        if (types ~ /(^|[[:space:]])deb([[:space:]]|$)/ && enabled != "no" && uris != "") {
          nu = split(uris, u, /[[:space:]]+/); ns = split(suites, su, /[[:space:]]+/)
          for (i = 1; i <= nu; i++) for (n = 1; n <= ns; n++)
            if (u[i] != "" && su[n] ~ ("^" c "([-/]|$)")) print "deb-src " u[i] " " su[n] " " comps
        }
        types = uris = suites = comps = enabled = ""
      }
      /^[[:space:]]*#/ { next }
      /^[[:space:]]*$/ { flush(); next }
      { key = tolower($1); sub(/^[^:]*:[[:space:]]*/, "") }
      key == "types:" { types = $0 } key == "uris:" { uris = $0 }
      key == "suites:" { suites = $0 } key == "components:" { comps = $0 }
      key == "enabled:" { enabled = tolower($0) }
      END { flush() }' "$f"
  done | sort -u | grep . 
}

build_wolfssl() {
  local want
  want="5.5.4 ${WOLFSSL_FLAGS[*]} ${WOLFSSL_DEFINES[*]} $(cat "${WOLFSSL_PATCHES[@]}" | sha256sum | cut -c1-16)"
  if [[ -f "$WOLFSSL_STAMP" && "$(cat "$WOLFSSL_STAMP")" == "$want" ]]; then
    echo "setup: wolfSSL with assembly already built in $WOLFSSL_PREFIX"
    return 0
  fi
  local work="$CACHE/wolfssl-src"
  rm -rf "$work" "$WOLFSSL_PREFIX"
  mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial"
  # A private sources list with deb-src lines, derived from the machine's own
  # apt sources (the same URIs and suites, type deb-src), so the source comes
  # from whichever mirror this machine uses. The system's apt configuration
  # stays untouched.
  derive_deb_src >"$work/apt/sources.list" || return 1
  local o=(-o "Dir::Etc::SourceList=$work/apt/sources.list"
           -o "Dir::Etc::SourceParts=/dev/null"
           -o "Dir::State::Lists=$work/apt/lists"
           -o "Dir::Cache=$work/apt/cache")
  (cd "$work" &&
    apt-get "${o[@]}" update -qq &&
    apt-get "${o[@]}" source --download-only wolfssl=5.5.4-2+deb12u3 >/dev/null 2>&1 ||
    apt-get "${o[@]}" source --download-only wolfssl >/dev/null 2>&1) || return 1
  local dsc
  dsc=$(ls "$work"/wolfssl_5.5.4*.dsc | head -1) || return 1
  # dpkg-source applies Debian's patches.
  (cd "$work" && dpkg-source -x "$dsc" src >/dev/null) || return 1
  local p
  for p in "${WOLFSSL_PATCHES[@]}"; do
    patch -d "$work/src" -p1 --forward --quiet <"$p" || return 1
  done
  (cd "$work/src" &&
    { [[ -x ./configure ]] || ./autogen.sh >/dev/null; } &&
    CFLAGS="-O2 -g0 ${WOLFSSL_DEFINES[*]}" \
      ./configure --prefix="$WOLFSSL_PREFIX" "${WOLFSSL_FLAGS[@]}" >"$work/configure.log" 2>&1 &&
    make -j"$(nproc)" >"$work/make.log" 2>&1 &&
    make install >"$work/install.log" 2>&1) || return 1
  echo "$want" >"$WOLFSSL_STAMP"
  rm -rf "$work"
}

# Node.js and discord.js's gateway client, for the test that runs a real
# client library against `shardring gateway`. Node from Debian unless the
# machine already has one; the npm package into .cache/npm.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "setup: installing nodejs npm"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm
fi
DISCORDJS_WS_VERSION=1.2.3
if [[ ! -f "$CACHE/npm/node_modules/@discordjs/ws/package.json" ]] ||
   ! grep -q "\"version\": \"$DISCORDJS_WS_VERSION\"" "$CACHE/npm/node_modules/@discordjs/ws/package.json"; then
  mkdir -p "$CACHE/npm"
  if ! npm install --prefix "$CACHE/npm" --no-audit --no-fund --loglevel=error \
      "@discordjs/ws@$DISCORDJS_WS_VERSION" >/dev/null; then
    echo "setup: WARNING: could not install @discordjs/ws; its interoperability test will be skipped" >&2
  fi
fi
# zlib-sync: what @discordjs/ws 1.x inflates zlib-stream with (a native
# module, built here with node-gyp against the installed Node's headers).
ZLIB_SYNC_VERSION=0.1.10
if [[ -d "$CACHE/npm/node_modules/@discordjs/ws" ]] &&
   { [[ ! -f "$CACHE/npm/node_modules/zlib-sync/package.json" ]] ||
     ! grep -q "\"version\": \"$ZLIB_SYNC_VERSION\"" "$CACHE/npm/node_modules/zlib-sync/package.json"; }; then
  nodedir=()
  for d in /usr /usr/local; do
    [[ -f "$d/include/node/node.h" ]] && { nodedir=(--nodedir="$d"); break; }
  done
  if ! npm install --prefix "$CACHE/npm" --no-audit --no-fund --loglevel=error "${nodedir[@]}" \
      "zlib-sync@$ZLIB_SYNC_VERSION" >/dev/null 2>&1; then
    echo "setup: WARNING: could not build zlib-sync; discord.js's zlib-stream test will be skipped" >&2
  fi
fi

if [[ "${SHARDRING_SYSTEM_WOLFSSL:-0}" != 1 ]]; then
  if build_wolfssl; then
    echo "setup: wolfSSL with assembly: $WOLFSSL_PREFIX"
  else
    echo "setup: WARNING: could not build wolfSSL with assembly (logs in $CACHE/wolfssl-src);" >&2
    echo "setup: WARNING: falling back to Debian's libwolfssl (no assembly, ~25x slower AES-GCM)" >&2
    rm -rf "$WOLFSSL_PREFIX"
  fi
fi
