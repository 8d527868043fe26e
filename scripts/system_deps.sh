#!/usr/bin/env bash
# System packages the test suite drives: Debian's Chromium for headless browser tests, and CJK fonts so Chinese
# pages render (not as boxes) in the screenshots the tests save.
# Installed with apt-get when missing and we are root; otherwise the browser tests skip with a reason.
gridfleet_missing=()
[ -x /usr/bin/chromium ] || gridfleet_missing+=(chromium)
[ -d /usr/share/fonts/opentype/noto ] || gridfleet_missing+=(fonts-noto-cjk)
if [ "${#gridfleet_missing[@]}" -gt 0 ] && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    echo "gridfleet: installing ${gridfleet_missing[*]} (apt-get) for browser tests" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${gridfleet_missing[@]}" \
        >/dev/null) >&2 || echo "gridfleet: ${gridfleet_missing[*]} install failed; browser tests will skip" >&2
fi
