#!/bin/sh
# Runs tests/test_api (the public API, several images in one process) on a
# tiny random SDXL model with a TAESD, converted here from tests/models.
set -u
B="${STDCPU_BUILDDIR:-.}"
S="${STDCPU_SRCDIR:-.}"
W="${STDCPU_TEST_WRAPPER:-}"
T=$(mktemp -d "${TMPDIR:-/tmp}/stdcpu-api.XXXXXX")
trap 'rm -rf "$T"' EXIT
$W "$B/stdcpu-convert" -q --random "$S/tests/models/tiny_sdxl" -o "$T/sdxl.stdm" || { echo "convert failed"; exit 1; }
STDCPU_TEST_MODEL="$T/sdxl.stdm" $W "$B/tests/test_api"
