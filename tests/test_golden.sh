#!/bin/sh
# Runs stdcpu-golden on the shared golden cases whose kinds are implemented,
# with the scalar kernels and with the best ISA of this machine.
# Skips (77) when ../shared is absent.
set -u
golden="${STDCPU_SHARED:-}/golden"
[ -f "$golden/README.md" ] || { echo "no shared golden data: skip"; exit 77; }
bin="${STDCPU_BUILDDIR:-.}/stdcpu-golden"
run() { ${STDCPU_TEST_WRAPPER:-} "$bin" "$@"; }

# Cases by kind as they land (f32 precision; int8 where the kind states a bound).
cases_f32="schedulers"

status=0
for isa in scalar best; do
  for c in $cases_f32; do
    if [ "$isa" = scalar ]; then
      STDCPU_ISA=scalar run --precision f32 "$golden/$c" || status=1
    else
      run --precision f32 "$golden/$c" || status=1
    fi
  done
done
exit $status
