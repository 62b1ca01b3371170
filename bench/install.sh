#!/bin/sh
# Installs the load generator and the servers ferry-bench compares ferry with (Debian 12).
# Then: cargo run --release -p ferry-bench
set -e
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
# A fresh machine has no package lists yet.
if ! apt-cache show wrk >/dev/null 2>&1; then $SUDO apt-get update; fi
$SUDO apt-get install -y wrk haproxy nginx-light passenger gunicorn openssl
