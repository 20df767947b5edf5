#!/usr/bin/env bash
# Builds a local Node base image without any image registry:
#   Debian (debootstrap --variant=minbase) + the Node binary from the npm registry's
#   `node-linux-<arch>` package (what the `node` package downloads) + npm from the `npm` package,
# committed with buildah as localhost/switchyard-base:node<NODE_VERSION>.
# The Dockerfile builds on it with: --build-arg BASE=localhost/switchyard-base:node<NODE_VERSION>
#
# Cached: the debootstrap rootfs and the npm tarballs live in $SWITCHYARD_BASE_CACHE, and the
# image is not rebuilt when one with the same key (versions, suite, mirror, extra CA, this
# script) exists. Prints the image name as its last stdout line.
#
# Environment (all optional):
#   NODE_VERSION          Node release (default: the newest Node 26 "Lithium", the Active LTS
#                         since 2026-10-28, on the registry when this was written)
#   NPM_VERSION           npm release (default: npm 11, the line Node 26 ships)
#   DEBIAN_SUITE          default bookworm
#   DEBIAN_MIRROR         default: the Debian mirror in this machine's /etc/apt/sources.list*
#   SWITCHYARD_BASE_CACHE default /var/cache/switchyard-base
#   SWITCHYARD_BASE_EXTRA_CA  a PEM bundle the image should trust in addition to Node's own CAs
#                         (default: $NODE_EXTRA_CA_CERTS when set, e.g. a TLS-intercepting egress
#                         proxy's CA; without it `npm ci` inside the build cannot reach the registry)
#   STORAGE_DRIVER        buildah storage driver (default vfs, what works in this sandbox)
#   CONTAINERS_CONF       default: a file in the cache with `default_ulimits = []`
# Needs root, debootstrap, buildah, npm (to fetch the tarballs), tar.
set -euo pipefail

NODE_VERSION=${NODE_VERSION:-26.12.1}
NPM_VERSION=${NPM_VERSION:-11.21.2}
DEBIAN_SUITE=${DEBIAN_SUITE:-bookworm}
CACHE=${SWITCHYARD_BASE_CACHE:-/var/cache/switchyard-base}
STORAGE_DRIVER=${STORAGE_DRIVER:-vfs}
EXTRA_CA=${SWITCHYARD_BASE_EXTRA_CA-${NODE_EXTRA_CA_CERTS:-}}
IMAGE="localhost/switchyard-base:node${NODE_VERSION}"
started=$(date +%s)

log() { echo "build-base: $*" >&2; }
die() { log "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap and buildah's vfs storage need it)"
for cmd in debootstrap buildah npm tar sha256sum; do
  command -v "$cmd" >/dev/null || die "missing $cmd (apt-get install -y debootstrap buildah; npm comes with Node)"
done

case "$(uname -m)" in
  x86_64) NODE_ARCH=x64 DEB_ARCH=amd64 ;;
  aarch64) NODE_ARCH=arm64 DEB_ARCH=arm64 ;;
  *) die "unsupported architecture $(uname -m)" ;;
esac

# The Debian mirror this machine already uses (deb822 .sources or one-line format).
if [ -z "${DEBIAN_MIRROR:-}" ]; then
  DEBIAN_MIRROR=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
    grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v -- '-security' | head -n1 | tr -d ' ' || true)
  DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
fi

mkdir -p "$CACHE"
if [ -z "${CONTAINERS_CONF:-}" ]; then
  # The sandbox refuses podman/buildah's default rlimits.
  printf '[containers]\ndefault_ulimits = []\n' > "$CACHE/containers.conf"
  export CONTAINERS_CONF="$CACHE/containers.conf"
fi
bah() { buildah --storage-driver "$STORAGE_DRIVER" "$@"; }

# One build at a time (the test and a developer may both call this).
exec 9>"$CACHE/.lock"
flock 9

ca_sum=none
if [ -n "$EXTRA_CA" ]; then
  [ -r "$EXTRA_CA" ] || die "SWITCHYARD_BASE_EXTRA_CA=$EXTRA_CA is not readable"
  ca_sum=$(sha256sum "$EXTRA_CA" | cut -c1-16)
fi
script_sum=$(sha256sum "$0" | cut -c1-16)
KEY="node=$NODE_VERSION npm=$NPM_VERSION suite=$DEBIAN_SUITE arch=$DEB_ARCH mirror=$DEBIAN_MIRROR ca=$ca_sum script=$script_sum"

existing=$(bah inspect --type image --format '{{index .OCIv1.Config.Labels "org.switchyard.base.key"}}' "$IMAGE" 2>/dev/null || true)
if [ -n "$existing" ] && [ "$existing" = "$KEY" ]; then
  log "$IMAGE is up to date (cached; $KEY)"
  echo "$IMAGE"
  exit 0
fi
log "building $IMAGE ($KEY)"

