#!/bin/sh
# Installs the load generator and the servers ferry-bench compares ferry with (Debian 12),
# and the bench's own Python virtual environment, bench/.venv: Granian, uWSGI (pyuwsgi),
# gunicorn and Flask from PyPI, plus py-spy for profiling the WSGI loader.
# Then: cargo run --release -p ferry-bench
set -e
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
# A fresh machine has no package lists yet.
if ! apt-cache show wrk >/dev/null 2>&1; then $SUDO apt-get update; fi
$SUDO apt-get install -y wrk haproxy nginx-light passenger openssl python3-venv
cd "$(dirname "$0")"
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check granian pyuwsgi gunicorn flask py-spy
