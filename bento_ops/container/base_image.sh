#!/usr/bin/env bash
# Build (once) a local Debian bookworm base image with Python 3.11, venv and pip, for `bentoml containerize`
# on hosts that cannot pull from an image registry. Users with a registry keep BentoML's default base image.
#
#   bento_ops/container/base_image.sh            # prints the image name; builds it only when podman lacks it
#   bento_ops/container/base_image.sh --force    # rebuild
#
# Environment: HAR_BASE_IMAGE (image name, default localhost/har-clip-base:bookworm-py311), DEBIAN_MIRROR,
# HAR_CONTAINER_CACHE (debootstrap's .deb cache, default ~/.cache/har-clip/debootstrap), EXTRA_CA_DIR (extra CA
# certificates to trust inside the image, default /usr/local/share/ca-certificates: what a TLS-intercepting
# proxy needs, and what `update-ca-certificates` added on this host).
# Needs root, debootstrap and podman. Takes about 70 s and 200 MB the first time.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$HERE/containers.conf}"
IMAGE="${HAR_BASE_IMAGE:-localhost/har-clip-base:bookworm-py311}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CACHE="${HAR_CONTAINER_CACHE:-$HOME/.cache/har-clip/debootstrap}"
EXTRA_CA_DIR="${EXTRA_CA_DIR:-/usr/local/share/ca-certificates}"
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

if [[ "${1:-}" != "--force" ]] && podman image exists "$IMAGE"; then
    echo "$IMAGE"
    exit 0
fi

for tool in debootstrap podman; do
    command -v "$tool" >/dev/null || { echo "base_image.sh: $tool is not installed" >&2; exit 1; }
done
[[ "$(id -u)" == 0 ]] || { echo "base_image.sh: debootstrap needs root" >&2; exit 1; }

ROOTFS="$(mktemp -d /var/tmp/har-clip-rootfs.XXXXXX)"
trap 'rm -rf "$ROOTFS"' EXIT
mkdir -p "$CACHE"
echo "base_image.sh: debootstrap bookworm into $ROOTFS (packages cached in $CACHE)" >&2
debootstrap --variant=minbase --cache-dir="$CACHE" \
    --include=python3,python3-venv,python3-pip,ca-certificates \
    bookworm "$ROOTFS" "$MIRROR" >&2

if compgen -G "$EXTRA_CA_DIR/*.crt" >/dev/null; then
    mkdir -p "$ROOTFS/usr/local/share/ca-certificates"
    cp "$EXTRA_CA_DIR"/*.crt "$ROOTFS/usr/local/share/ca-certificates/"
    chroot "$ROOTFS" update-ca-certificates >&2
fi
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*

# Debian's system Python refuses `pip install` without PIP_BREAK_SYSTEM_PACKAGES (BentoML's Dockerfile runs
# `pip install uv`); the CA variables make pip, uv and requests trust the bundle that now holds the extra CAs.
tar -C "$ROOTFS" -c . | podman import \
    --change "ENV SSL_CERT_FILE=$CA_BUNDLE" \
    --change "ENV PIP_CERT=$CA_BUNDLE" \
    --change "ENV REQUESTS_CA_BUNDLE=$CA_BUNDLE" \
    --change "ENV PIP_BREAK_SYSTEM_PACKAGES=1" \
    --change 'CMD ["/bin/bash"]' \
    - "$IMAGE" >&2
echo "$IMAGE"
