#!/usr/bin/env bash
# Builds the Tessera image, tagged tessera:latest, without pulling anything: from the local
# release binary (built with cargo first if it is missing, or always with --build), on
# `FROM scratch`.
#
#   docker/build-image.sh [--build] [--tag NAME:TAG]
#
# The image is the final stage of docker/Dockerfile (the multi-stage build for machines that
# can pull a Rust image) with one change: the root filesystem docker/rootfs.sh assembles comes
# from the build context here rather than from the Dockerfile's build stage. Both run
# rootfs.sh on a release binary, so both give the same layout. TESSERA_BIN names another
# binary to put in the image (it must run on Debian 12's glibc or be static).

set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

tag="tessera:latest"
build=0
while [ "$#" -gt 0 ]; do
    case "$1" in
        --build) build=1 ;;
        --tag) tag="${2:?--tag needs NAME:TAG}"; shift ;;
        -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
        *) echo "$0: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

docker info >/dev/null 2>&1 || { echo "$0: no Docker engine reachable (docker info fails)" >&2; exit 1; }

if [ -n "${TESSERA_BIN:-}" ] && [ "$build" -eq 0 ]; then
    binary="$TESSERA_BIN"
else
    target_dir="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
    binary="${target_dir:-$PWD/target}/release/tessera"
    if [ "$build" -eq 1 ] || [ ! -x "$binary" ]; then
        echo "building $binary (cargo build --release -p tessera)"
        cargo build --release -p tessera
    fi
fi
[ -x "$binary" ] || { echo "$0: no tessera binary at $binary" >&2; exit 1; }

context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT

docker/rootfs.sh "$binary" "$context/rootfs.tar"

# The final stage of docker/Dockerfile, its root filesystem from the context. ADD unpacks a
# local tar archive keeping the owners recorded in it, as COPY --from keeps a stage's.
copy_line='COPY --from=build /rootfs/ /'
sed -n '/^FROM scratch$/,$p' docker/Dockerfile >"$context/Dockerfile"
grep -qxF "$copy_line" "$context/Dockerfile" ||
    { echo "$0: docker/Dockerfile's final stage no longer has the line: $copy_line" >&2; exit 1; }
sed -i "s|^${copy_line}\$|ADD rootfs.tar /|" "$context/Dockerfile"

echo "building $tag from $binary"
previous="$(docker image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)"
docker build --quiet --tag "$tag" "$context" >/dev/null
id="$(docker image inspect --format '{{.Id}}' "$tag")"
size="$(docker image inspect --format '{{.Size}}' "$tag")"
echo "built $tag: $((size / 1024 / 1024)) MiB ($id)"
# The image this one replaced, unless a container still uses it: each new binary would
# otherwise leave one behind.
if [ -n "$previous" ] && [ "$previous" != "$id" ]; then
    docker image rm "$previous" >/dev/null 2>&1 || true
fi
