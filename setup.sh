#!/usr/bin/env bash
# Set up a machine for development and tests: the browser the page's test drives (Debian's chromium and
# chromium-driver, installed with apt-get when missing), then the package with everything the tests need.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver
  else
    echo "setup.sh: install chromium and chromium-driver (e.g. apt-get install chromium chromium-driver):" \
      "the web page's test needs them" >&2
  fi
fi
python3 -m pip install -q -e '.[dev]'
