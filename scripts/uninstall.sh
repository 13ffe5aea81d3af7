#!/usr/bin/env bash
# Removes what scripts/install.sh installed, as root:
#
#   scripts/uninstall.sh [--root DIR] [--prefix PATH] [--purge]
#   scripts/uninstall.sh --witness [--root DIR] [--purge]
#
# Stops and disables the service when systemd runs here (its ExecStopPost removes the VIP
# from this host), then removes the unit, the launcher /usr/local/bin/redis-ha, the
# program's prefix (read from the launcher; default /opt/redis-ha), /etc/logrotate.d/redis-ha
# and /etc/sysctl.d/60-redis-ha.conf. Keeps the configuration and key (/etc/redis-ha), the
# state (/var/lib/redis-ha), the audit log (/var/log/redis-ha) and the redis-ha account,
# unless --purge, which removes those too (and the unit's drop-ins). The Debian packages
# (iproute2, ...) are left alone: other software uses them. Idempotent.
#
# --witness removes the etcd witness instead (what install.sh --witness installed): stops
# and disables redis-ha-witness.service, removes it and /usr/local/sbin/redis-ha-witness-auth,
# and keeps the member's data (/var/lib/redis-ha-witness) and its passwords and
# certificates (/etc/redis-ha-witness) unless --purge. Debian's etcd-server, its etcd
# user and its etcd.service (disabled by the install) are left as they are.
set -euo pipefail

ROOT=""
PREFIX=""
PURGE=0
WITNESS=0
PREFIX_GIVEN=0
SERVICE_USER=redis-ha
UNIT=redis-ha.service

say() { printf 'redis-ha uninstall: %s\n' "$*"; }
die() { printf 'redis-ha uninstall: error: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'
  cat <<'EOF'
  --root DIR      uninstall from the root file system at DIR (default: this machine)
  --prefix PATH   where the program is (default: as the launcher says, else /opt/redis-ha)
  --purge         also remove /etc/redis-ha, /var/lib/redis-ha, /var/log/redis-ha and the
                  redis-ha user and group (with --witness: /etc/redis-ha-witness and
                  /var/lib/redis-ha-witness, the witness's secrets and data)
  --witness       remove the etcd witness (install.sh --witness) instead of the daemon
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --root) [ $# -ge 2 ] || die "--root needs a directory"; ROOT="$2"; shift 2 ;;
    --root=*) ROOT="${1#*=}"; shift ;;
    --prefix) [ $# -ge 2 ] || die "--prefix needs a path"; PREFIX="$2"; PREFIX_GIVEN=1; shift 2 ;;
    --prefix=*) PREFIX="${1#*=}"; PREFIX_GIVEN=1; shift ;;
    --purge) PURGE=1; shift ;;
    --witness) WITNESS=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

[ "$(id -u)" -eq 0 ] || die "run as root"
if [ -n "$ROOT" ]; then
  [ -d "$ROOT" ] || die "--root $ROOT is not a directory"
  ROOT="$(cd "$ROOT" && pwd)"
  [ "$ROOT" != / ] || ROOT=""
fi
ROOT_OPT=()
[ -z "$ROOT" ] || ROOT_OPT=(--root "$ROOT")

systemd_running() { [ -z "$ROOT" ] && [ -d /run/systemd/system ] && [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]; }

removed() { say "removed $*"; }
remove_file() {
  if [ -e "$1" ] || [ -L "$1" ]; then rm -f "$1"; removed "$1"; fi
}
remove_tree() {
  if [ -e "$1" ] || [ -L "$1" ]; then rm -rf "$1"; removed "$1"; fi
}

