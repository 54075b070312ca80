#!/usr/bin/env bash
# Make the data a preset needs available offline where possible.
# fmnist-mini / paper need Fashion-MNIST: the Debian package `dataset-fashion-mnist` provides it
# offline; otherwise torchvision downloads it into data/raw on first use (needs internet).
# apt-get waits up to DYNLOSS_APT_LOCK_TIMEOUT seconds (default 300) for another package manager's
# lock; when it still fails, the tail of its own output is shown.
# DYNLOSS_FASHION_MNIST_DIR: where the package puts the files (default /usr/share/datasets/fashion-mnist).
set -euo pipefail
preset="${1:-fmnist-mini}"
case "$preset" in
  digits-tiny) exit 0 ;;
esac
fm="${DYNLOSS_FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}"
if [ -f "$fm/train-images-idx3-ubyte.gz" ]; then
  exit 0
fi
lock_timeout="${DYNLOSS_APT_LOCK_TIMEOUT:-300}"
case "$lock_timeout" in
  ''|*[!0-9]*) echo "ensure_data.sh: DYNLOSS_APT_LOCK_TIMEOUT must be a whole number of seconds, got '$lock_timeout'" >&2
               exit 2 ;;
esac
if command -v apt-get >/dev/null 2>&1; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo -n"
  log="$(mktemp)"
  trap 'rm -f "$log"' EXIT
  apt() { $sudo_cmd apt-get -o "DPkg::Lock::Timeout=$lock_timeout" "$@" >>"$log" 2>&1; }
  echo "Installing Fashion-MNIST from the Debian package dataset-fashion-mnist (waiting up to ${lock_timeout}s for the package lock) ..." >&2
  if apt install -y -q dataset-fashion-mnist || { apt update -q && apt install -y -q dataset-fashion-mnist; }; then
    exit 0
  fi
  echo "apt-get could not install dataset-fashion-mnist; its last messages:" >&2
  tail -n 15 "$log" | sed 's/^/  apt-get: /' >&2
  echo "torchvision will try to download Fashion-MNIST into data/raw." >&2
else
  echo "No apt-get: torchvision will download Fashion-MNIST into data/raw on first use." >&2
fi
