#!/bin/sh
# SPDX-License-Identifier: MIT
# Regenerate the build system: ./autogen.sh && ./configure && make
set -e
cd "$(dirname "$0")"
mkdir -p m4 build-aux
autoreconf --install --force --warnings=all >/dev/null
# The TAP driver that runs the Criterion binaries under `make check`.
cp "$(automake --print-libdir)/tap-driver.sh" build-aux/tap-driver.sh
