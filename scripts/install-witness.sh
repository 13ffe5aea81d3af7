# shellcheck shell=bash
# The etcd witness of redis-ha's quorum (issue 11): `scripts/install.sh --witness --listen
# ADDRESS [--tls]` on a third host (the application host, a monitoring box). Sourced by
# install.sh, whose say, die, ensure_packages, ROOT, ROOT_OPT, WITH_PACKAGES, START, TLS,
# LISTEN, REPLACE_DEBIAN_ETCD, SRC and clean-up lists it uses; it defines functions only
# (the tests source install.sh to call them), `witness_install` acts. It installs:
#
#   Debian packages                  etcd-server etcd-client (and openssl with --tls)
#   /usr/lib/systemd/system/redis-ha-witness.service
#                                    our unit: Debian's /usr/bin/etcd as Debian's etcd
#                                    user, a single member on ADDRESS (clients :2379, peer
#                                    :2380, nothing on other addresses), data in
#                                    /var/lib/redis-ha-witness. Debian's etcd.service is
#                                    never edited: it is stopped and disabled (see
#                                    witness_debian_etcd)
#   /usr/local/sbin/redis-ha-witness-auth
#                                    scripts/witness-auth.sh: etcd's users, role and
#                                    `auth enable`; run here once etcd is up
#   /etc/redis-ha-witness/           0750 root:etcd
#     root.password                  0600 root      etcd's root user
#     ca.pem, ca.key (0600 root)                    with --tls: the witness's own CA
#     server.pem, server.key (0640 root:etcd)       with --tls: SAN = ADDRESS
#     client/                        0700 root      what each Redis host needs, copied by
#                                                   the operator (the install prints how)
#       etcd.password                0600 root      the etcd user redis-ha's password
#       etcd-ca.pem, etcd-client.pem, etcd-client.key (0600)   with --tls (CN redis-ha)
#   /var/lib/redis-ha-witness/       0700 etcd:etcd the member's data
#
# Then, on this machine with systemd running (not with --root or --no-start), it starts
# the unit and runs redis-ha-witness-auth against it. Idempotent: a second run with the
# same options rewrites nothing; passwords, the CA, certificates and data are never
# replaced once they exist (remove a certificate and its key to have it issued again).

WITNESS_UNIT=redis-ha-witness.service
WITNESS_NAME=redis-ha-witness
WITNESS_CONF=/etc/redis-ha-witness
WITNESS_DATA=/var/lib/redis-ha-witness
WITNESS_AUTH_BIN=/usr/local/sbin/redis-ha-witness-auth
WITNESS_USER=etcd
WITNESS_CLIENT_PORT=2379
WITNESS_PEER_PORT=2380
# etcd's own defaults (Debian changes neither). The daemons' timing rule needs the
# election timeout: quorum.etcd.election_timeout_ms on both Redis hosts must be this.
WITNESS_HEARTBEAT_MS=100
WITNESS_ELECTION_MS=1000
# A witness stores two small keys per pair; history is compacted hourly and 512 MiB is
# far more than it ever needs, but a full quota (NOSPACE) refuses every write, so the
# quota is set, not left to chance.
WITNESS_COMPACTION_RETENTION=1h
WITNESS_QUOTA_BYTES=536870912
WITNESS_CA_DAYS=3650
WITNESS_CERT_DAYS=1825
# Where the install tells the operator to put the client files on the Redis hosts.
REDIS_SIDE_DIR=/etc/redis-ha

