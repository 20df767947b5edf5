#!/usr/bin/env bash
# Validates docker/compose.mcp-network.yml without a container engine: `docker-compose config`
# (Debian's docker-compose 1.29; no daemon needed) checks it against the Compose schema and
# prints the normalized file on stdout; when podman-compose is present, a `--dry-run up` shows
# it can turn the file into podman commands (nothing is run). Installs docker-compose with apt
# when missing (root on Debian). Exit 0 when valid.
set -euo pipefail
cd "$(dirname "$0")/../.."
FILE=docker/compose.mcp-network.yml

if ! command -v docker-compose >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "check-compose: installing docker-compose with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null && apt-get install -y -qq docker-compose >/dev/null
  else
    echo "check-compose: needs docker-compose (apt-get install -y docker-compose, as root)" >&2
    exit 1
  fi
fi

docker-compose -p mcp-network -f "$FILE" config

if command -v podman-compose >/dev/null; then
  # podman-compose 1.0 has no `config`; a dry run parses the file and prints the podman commands.
  if ! out=$(timeout 60 podman-compose --dry-run -p mcp-network -f "$FILE" up -d 2>&1); then
    echo "$out" >&2
    echo "check-compose: podman-compose could not read $FILE" >&2
    exit 1
  fi
  echo "check-compose: podman-compose dry run ok ($(grep -c '^podman run' <<<"$out") containers)" >&2
fi
