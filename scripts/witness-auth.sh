#!/usr/bin/env bash
# Sets up etcd's own authentication on the redis-ha witness, as root, once etcd runs:
#
#   redis-ha-witness-auth [--dir /etc/redis-ha-witness] [--wait SECONDS] ENDPOINT
#
# ENDPOINT is the witness's client URL (http://192.0.2.20:2379, https:// with --tls).
# Installed by scripts/install.sh --witness as /usr/local/sbin/redis-ha-witness-auth and
# run by it after starting the unit; run it by hand after a --root or --no-start install.
# With etcdctl (etcd 3.4), it makes:
#
#   user root       role root: etcd's administrator; password in DIR/root.password
#   role redis-ha   read and write on the keys under /redis-ha/ only (the daemons' leader
#                   keys and fences, <quorum.etcd.prefix>/<cluster>/leader[-fence] with
#                   the default prefix /redis-ha)
#   user redis-ha   role redis-ha; password in DIR/client/etcd.password
#
# then `auth enable`: from then on etcd refuses anonymous requests. With an https
# ENDPOINT, etcdctl trusts DIR/ca.pem and shows DIR/client/etcd-client.pem (etcd maps
# its CN, redis-ha, to that user when a request carries no password).
#
# Idempotent, and it never changes a password once authentication is on: a later run
# signs in as root with DIR/root.password, creates only what is missing, and checks that
# redis-ha signs in with its file and cannot read outside its prefix. While
# authentication is still off (a first run, or one cut short before `auth enable`) the
# two users' passwords are set from the files: anyone may do anything then anyway.
# Secrets reach etcdctl through its environment and standard input, never its arguments.
set -euo pipefail
umask 077

DIR=/etc/redis-ha-witness
WAIT_S=30
ENDPOINT=""
KEY_PREFIX=/redis-ha/
ROLE=redis-ha
USER_NAME=redis-ha

say() { printf 'redis-ha-witness-auth: %s\n' "$*"; }
die() { printf 'redis-ha-witness-auth: error: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'
  cat <<'EOF'
  --dir DIR       where root.password, client/etcd.password and, for https, ca.pem and
                  client/etcd-client.{pem,key} are (default /etc/redis-ha-witness)
  --wait SECONDS  how long to wait for etcd to answer (default 30)
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --dir) [ $# -ge 2 ] || die "--dir needs a directory"; DIR="$2"; shift 2 ;;
    --dir=*) DIR="${1#*=}"; shift ;;
    --wait) [ $# -ge 2 ] || die "--wait needs a number of seconds"; WAIT_S="$2"; shift 2 ;;
    --wait=*) WAIT_S="${1#*=}"; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) usage >&2; die "unknown argument: $1" ;;
    *) [ -z "$ENDPOINT" ] || die "one ENDPOINT only, got $ENDPOINT and $1"; ENDPOINT="$1"; shift ;;
  esac
done

[ -n "$ENDPOINT" ] || { usage >&2; die "ENDPOINT missing: the witness's client URL, e.g. http://192.0.2.20:2379"; }
[[ "$ENDPOINT" =~ ^https?://[^[:space:]/]+$ ]] || die "ENDPOINT must be http(s)://host:port, got '$ENDPOINT'"
[[ "$WAIT_S" =~ ^[0-9]{1,4}$ ]] || die "--wait must be a whole number of seconds, got '$WAIT_S'"
command -v etcdctl >/dev/null 2>&1 || die "etcdctl is missing: apt-get install etcd-client"

# read_secret FILE: the one-word secret in FILE (made by install.sh --witness).
read_secret() {
  local value
  [ -f "$1" ] || die "$1 is missing (install.sh --witness makes it)"
  value="$(head -n 1 -- "$1")"
  [[ "$value" =~ ^[^[:space:]]+$ ]] || die "$1 must hold one word on its first line"
  printf '%s' "$value"
}
ROOT_PASSWORD="$(read_secret "$DIR/root.password")"
USER_PASSWORD="$(read_secret "$DIR/client/etcd.password")"

TLS_ARGS=()
if [[ "$ENDPOINT" == https://* ]]; then
  for f in "$DIR/ca.pem" "$DIR/client/etcd-client.pem" "$DIR/client/etcd-client.key"; do
    [ -f "$f" ] || die "$f is missing (install.sh --witness --tls makes it)"
  done
  TLS_ARGS=(--cacert "$DIR/ca.pem" --cert "$DIR/client/etcd-client.pem" --key "$DIR/client/etcd-client.key")
fi

# Only what this script sets reaches etcdctl (an ETCDCTL_ENDPOINTS or ETCDCTL_USER from
# the caller's environment would change whom it talks to, or as whom).
while IFS= read -r name; do unset "$name"; done < <(compgen -e | grep '^ETCDCTL_' || true)
export ETCDCTL_API=3

# call anon|root|user ARGS...: runs etcdctl as nobody (or the TLS certificate's user),
# root or redis-ha; its output is in OUT. A password goes in the environment of the
# etcdctl process only.
OUT=""
call() {
  local who="$1" status=0
  shift
  case "$who" in
    anon) OUT="$(etcdctl --endpoints="$ENDPOINT" --dial-timeout=2s --command-timeout=5s "${TLS_ARGS[@]}" "$@" 2>&1)" || status=$? ;;
    root) OUT="$(ETCDCTL_USER=root ETCDCTL_PASSWORD="$ROOT_PASSWORD" etcdctl --endpoints="$ENDPOINT" --dial-timeout=2s --command-timeout=5s "${TLS_ARGS[@]}" "$@" 2>&1)" || status=$? ;;
    user) OUT="$(ETCDCTL_USER="$USER_NAME" ETCDCTL_PASSWORD="$USER_PASSWORD" etcdctl --endpoints="$ENDPOINT" --dial-timeout=2s --command-timeout=5s "${TLS_ARGS[@]}" "$@" 2>&1)" || status=$? ;;
    *) die "call: who is $who?" ;;
  esac
  return "$status"
}
# What etcdctl said went wrong, in one line.
why() {
  local line
  line="$(printf '%s\n' "$OUT" | sed -n 's/^Error: //p' | tail -n 1)"
  [ -n "$line" ] || line="$(printf '%s\n' "$OUT" | tail -n 1)"
  printf '%s' "$line"
}