# witness_address_problem ADDRESS: prints why ADDRESS cannot be the witness's listen
# address and fails; prints nothing for a usable one. Only an IP literal: etcd binds its
# peer port to it and the certificate names it. Pure bash, nothing evaluated.
witness_address_problem() {
  local a="$1" part parts
  local usage="must be this host's IPv4 or IPv6 address (etcd binds its ports to it and the certificate names it)"
  if [ -z "$a" ]; then
    printf '%s, got nothing\n' "$usage"
    return 1
  fi
  if [[ "$a" =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]]; then
    parts=("${BASH_REMATCH[@]:1}")
    for part in "${parts[@]}"; do
      if [[ "$part" =~ ^0[0-9] ]] || [ "$part" -gt 255 ]; then
        printf '%s, got %q (each part 0-255, no leading zeros)\n' "$usage" "$a"
        return 1
      fi
    done
    case "$a" in
      0.0.0.0) printf '%s, got the wildcard 0.0.0.0 (the peer port must listen on one address only)\n' "$usage"; return 1 ;;
      0.*) printf '%s, got %s (0.0.0.0/8 is "this network", not an address)\n' "$usage" "$a"; return 1 ;;
      255.255.255.255) printf '%s, got the broadcast address\n' "$usage"; return 1 ;;
    esac
    if [ "${parts[0]}" -ge 224 ]; then
      printf '%s, got %s (multicast or reserved)\n' "$usage" "$a"
      return 1
    fi
    return 0
  fi
  if [[ "$a" == *:* ]] && [[ "$a" =~ ^[0-9A-Fa-f:]+$ ]]; then
    local rest="$a" groups=0 double=0 g
    if [[ "$rest" == *::*::* ]] || [[ "$rest" == *:::* ]]; then
      printf '%s, got %q (at most one ::)\n' "$usage" "$a"
      return 1
    fi
    [[ "$rest" == *::* ]] && double=1
    # Count the groups on both sides of a "::", each 1-4 hex digits.
    local IFS=:
    for g in $rest; do
      [ -n "$g" ] || continue
      if [ "${#g}" -gt 4 ]; then
        printf '%s, got %q (a group of more than 4 hex digits)\n' "$usage" "$a"
        return 1
      fi
      groups=$((groups + 1))
    done
    unset IFS
    if { [ "$double" -eq 1 ] && [ "$groups" -gt 7 ]; } || { [ "$double" -eq 0 ] && [ "$groups" -ne 8 ]; } ||
       [[ "$a" =~ ^:[^:] ]] || [[ "$a" =~ [^:]:$ ]]; then
      printf '%s, got %q (not an IPv6 address)\n' "$usage" "$a"
      return 1
    fi
    if [ "$groups" -eq 0 ]; then
      printf '%s, got the wildcard :: (the peer port must listen on one address only)\n' "$usage"
      return 1
    fi
    case "${a,,}" in
      ff*) printf '%s, got %s (multicast)\n' "$usage" "$a"; return 1 ;;
      fe8*|fe9*|fea*|feb*) printf '%s, got %s (link-local: it needs a zone, which a URL and a certificate cannot carry)\n' "$usage" "$a"; return 1 ;;
    esac
    return 0
  fi
  printf '%s, got %q\n' "$usage" "$a"
  return 1
}

# witness_canonical_address ADDRESS: lower case (IPv6); the form written into the unit,
# the URLs and the certificate.
witness_canonical_address() { printf '%s\n' "${1,,}"; }

# witness_url SCHEME ADDRESS PORT: a URL, with brackets around an IPv6 address.
witness_url() {
  case "$2" in
    *:*) printf '%s://[%s]:%s\n' "$1" "$2" "$3" ;;
    *) printf '%s://%s:%s\n' "$1" "$2" "$3" ;;
  esac
}

