#!/usr/bin/env bash
# Assembles the root filesystem of the Tessera image from a built `tessera` binary, as a tar
# archive with explicit owners, so that every way of building the image (build-image.sh here,
# the multi-stage Dockerfile elsewhere) produces the same layout:
#
#   /usr/local/bin/tessera          the binary, stripped of its debug info
#   /lib/..., /lib64/...            the shared libraries `ldd` lists and the dynamic loader,
#                                   at the paths the binary looks for them
#   /etc/passwd, /etc/group         root and the unprivileged user `tessera` (uid/gid 10001)
#   /etc/nsswitch.conf              host names from /etc/hosts, then DNS (compose service names)
#   /var/lib/tessera                the data directory, owned by `tessera`; a named volume
#                                   mounted here starts with these owners
#   /tmp                            world-writable, sticky
#
# There is no shell and no other program in the image: the healthcheck is `tessera health`.
#
#   docker/rootfs.sh BINARY OUT.tar
#
# Needs ldd, strip (binutils) and GNU tar.

set -euo pipefail

if [ "$#" -ne 2 ]; then
    echo "usage: $0 BINARY OUT.tar" >&2
    exit 2
fi
binary="$1"
out="$2"
[ -x "$binary" ] || { echo "$0: $binary is not an executable" >&2; exit 1; }

# The image's user (docker/Dockerfile's USER, the README and tests/tests/compose.rs agree).
uid=10001
gid=10001

stage="$(mktemp -d)"
chmod 0755 "$stage"
trap 'rm -rf "$stage"' EXIT

mkdir -p "$stage/usr/local/bin" "$stage/etc" "$stage/var/lib/tessera" "$stage/tmp"
strip --strip-debug -o "$stage/usr/local/bin/tessera" "$binary"
chmod 0755 "$stage/usr/local/bin/tessera"

# Every library the binary links, and the loader, copied (not linked) to the path the binary
# resolves it at. ldd prints `name => /path (addr)` for libraries and `/path (addr)` for the
# loader; the vDSO has no file. A static binary has none (ldd says "not a dynamic executable").
libraries="$({ ldd "$binary" 2>/dev/null || true; } | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')"
for library in $libraries; do
    mkdir -p "$stage$(dirname "$library")"
    cp -L "$library" "$stage$library"
done

cat >"$stage/etc/passwd" <<EOF
root:x:0:0:root:/root:/sbin/nologin
tessera:x:$uid:$gid:Tessera:/var/lib/tessera:/sbin/nologin
EOF
cat >"$stage/etc/group" <<EOF
root:x:0:
tessera:x:$gid:
EOF
echo 'hosts: files dns' >"$stage/etc/nsswitch.conf"
chmod 0644 "$stage/etc/passwd" "$stage/etc/group" "$stage/etc/nsswitch.conf"
chmod 1777 "$stage/tmp"
chmod 0750 "$stage/var/lib/tessera"

# Owners are set in the archive, so that building needs no root and every builder agrees:
# everything belongs to root except the data directory. Sorted names and a fixed time make
# the archive the same for the same binary.
tar --create --file "$out" --directory "$stage" --sort=name --mtime='2000-01-01 00:00:00Z' \
    --numeric-owner --owner=0 --group=0 --exclude=./var/lib/tessera .
tar --append --file "$out" --directory "$stage" --numeric-owner --owner="$uid" --group="$gid" \
    --mtime='2000-01-01 00:00:00Z' ./var/lib/tessera
