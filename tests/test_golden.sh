#!/bin/sh
# Runs stdcpu-golden on every shared golden case whose kind this build
# supports (dispatch by the case's kind, never by its name), in f32 and int8
# precision, with the scalar kernels and with the best ISA of this machine.
# Skips (77) when ../shared is absent. Cases of kinds not implemented yet are
# listed, not run.
set -u
golden="${STDCPU_SHARED:-}/golden"
[ -f "$golden/README.md" ] || { echo "no shared golden data: skip"; exit 77; }
bin="${STDCPU_BUILDDIR:-.}/stdcpu-golden"
run() { ${STDCPU_TEST_WRAPPER:-} "$bin" "$@"; }

kinds=$(run --kinds) || { echo "stdcpu-golden --kinds failed"; exit 1; }
supported=""
for dir in "$golden"/*/; do
  dir=${dir%/}
  [ -f "$dir/case.json" ] || continue
  kind=$(sed -n 's/^ *"kind": *"\([^"]*\)".*/\1/p' "$dir/case.json" | head -1)
  if printf '%s\n' "$kinds" | grep -qx "$kind"; then
    supported="$supported $dir"
  else
    echo "not run (kind $kind not implemented yet): $(basename "$dir")"
  fi
done
[ -n "$supported" ] || { echo "no supported case"; exit 1; }

status=0
for precision in f32 int8; do
  # shellcheck disable=SC2086
  STDCPU_ISA=scalar run --precision $precision $supported || status=1
  # shellcheck disable=SC2086
  run --precision $precision $supported || status=1
done
exit $status