# witness_unit ADDRESS TLS(0|1): prints the unit file.
witness_unit() {
  local address="$1" tls="$2" scheme=http client peer
  [ "$tls" -eq 0 ] || scheme=https
  client="$(witness_url "$scheme" "$address" "$WITNESS_CLIENT_PORT")"
  peer="$(witness_url "$scheme" "$address" "$WITNESS_PEER_PORT")"
  cat <<EOF
# redis-ha-witness: a single etcd member, the third vote of redis-ha's quorum.
#
# Written by scripts/install.sh --witness --listen $address$( [ "$tls" -eq 0 ] || printf ' --tls' ).
# The next run rewrites it: local changes go in a drop-in (systemctl edit
# $WITNESS_UNIT). Debian's own etcd.service is not used (installed, stopped,
# disabled): this unit runs the same /usr/bin/etcd as the same user with its own
# address, data and flags.
#
# \`systemd-analyze security --offline=true $WITNESS_UNIT\` (systemd 252): overall
# exposure 1.2 OK (test/install/witness.test.ts fails above that). What is left open is
# what etcd needs: its two ports (AF_INET/AF_INET6) and sd_notify (AF_UNIX).
#
# --initial-cluster-* only count on the very first start; once $WITNESS_DATA
# holds the member, etcd ignores them. Heartbeat and election timeout are etcd's
# defaults: the Redis hosts' quorum.etcd.election_timeout_ms must be $WITNESS_ELECTION_MS.
[Unit]
Description=etcd witness for redis-ha (single member on $address)
Documentation=https://etcd.io/docs/v3.4/op-guide/configuration/
# Binding $address needs it configured.
After=network-online.target
Wants=network-online.target

[Service]
Type=notify
User=$WITNESS_USER
Group=$WITNESS_USER
ExecStart=/usr/bin/etcd \\
  --name $WITNESS_NAME \\
  --data-dir $WITNESS_DATA \\
  --listen-client-urls $client \\
  --advertise-client-urls $client \\
  --listen-peer-urls $peer \\
  --initial-advertise-peer-urls $peer \\
  --initial-cluster $WITNESS_NAME=$peer \\
  --initial-cluster-token $WITNESS_NAME \\
  --initial-cluster-state new \\
  --heartbeat-interval $WITNESS_HEARTBEAT_MS \\
  --election-timeout $WITNESS_ELECTION_MS \\
  --auto-compaction-mode periodic \\
  --auto-compaction-retention $WITNESS_COMPACTION_RETENTION \\
  --quota-backend-bytes $WITNESS_QUOTA_BYTES \\
EOF
  if [ "$tls" -eq 1 ]; then
    cat <<EOF
  --cert-file $WITNESS_CONF/server.pem \\
  --key-file $WITNESS_CONF/server.key \\
  --trusted-ca-file $WITNESS_CONF/ca.pem \\
  --client-cert-auth \\
  --peer-cert-file $WITNESS_CONF/server.pem \\
  --peer-key-file $WITNESS_CONF/server.key \\
  --peer-trusted-ca-file $WITNESS_CONF/ca.pem \\
  --peer-client-cert-auth \\
EOF
  fi
  cat <<EOF
  --logger zap \\
  --log-outputs stderr
# A witness that is down costs nothing at once (the master serves on in failsafe) but
# leaves the pair without failover: always bring it back.
Restart=always
RestartSec=2s
TimeoutStartSec=60s
LimitNOFILE=65536
# /var/lib/redis-ha-witness, owned by etcd, 0700 (etcd warns about anything wider).
StateDirectory=$WITNESS_NAME
StateDirectoryMode=0700
UMask=0077

# Sandbox: etcd needs its data directory, its two ports and nothing else.
NoNewPrivileges=yes
CapabilityBoundingSet=
AmbientCapabilities=
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
DevicePolicy=closed
PrivateIPC=yes
RemoveIPC=yes
PrivateMounts=yes
KeyringMode=private
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
LockPersonality=yes
MemoryDenyWriteExecute=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
RestrictNamespaces=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources
SystemCallErrorNumber=EPERM

[Install]
WantedBy=multi-user.target
EOF
}

# write_if_changed FILE MODE: writes stdin to FILE (mode MODE, owner root) unless FILE
# already holds exactly that; then only its mode and owner are set, and nothing is
# created next to it either (a second install changes no content and no mtime, not
# even the directory's). Succeeds when it wrote. (Called in conditions, where set -e
# does not act: each step says itself what failed.)
write_if_changed() {
  local file="$1" mode="$2" scratch tmp
  scratch="$(mktemp -d)" || die "cannot create a temporary directory"
  CLEANUP_FILES+=("$scratch")
  cat > "$scratch/new" || die "cannot write $scratch/new"
  if [ -f "$file" ] && cmp -s "$scratch/new" "$file"; then
    rm -rf -- "$scratch"
    chown 0:0 "$file" && chmod "$mode" "$file" || die "cannot set the owner and mode of $file"
    return 1
  fi
  tmp="$(mktemp "$file.new.XXXXXX")" || die "cannot create a file next to $file"
  CLEANUP_FILES+=("$tmp")
  cat "$scratch/new" > "$tmp" && chown 0:0 "$tmp" && chmod "$mode" "$tmp" && mv -f -- "$tmp" "$file" || die "cannot replace $file"
  rm -rf -- "$scratch"
}

