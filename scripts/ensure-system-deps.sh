#!/usr/bin/env bash
# Installs the Debian packages the tests drive for real, when missing: chromium (stats page
# browser test), haproxy (CSV header fixture check; the PROXY protocol peer on both sides),
# socat (drives the runtime API socket), buildah + podman + debootstrap (the container test),
# openssl + curl (TLS tests). Runs as root on a Debian machine; elsewhere it says what is missing.
set -u
need=()
command -v chromium >/dev/null || need+=(chromium)
command -v haproxy >/dev/null || need+=(haproxy)
command -v buildah >/dev/null || need+=(buildah)
command -v podman >/dev/null || need+=(podman)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v socat >/dev/null || need+=(socat)
# TLS tests make their certificates with openssl and drive curl as a real https client.
command -v openssl >/dev/null || need+=(openssl)
command -v curl >/dev/null || need+=(curl)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "missing system packages: ${need[*]} (install them with apt-get as root)" >&2
  exit 1
fi
echo "installing system packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null && apt-get install -y -qq "${need[@]}" >/dev/null || { echo "apt-get install ${need[*]} failed" >&2; exit 1; }