# --- 1. etcd answers ---------------------------------------------------------------------
# `endpoint status` needs no user, even with authentication on.
deadline=$((SECONDS + WAIT_S))
until call anon endpoint status; do
  [ "$SECONDS" -lt "$deadline" ] || die "etcd at $ENDPOINT does not answer after ${WAIT_S} s: $(why)"
  sleep 0.5
done

# --- 2. is authentication on? ------------------------------------------------------------
# Listing users works for anyone while it is off, only for root once it is on.
if call anon user list; then
  AS=anon
  say "authentication is off at $ENDPOINT: setting it up"
elif call root user list; then
  AS=root
  say "authentication is on at $ENDPOINT; signed in as root"
else
  case "$(why)" in
    *"authentication failed"*) die "authentication is on at $ENDPOINT and etcd's root user does not take the password in $DIR/root.password" ;;
    *) die "cannot list etcd's users at $ENDPOINT, neither anonymously nor as root: $(why)" ;;
  esac
fi

# roles_of USER: the roles `user get` lists (call's OUT must hold its output).
roles_of() { printf '%s\n' "$OUT" | sed -n 's/^Roles: *//p'; }

# ensure_user NAME PASSWORD FILE
ensure_user() {
  local name="$1" password="$2" file="$3"
  if call "$AS" user get "$name"; then
    if [ "$AS" = anon ]; then
      call anon user passwd "$name" --interactive=false <<< "$password" || die "cannot set the password of etcd user $name: $(why)"
      say "user $name: password set from $file"
    else
      say "user $name: kept"
    fi
  else
    case "$(why)" in *"user name not found"*) ;; *) die "cannot read etcd user $name: $(why)" ;; esac
    call "$AS" user add "$name" --interactive=false <<< "$password" || die "cannot add etcd user $name: $(why)"
    say "user $name: created, password from $file"
  fi
}

# ensure_grant USER ROLE
ensure_grant() {
  call "$AS" user get "$1" || die "cannot read etcd user $1: $(why)"
  if [[ " $(roles_of) " == *" $2 "* ]]; then return 0; fi
  call "$AS" user grant-role "$1" "$2" || die "cannot grant role $2 to etcd user $1: $(why)"
  say "user $1: granted role $2"
}

# --- 3. users, role, permission ------------------------------------------------------------
ensure_user root "$ROOT_PASSWORD" "$DIR/root.password"
ensure_grant root root

if call "$AS" role get "$ROLE"; then
  say "role $ROLE: kept"
else
  case "$(why)" in *"role name not found"*) ;; *) die "cannot read etcd role $ROLE: $(why)" ;; esac
  call "$AS" role add "$ROLE" || die "cannot add etcd role $ROLE: $(why)"
  say "role $ROLE: created"
  call "$AS" role get "$ROLE" || die "cannot read etcd role $ROLE: $(why)"
fi
# Read and write on the prefix show as one line each under "KV Read:" and "KV Write:".
if [ "$(printf '%s\n' "$OUT" | grep -c -F "(prefix $KEY_PREFIX)")" -lt 2 ]; then
  call "$AS" role grant-permission --prefix=true "$ROLE" readwrite "$KEY_PREFIX" ||
    die "cannot grant readwrite on $KEY_PREFIX to etcd role $ROLE: $(why)"
  say "role $ROLE: granted read and write on the keys under $KEY_PREFIX"
fi

ensure_user "$USER_NAME" "$USER_PASSWORD" "$DIR/client/etcd.password"
ensure_grant "$USER_NAME" "$ROLE"

# --- 4. authentication on -------------------------------------------------------------------
if [ "$AS" = anon ]; then
  call anon auth enable || die "auth enable failed: $(why)"
  say "authentication enabled"
fi

# --- 5. checks: what the daemons will do, and what nobody may do ---------------------------------
probe="${KEY_PREFIX}.witness-auth-check"
call user put "$probe" ok ||
  die "etcd user $USER_NAME cannot write $probe with the password in $DIR/client/etcd.password: $(why) (to set it: etcdctl --user root user passwd $USER_NAME)"
call user del "$probe" || die "etcd user $USER_NAME cannot delete $probe: $(why)"
if call user get /; then
  die "etcd user $USER_NAME can read outside $KEY_PREFIX: revoke what role $ROLE (or another of its roles) grants beyond it"
fi
if [ "${#TLS_ARGS[@]}" -eq 0 ] && call anon get "$probe"; then
  die "etcd at $ENDPOINT still answers anonymous requests"
fi
say "checked: $USER_NAME reads and writes under $KEY_PREFIX only; anonymous requests are refused"