# witness_secret FILE: creates FILE (0600, root) holding a new random password (192
# bits as 48 hex digits: no character a shell, YAML or etcdctl could misread) unless it
# exists; an existing one is never replaced. Succeeds when it created the file.
witness_secret() {
  local file="$1" tmp
  if [ -e "$file" ]; then
    [ -f "$file" ] && [ -s "$file" ] || die "$file exists but is not a non-empty file: remove it to have a new password made"
    chown 0:0 "$file"
    chmod 0600 "$file"
    return 1
  fi
  tmp="$(umask 077 && mktemp "$file.new.XXXXXX")" || die "cannot create a file next to $file"
  CLEANUP_FILES+=("$tmp")
  { od -An -N24 -tx1 /dev/urandom | tr -d ' \n' && printf '\n'; } > "$tmp" || die "cannot write $tmp"
  [ "$(wc -c < "$tmp")" -eq 49 ] || die "could not read 24 random bytes from /dev/urandom"
  chown 0:0 "$tmp" && chmod 0600 "$tmp" && mv -- "$tmp" "$file" || die "cannot create $file"
}

# witness_openssl LOG WHAT ARGS...: runs openssl ARGS, its messages into LOG; dies
# saying WHAT failed, with openssl's last words.
witness_openssl() {
  local log="$1" what="$2"
  shift 2
  openssl "$@" >"$log" 2>&1 || die "openssl could not $what: $(tail -n 3 "$log" | tr '\n' ' ')"
}

