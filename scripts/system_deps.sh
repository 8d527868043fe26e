#!/usr/bin/env bash
# System packages the test suite drives: Debian's Chromium for headless browser tests.
# Installed with apt-get when missing and we are root; otherwise the browser tests skip with a reason.
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    echo "gridfleet: installing chromium (apt-get) for browser tests" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) >&2 \
        || echo "gridfleet: chromium install failed; browser tests will skip" >&2
fi