# --- the witness (--witness) ----------------------------------------------------------------
if [ "$WITNESS" -eq 1 ]; then
  [ "$PREFIX_GIVEN" -eq 0 ] || die "--prefix is for the daemon; the witness has no program of ours"
  WITNESS_UNIT=redis-ha-witness.service
  if systemd_running; then
    if systemctl is-active --quiet "$WITNESS_UNIT"; then
      say "stopping $WITNESS_UNIT (the pairs using it lose their quorum: their masters serve on in failsafe, no failover until a witness is back)"
      systemctl stop "$WITNESS_UNIT" || say "warning: systemctl stop $WITNESS_UNIT failed; going on"
    fi
    systemctl disable --quiet "$WITNESS_UNIT" 2>/dev/null || true
    systemctl reset-failed "$WITNESS_UNIT" 2>/dev/null || true
  fi
  for link in "$ROOT"/etc/systemd/system/*.wants/"$WITNESS_UNIT"; do
    remove_file "$link"
  done
  remove_file "$ROOT/usr/lib/systemd/system/$WITNESS_UNIT"
  remove_file "$ROOT/usr/local/sbin/redis-ha-witness-auth"
  if [ "$PURGE" -eq 1 ]; then
    remove_tree "$ROOT/etc/systemd/system/$WITNESS_UNIT.d"
    remove_tree "$ROOT/etc/redis-ha-witness"
    remove_tree "$ROOT/var/lib/redis-ha-witness"
  else
    say "kept /etc/redis-ha-witness (passwords, CA and certificates) and /var/lib/redis-ha-witness (etcd's data: users, leader keys); --purge removes them"
  fi
  say "left Debian's etcd-server, its etcd user and its etcd.service (disabled) as they are"
  if systemd_running; then
    systemctl daemon-reload
  fi
  say "done"
  exit 0
fi

launcher="$ROOT/usr/local/bin/redis-ha"
if [ -z "$PREFIX" ] && [ -f "$launcher" ]; then
  PREFIX="$(sed -n "s/^prefix='\(.*\)'$/\1/p" "$launcher" | head -n 1)"
fi
PREFIX="${PREFIX:-/opt/redis-ha}"
case "$PREFIX" in /?*) PREFIX="${PREFIX%/}" ;; *) die "--prefix must be an absolute path other than /, got '$PREFIX'" ;; esac
T="$ROOT$PREFIX"

# --- 1. the service -------------------------------------------------------------------
if systemd_running; then
  if systemctl is-active --quiet "$UNIT"; then
    say "stopping $UNIT (hands the master role over and releases the VIP)"
    systemctl stop "$UNIT" || say "warning: systemctl stop $UNIT failed; going on"
  fi
  systemctl disable --quiet "$UNIT" 2>/dev/null || true
  systemctl reset-failed "$UNIT" 2>/dev/null || true
fi
# What `systemctl enable` made, also in a root file system that systemd does not run.
for link in "$ROOT"/etc/systemd/system/*.wants/"$UNIT"; do
  remove_file "$link"
done

# --- 2. the program ---------------------------------------------------------------------
remove_file "$ROOT/usr/lib/systemd/system/$UNIT"
remove_file "$launcher"
if [ -e "$T" ]; then
  # Only a directory that is recognisably ours is removed recursively.
  if [ -f "$T/dist/cli/main.js" ] && grep -q '"name": "redis-ha"' "$T/package.json" 2>/dev/null; then
    remove_tree "$T"
  else
    say "warning: $T does not look like a redis-ha install (no dist/cli/main.js, package.json); left alone"
  fi
fi
remove_file "$ROOT/etc/logrotate.d/redis-ha"
remove_file "$ROOT/etc/sysctl.d/60-redis-ha.conf"

# --- 3. data, configuration, account (--purge) ---------------------------------------------
if [ "$PURGE" -eq 1 ]; then
  remove_tree "$ROOT/etc/systemd/system/$UNIT.d"
  remove_tree "$ROOT/etc/redis-ha"
  remove_tree "$ROOT/var/lib/redis-ha"
  remove_tree "$ROOT/var/log/redis-ha"
  remove_tree "$ROOT/run/redis-ha"
  if awk -F: -v n="$SERVICE_USER" '$1 == n { found = 1 } END { exit !found }' "$ROOT/etc/passwd"; then
    userdel "${ROOT_OPT[@]}" "$SERVICE_USER"
    removed "user $SERVICE_USER"
  fi
  # userdel removes a group of the same name only when USERGROUPS_ENAB is on.
  if awk -F: -v n="$SERVICE_USER" '$1 == n { found = 1 } END { exit !found }' "$ROOT/etc/group"; then
    groupdel "${ROOT_OPT[@]}" "$SERVICE_USER"
    removed "group $SERVICE_USER"
  fi
else
  say "kept /etc/redis-ha (configuration, advert key), /var/lib/redis-ha (state), /var/log/redis-ha (audit log) and the user $SERVICE_USER; --purge removes them"
fi

if systemd_running; then
  systemctl daemon-reload
fi
say "done"