# 1. Debian minbase rootfs, cached per suite/arch/mirror/package list. libatomic1: the Node
#    binaries of the 26 line link against libatomic.so.1 (the official images install it too).
DEBIAN_PACKAGES=libatomic1
mirror_sum=$(echo "$DEBIAN_MIRROR $DEBIAN_PACKAGES" | sha256sum | cut -c1-8)
ROOTFS_CACHE="$CACHE/rootfs-$DEBIAN_SUITE-$DEB_ARCH-$mirror_sum.tar"
if [ ! -s "$ROOTFS_CACHE" ]; then
  t0=$(date +%s)
  tmp_root=$(mktemp -d "$CACHE/debootstrap.XXXXXX")
  log "debootstrap --variant=minbase $DEBIAN_SUITE from $DEBIAN_MIRROR (a few minutes)"
  if ! debootstrap --variant=minbase --include="$DEBIAN_PACKAGES" --arch="$DEB_ARCH" "$DEBIAN_SUITE" "$tmp_root" "$DEBIAN_MIRROR" > "$CACHE/debootstrap.log" 2>&1; then
    tail -n 20 "$CACHE/debootstrap.log" >&2
    rm -rf "$tmp_root"
    die "debootstrap failed (log: $CACHE/debootstrap.log)"
  fi
  # Slim it the way the official -slim images are: no package lists, caches, docs, man pages.
  rm -rf "$tmp_root"/var/cache/apt/archives/*.deb "$tmp_root"/var/cache/apt/*.bin \
    "$tmp_root"/var/lib/apt/lists/* "$tmp_root"/var/log/* "$tmp_root"/tmp/* \
    "$tmp_root"/usr/share/doc/* "$tmp_root"/usr/share/man/* "$tmp_root"/usr/share/info/* \
    "$tmp_root"/usr/share/locale/* "$tmp_root"/etc/hostname
  : > "$tmp_root/etc/resolv.conf" # the runtime mounts its own
  # Don't keep what the slimming removed from coming back with later apt-get installs.
  cat > "$tmp_root/etc/dpkg/dpkg.cfg.d/01-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOF
  tar -C "$tmp_root" --numeric-owner -cf "$ROOTFS_CACHE.tmp" .
  mv "$ROOTFS_CACHE.tmp" "$ROOTFS_CACHE"
  rm -rf "$tmp_root"
  log "debootstrap done in $(( $(date +%s) - t0 ))s"
else
  log "debootstrap rootfs cached: $ROOTFS_CACHE"
fi

# 2. Node and npm tarballs from the npm registry (npm pack checks their integrity).
fetch() { # package@version -> path of the tarball in the cache
  local spec=$1 file
  file="$CACHE/npm/$(echo "${spec/@/-}").tgz"
  if [ ! -s "$file" ]; then
    mkdir -p "$CACHE/npm"
    log "npm pack $spec"
    (cd "$CACHE/npm" && npm pack --silent "$spec" >/dev/null) || die "npm pack $spec failed"
  fi
  [ -s "$file" ] || die "npm pack $spec did not produce $file"
  echo "$file"
}
node_tgz=$(fetch "node-linux-$NODE_ARCH@$NODE_VERSION")
npm_tgz=$(fetch "npm@$NPM_VERSION")

# 3. Assemble in a scratch working container and commit.
ctr=$(bah from --name "switchyard-base-build-$$" scratch)
cleanup() { bah rm "$ctr" >/dev/null 2>&1 || true; rm -rf "${stage:-}"; }
trap cleanup EXIT
mnt=$(bah mount "$ctr")
tar -C "$mnt" --numeric-owner -xf "$ROOTFS_CACHE"

stage=$(mktemp -d)
tar -C "$stage" -xzf "$node_tgz" package/bin/node package/LICENSE
install -m 0755 "$stage/package/bin/node" "$mnt/usr/local/bin/node"
mkdir -p "$mnt/usr/local/share/doc/node"
install -m 0644 "$stage/package/LICENSE" "$mnt/usr/local/share/doc/node/LICENSE"
mkdir -p "$mnt/usr/local/lib/node_modules/npm"
tar -C "$mnt/usr/local/lib/node_modules/npm" --strip-components=1 --no-same-owner -xzf "$npm_tgz"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$mnt/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$mnt/usr/local/bin/npx"
env_args=()
if [ -n "$EXTRA_CA" ]; then
  install -m 0644 "$EXTRA_CA" "$mnt/usr/local/share/ca-certificates-extra.pem"
  env_args+=(--env NODE_EXTRA_CA_CERTS=/usr/local/share/ca-certificates-extra.pem)
fi

# Smoke test inside the rootfs before committing.
got=$(env -u NODE_OPTIONS chroot "$mnt" /usr/local/bin/node -p 'process.version + " " + (process.release.lts || "current")')
npm_got=$(env -u NODE_OPTIONS chroot "$mnt" /usr/local/bin/node /usr/local/lib/node_modules/npm/bin/npm-cli.js --version)
log "inside: node $got, npm $npm_got"
[ "$got" != "${got#v$NODE_VERSION}" ] || die "unexpected node version in the image: $got"
bah umount "$ctr" >/dev/null

bah config \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env NODE_VERSION="$NODE_VERSION" \
  "${env_args[@]}" \
  --cmd '["node"]' \
  --os linux --arch "$DEB_ARCH" \
  --label org.switchyard.base.key="$KEY" \
  --label org.opencontainers.image.description="Debian $DEBIAN_SUITE minbase + Node $NODE_VERSION + npm $NPM_VERSION (local base, built without a registry)" \
  "$ctr"
bah commit --format docker --rm --quiet "$ctr" "$IMAGE" >/dev/null
ctr=""
size=$(bah images --format '{{.Size}}' "$IMAGE" | head -n1)
log "built $IMAGE ($size) in $(( $(date +%s) - started ))s"
echo "$IMAGE"
