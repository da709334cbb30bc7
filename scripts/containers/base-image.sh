#!/usr/bin/env bash
# Make a local stand-in for python:3.11-slim-bookworm with debootstrap, for machines that reach
# Debian's mirror but no container registry (CI here). Debian bookworm's python3 is 3.11.
#
#   scripts/containers/base-image.sh [IMAGE] [CACHE_TARBALL]
#
# The root filesystem is cached as a tarball (default .smoke/cache/, gitignored), so a second run
# only imports it. The Dockerfiles create their venv with `python3 -m venv`, which works both here
# (/usr/bin/python3) and on the official image (/usr/local/bin/python3).
set -euo pipefail

image=${1:-localhost/python:3.11-slim-bookworm}
tarball=${2:-.smoke/cache/python-3.11-slim-bookworm.tar}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
podman=(podman ${PODMAN_GLOBAL_OPTS:-})

if "${podman[@]}" image exists "$image"; then
    echo "base image $image already present"
    exit 0
fi

if [[ ! -s "$tarball" ]]; then
    command -v debootstrap >/dev/null || { echo "error: debootstrap not found (apt-get install debootstrap)" >&2; exit 1; }
    rootfs=$(mktemp -d)
    trap 'rm -rf "$rootfs"' EXIT
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 \
        || { tail -20 "$rootfs.log" >&2; exit 1; }
    rm -f "$rootfs.log"
    # Same diet as the official slim image: no package caches, lists, docs or man pages.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
        "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
        "$rootfs"/var/log/*.log "$rootfs"/var/cache/debconf/*-old
    mkdir -p "$(dirname "$tarball")"
    tar --numeric-owner -C "$rootfs" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
fi

"${podman[@]}" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    "$tarball" "$image" >/dev/null
echo "base image $image imported from $tarball"
