#!/usr/bin/env bash
# Make the data a preset needs available offline where possible.
# fmnist-mini / paper need Fashion-MNIST: the Debian package `dataset-fashion-mnist` provides it
# offline; otherwise torchvision downloads it into data/raw on first use (needs internet).
set -euo pipefail
preset="${1:-fmnist-mini}"
case "$preset" in
  digits-tiny) exit 0 ;;
esac
fm=/usr/share/datasets/fashion-mnist
if [ -f "$fm/train-images-idx3-ubyte.gz" ]; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo -n"
  echo "Installing Fashion-MNIST from the Debian package dataset-fashion-mnist ..." >&2
  if $sudo_cmd apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
     { $sudo_cmd apt-get update -q >/dev/null 2>&1 && $sudo_cmd apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1; }; then
    exit 0
  fi
  echo "apt-get could not install dataset-fashion-mnist; torchvision will try to download into data/raw." >&2
else
  echo "No apt-get: torchvision will download Fashion-MNIST into data/raw on first use." >&2
fi
