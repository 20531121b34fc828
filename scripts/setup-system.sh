#!/usr/bin/env bash
# Installs the Debian packages the tool and its tests need, when they are missing:
#   docker.io (the Docker engine and client), busybox-static (root filesystem of the test images),
#   git, openssl (service-account keys of the test control plane), chromium and chromium-driver
#   (the status page's browser tests drive Debian's headless Chromium through its chromedriver).
# Idempotent and quiet when everything is present. Needs root (or sudo) only when installing.
set -euo pipefail

need=()
for pkg in docker.io busybox-static git openssl ca-certificates chromium chromium-driver; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-system: missing packages (${need[*]}) and no apt-get: install them with your package manager" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "setup-system: installing ${need[*]} needs root" >&2; exit 1; }
  sudo="sudo"
fi
echo "setup-system: installing ${need[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