# witness_issue_cert CA_DIR DIR NAME CN EXT_USAGE [SAN]: a new key and certificate signed
# by CA_DIR/ca.pem, as DIR/NAME.key (0600) and DIR/NAME.pem (0644). ECDSA P-256.
witness_issue_cert() {
  local ca="$1" dir="$2" name="$3" cn="$4" usage="$5" san="${6:-}" work
  work="$(mktemp -d "$dir/.issue.XXXXXX")"
  CLEANUP_FILES+=("$work")
  {
    printf 'basicConstraints = critical, CA:FALSE\n'
    printf 'keyUsage = critical, digitalSignature\n'
    printf 'extendedKeyUsage = %s\n' "$usage"
    printf 'subjectKeyIdentifier = hash\n'
    printf 'authorityKeyIdentifier = keyid\n'
    [ -z "$san" ] || printf 'subjectAltName = %s\n' "$san"
  } > "$work/ext.cnf"
  (umask 077 && witness_openssl "$work/log" "make the key for $name" genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/key.pem")
  witness_openssl "$work/log" "make the request for $name" req -new -key "$work/key.pem" -subj "/CN=$cn" -out "$work/req.pem"
  witness_openssl "$work/log" "sign the certificate for $name" x509 -req -in "$work/req.pem" -CA "$ca/ca.pem" -CAkey "$ca/ca.key" \
    -set_serial "0x$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" -days "$WITNESS_CERT_DAYS" -sha256 \
    -extfile "$work/ext.cnf" -out "$work/cert.pem"
  chmod 0600 "$work/key.pem"
  chmod 0644 "$work/cert.pem"
  mv -- "$work/key.pem" "$dir/$name.key"
  mv -- "$work/cert.pem" "$dir/$name.pem"
  rm -rf -- "$work"
}

# witness_tls CONF_DIR ADDRESS ETCD_GID: the CA, the server certificate (SAN = ADDRESS)
# and the client certificate (CN redis-ha: with --client-cert-auth etcd takes the CN as
# the user), each made only if missing. An existing server certificate that does not
# name ADDRESS is an error, not replaced. Prints what it did; WITNESS_TLS_ISSUED is 1 when
# it made anything.
WITNESS_TLS_ISSUED=0
witness_tls() {
  local conf="$1" address="$2" gid="$3" client="$1/client" work name
  if [ -e "$conf/ca.pem" ] || [ -e "$conf/ca.key" ]; then
    [ -f "$conf/ca.pem" ] && [ -f "$conf/ca.key" ] ||
      die "$conf holds only one of ca.pem and ca.key: restore the other, or remove both (and every certificate they signed) to make a new CA"
    say "kept the CA $conf/ca.pem"
  else
    work="$(mktemp -d "$conf/.ca.XXXXXX")"
    CLEANUP_FILES+=("$work")
    (umask 077 && witness_openssl "$work/log" "make the CA key" genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/ca.key")
    witness_openssl "$work/log" "make the CA certificate" req -x509 -new -key "$work/ca.key" -subj "/CN=redis-ha witness CA" \
      -days "$WITNESS_CA_DAYS" -sha256 -addext "basicConstraints = critical, CA:TRUE, pathlen:0" \
      -addext "keyUsage = critical, keyCertSign, cRLSign" -out "$work/ca.pem"
    chmod 0644 "$work/ca.pem"
    mv -- "$work/ca.key" "$conf/ca.key"
    mv -- "$work/ca.pem" "$conf/ca.pem"
    rm -rf -- "$work"
    WITNESS_TLS_ISSUED=1
    say "created the CA $conf/ca.pem (key $conf/ca.key, 0600 root: it never leaves this host)"
  fi
  chown 0:0 "$conf/ca.pem" "$conf/ca.key"
  chmod 0644 "$conf/ca.pem"
  chmod 0600 "$conf/ca.key"

  for name in server client; do
    local dir="$conf" file="server" what="server certificate"
    if [ "$name" = client ]; then dir="$client"; file="etcd-client"; what="client certificate"; fi
    if [ -e "$dir/$file.pem" ] || [ -e "$dir/$file.key" ]; then
      [ -f "$dir/$file.pem" ] && [ -f "$dir/$file.key" ] ||
        die "$dir holds only one of $file.pem and $file.key: remove both to have them issued again"
      say "kept the $what $dir/$file.pem"
    elif [ "$name" = server ]; then
      witness_issue_cert "$conf" "$dir" "$file" "$WITNESS_NAME" "serverAuth, clientAuth" "IP:$address"
      WITNESS_TLS_ISSUED=1
      say "issued the server certificate $dir/$file.pem for $address"
    else
      witness_issue_cert "$conf" "$dir" "$file" redis-ha clientAuth
      WITNESS_TLS_ISSUED=1
      say "issued the client certificate $dir/$file.pem (CN redis-ha)"
    fi
    openssl verify -CAfile "$conf/ca.pem" "$dir/$file.pem" >/dev/null 2>&1 ||
      die "$dir/$file.pem is not signed by $conf/ca.pem: remove $file.pem and $file.key to have them issued again"
    if ! openssl x509 -in "$dir/$file.pem" -noout -checkend 2592000 >/dev/null 2>&1; then
      say "WARNING: $dir/$file.pem expires within 30 days ($(openssl x509 -in "$dir/$file.pem" -noout -enddate | cut -d= -f2)): remove $file.pem and $file.key and run this again"
    fi
  done
  if ! openssl x509 -in "$conf/server.pem" -noout -checkip "$address" 2>/dev/null | grep -q 'does match'; then
    die "$conf/server.pem does not name $address (an earlier --listen?): remove server.pem and server.key to have a certificate for $address issued"
  fi
  chown 0:"$gid" "$conf/server.key"
  chmod 0640 "$conf/server.key"
  chown 0:0 "$conf/server.pem" "$client/etcd-client.pem" "$client/etcd-client.key"
  chmod 0644 "$conf/server.pem" "$client/etcd-client.pem"
  chmod 0600 "$client/etcd-client.key"
  # What the Redis hosts trust: the CA certificate, never its key.
  if ! cmp -s "$conf/ca.pem" "$client/etcd-ca.pem"; then
    install -m 0644 -o 0 -g 0 "$conf/ca.pem" "$client/etcd-ca.pem"
  fi
}

# witness_debian_etcd INSTALLED_NOW(0|1): Debian's etcd.service, which the package enables
# and starts on 127.0.0.1:2379 without authentication, is left as the package made it
# but stopped and disabled: one etcd on this host, ours. A Debian etcd that was running
# before this install may serve something else: refused unless --replace-debian-etcd.
# Not masked (the package's postinst unmasks it on every upgrade anyway); disabled, an
# upgrade does not start it again.
witness_debian_etcd() {
  local installed_now="$1" link
  if [ -n "$ROOT" ]; then
    [ -e "$ROOT/lib/systemd/system/etcd.service" ] || [ -e "$ROOT/usr/lib/systemd/system/etcd.service" ] || return 0
    local removed=0
    for link in "$ROOT"/etc/systemd/system/*.wants/etcd.service "$ROOT/etc/systemd/system/etcd2.service"; do
      if [ -L "$link" ]; then rm -f -- "$link"; removed=1; fi
    done
    [ "$removed" -eq 0 ] || say "disabled Debian's etcd.service in $ROOT (left installed and unedited; $WITNESS_UNIT is the witness)"
    return 0
  fi
  witness_systemd_running || return 0
  if systemctl is-active --quiet etcd.service; then
    if [ "$installed_now" -eq 0 ] && [ "$REPLACE_DEBIAN_ETCD" -eq 0 ]; then
      die "Debian's etcd.service is running here and was not installed by this run: it may serve something else. Stop it yourself, or pass --replace-debian-etcd to have it stopped and disabled"
    fi
    systemctl stop etcd.service
    say "stopped Debian's etcd.service"
  fi
  if systemctl is-enabled --quiet etcd.service 2>/dev/null; then
    systemctl disable --quiet etcd.service
    say "disabled Debian's etcd.service (left installed and unedited; $WITNESS_UNIT is the witness)"
  fi
}

witness_systemd_running() { [ -z "$ROOT" ] && [ -d /run/systemd/system ] && [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]; }

# witness_field FILE NAME FIELD: a field of the target's passwd or group entry NAME.
witness_field() { awk -F: -v n="$2" -v f="$3" '$1 == n { print $f; exit }' "$ROOT/etc/$1"; }

# witness_account: Debian's etcd user (the package makes it; with --no-packages it may be
# missing, and is then made the way the package does). Sets WITNESS_UID and WITNESS_GID.
witness_account() {
  if [ -z "$(witness_field group "$WITNESS_USER" 1)" ]; then
    groupadd --system "${ROOT_OPT[@]}" "$WITNESS_USER"
    say "created group $WITNESS_USER"
  fi
  if [ -z "$(witness_field passwd "$WITNESS_USER" 1)" ]; then
    useradd --system "${ROOT_OPT[@]}" --gid "$WITNESS_USER" --no-create-home --home-dir /var/lib/etcd \
      --shell /usr/sbin/nologin --comment "etcd (redis-ha witness)" "$WITNESS_USER"
    say "created user $WITNESS_USER"
  fi
  WITNESS_UID="$(witness_field passwd "$WITNESS_USER" 3)"
  WITNESS_GID="$(witness_field group "$WITNESS_USER" 3)"
  [ -n "$WITNESS_UID" ] && [ -n "$WITNESS_GID" ] || die "user or group $WITNESS_USER missing from $ROOT/etc/passwd or $ROOT/etc/group"
}

# witness_print_config ADDRESS TLS: what the operator copies to each Redis host.
witness_print_config() {
  local address="$1" tls="$2" scheme=http endpoint password
  [ "$tls" -eq 0 ] || scheme=https
  endpoint="$(witness_url "$scheme" "$address" "$WITNESS_CLIENT_PORT")"
  password="$(cat "$ROOT$WITNESS_CONF/client/etcd.password")"
  cat <<EOF

On each Redis host (A and B), as root:
  1. The etcd user redis-ha's password (the same on both hosts):
       install -m 600 -o redis-ha -g redis-ha /dev/null $REDIS_SIDE_DIR/etcd.password
       printf '%s\\n' '$password' > $REDIS_SIDE_DIR/etcd.password
     (it is $WITNESS_CONF/client/etcd.password here; copying that file does the same)
EOF
  if [ "$tls" -eq 1 ]; then
    cat <<EOF
  2. From this host's $WITNESS_CONF/client/, the CA and the client certificate:
       etcd-ca.pem     -> $REDIS_SIDE_DIR/etcd-ca.pem       (mode 0644)
       etcd-client.pem -> $REDIS_SIDE_DIR/etcd-client.pem   (mode 0644)
       etcd-client.key -> $REDIS_SIDE_DIR/etcd-client.key   (mode 0600, owner redis-ha)
     e.g. scp $WITNESS_CONF/client/etcd-* root@A:$REDIS_SIDE_DIR/ and then, on A,
       chown redis-ha: $REDIS_SIDE_DIR/etcd-client.key && chmod 600 $REDIS_SIDE_DIR/etcd-client.key
EOF
  fi
  cat <<EOF
  $([ "$tls" -eq 1 ] && echo 3 || echo 2). In $REDIS_SIDE_DIR/redis-ha.yaml:
quorum:
  backend: etcd
  etcd:
    endpoints: $endpoint
    username: redis-ha
    password_file: $REDIS_SIDE_DIR/etcd.password
EOF
  if [ "$tls" -eq 1 ]; then
    cat <<EOF
    ca_file: $REDIS_SIDE_DIR/etcd-ca.pem
    cert_file: $REDIS_SIDE_DIR/etcd-client.pem
    key_file: $REDIS_SIDE_DIR/etcd-client.key
EOF
  fi
  cat <<EOF
    election_timeout_ms: $WITNESS_ELECTION_MS   # this witness's --election-timeout: keep them equal
  $([ "$tls" -eq 1 ] && echo 4 || echo 3). runuser -u redis-ha -- redis-ha check-config, then systemctl restart redis-ha
     (first on the backup, then on the master), and redis-ha status on both.
EOF
  if [ "$tls" -eq 0 ]; then
    cat <<EOF
Without --tls the password crosses the network in clear: use --tls unless the network
between the three hosts is trusted.
EOF
  fi
}

# witness_install: the whole --witness install (see the header).
witness_install() {
  local address="$LISTEN" scheme=http endpoint etcd_installed_now=0 unit_changed=0 p
  local conf="$ROOT$WITNESS_CONF" data="$ROOT$WITNESS_DATA"
  [ "$TLS" -eq 0 ] || scheme=https
  endpoint="$(witness_url "$scheme" "$address" "$WITNESS_CLIENT_PORT")"

  # --- 1. Debian's etcd already running: someone else's, unless told otherwise ---------
  if witness_systemd_running && [ "$REPLACE_DEBIAN_ETCD" -eq 0 ] && systemctl is-active --quiet etcd.service &&
     dpkg-query -W -f='${Status}' etcd-server 2>/dev/null | grep -q "install ok installed"; then
    die "Debian's etcd.service is running here: it may serve something else. Stop it yourself, or pass --replace-debian-etcd to have it stopped and disabled"
  fi
  # A witness made with --tls stays TLS: without it the unit would serve plain http and
  # the password would cross the network in clear.
  if [ "$TLS" -eq 0 ] && [ -e "$conf/server.pem" ]; then
    die "this witness was installed with --tls ($WITNESS_CONF/server.pem exists): pass --tls again"
  fi

  # --- 2. packages ----------------------------------------------------------------------
  local packages=(etcd-server etcd-client)
  if [ "$WITH_PACKAGES" -eq 0 ]; then
    say "--no-packages: not installing ${packages[*]} (the witness needs /usr/bin/etcd, the set-up /usr/bin/etcdctl)"
  else
    # The certificates are made (and on every later run checked) with openssl: on this
    # machine now, on the target when the install is run again there.
    [ "$TLS" -eq 0 ] || packages+=(openssl)
    ensure_packages "${packages[@]}"
    for p in "${PACKAGES_INSTALLED[@]}"; do [ "$p" != etcd-server ] || etcd_installed_now=1; done
  fi
  if [ ! -x "$ROOT/usr/bin/etcd" ]; then
    if [ -z "$ROOT" ] && [ "$START" -eq 1 ] && witness_systemd_running; then
      die "/usr/bin/etcd is missing: apt-get install etcd-server etcd-client, or run this without --no-packages"
    fi
    say "note: $ROOT/usr/bin/etcd is missing: the unit needs Debian's etcd-server (and the set-up etcdctl, etcd-client)"
  fi
  if [ "$TLS" -eq 1 ]; then
    command -v openssl >/dev/null 2>&1 || die "--tls makes the certificates with openssl on this machine: apt-get install openssl"
  fi

  # --- 3. account and directories -------------------------------------------------------
  witness_account
  mkdir -p "$conf" "$conf/client"
  chown 0:"$WITNESS_GID" "$conf"
  chmod 0750 "$conf"
  chown 0:0 "$conf/client"
  chmod 0700 "$conf/client"
  if [ -d "$data" ]; then
    say "kept the data directory $data"
  else
    mkdir -p "$data"
    say "created the data directory $data"
  fi
  chown "$WITNESS_UID:$WITNESS_GID" "$data"
  chmod 0700 "$data"

  # --- 4. secrets and certificates (never replaced) ------------------------------------------
  if witness_secret "$conf/root.password"; then
    say "created $WITNESS_CONF/root.password (etcd's root user; 0600 root, stays on this host)"
  else
    say "kept $WITNESS_CONF/root.password"
  fi
  if witness_secret "$conf/client/etcd.password"; then
    say "created $WITNESS_CONF/client/etcd.password (the etcd user redis-ha; copy it to both Redis hosts)"
  else
    say "kept $WITNESS_CONF/client/etcd.password"
  fi
  if [ "$TLS" -eq 1 ]; then
    witness_tls "$conf" "$address" "$WITNESS_GID"
  fi

  # --- 5. the unit and the auth helper ----------------------------------------------------------
  local unit="$ROOT/usr/lib/systemd/system/$WITNESS_UNIT"
  mkdir -p "$(dirname "$unit")" "$(dirname "$ROOT$WITNESS_AUTH_BIN")"
  if write_if_changed "$unit" 0644 < <(witness_unit "$address" "$TLS"); then
    unit_changed=1
    say "unit $unit (etcd on $endpoint)"
  else
    say "unit $unit unchanged"
  fi
  write_if_changed "$ROOT$WITNESS_AUTH_BIN" 0755 < "$SRC/scripts/witness-auth.sh" || true
  say "auth set-up $WITNESS_AUTH_BIN"

  # --- 6. Debian's etcd.service ---------------------------------------------------------------
  witness_debian_etcd "$etcd_installed_now"

  # --- 7. start and authentication (this machine only) -----------------------------------------
  local auth_cmd="$WITNESS_AUTH_BIN $endpoint"
  if [ -n "$ROOT" ] || [ "$START" -eq 0 ] || ! witness_systemd_running; then
    if [ -z "$ROOT" ] && [ "$START" -eq 1 ]; then say "systemd is not running here: etcd not started"; fi
    cat <<EOF

The witness is installed but not started. On the witness host, as root:
  systemctl daemon-reload && systemctl enable --now $WITNESS_UNIT
  $auth_cmd      (users, role, auth enable; until then etcd has no authentication)
EOF
  else
    systemctl daemon-reload
    systemctl enable --quiet "$WITNESS_UNIT"
    if systemctl is-active --quiet "$WITNESS_UNIT"; then
      if [ "$unit_changed" -eq 1 ] || [ "$WITNESS_TLS_ISSUED" -eq 1 ]; then
        systemctl restart "$WITNESS_UNIT"
        say "restarted $WITNESS_UNIT (its unit or certificates changed)"
      else
        say "$WITNESS_UNIT is running"
      fi
    else
      systemctl start "$WITNESS_UNIT" || die "$WITNESS_UNIT did not start: journalctl -u $WITNESS_UNIT"
      say "started $WITNESS_UNIT"
    fi
    "$WITNESS_AUTH_BIN" --dir "$WITNESS_CONF" "$endpoint" || die "setting up etcd's authentication failed (above); run $auth_cmd again once it is fixed"
  fi

  say "witness: etcd on $endpoint, peer port $(witness_url "$scheme" "$address" "$WITNESS_PEER_PORT") (single member), data $WITNESS_DATA"
  say "the Redis hosts' quorum.etcd.election_timeout_ms must be $WITNESS_ELECTION_MS (this witness's --election-timeout)"
  case "$address" in 127.*|::1) say "note: $address is a loopback address: only this host can reach the witness" ;; esac
  witness_print_config "$address" "$TLS"
}
