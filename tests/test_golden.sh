#!/bin/sh
# Runs stdcpu-golden on every shared golden case whose kind this build
# supports (dispatch by the case's kind, never by its name), in f32 and int8
# precision, with the scalar kernels and with the best ISA of this machine.
# Skips (77) when ../shared is absent. Cases of kinds not implemented yet are
# listed, not run.
#   STDCPU_GOLDEN_ISAS   "scalar best" (default) or "best": which kernel tables
#   STDCPU_GOLDEN_HEAVY  cases run only once (f32, best ISA): CI sets it
#                        under qemu for the real-weights taef2 case, whose
#                        512x512 run takes minutes when emulated (the
#                        kernels themselves are tested per ISA elsewhere).
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

isas="${STDCPU_GOLDEN_ISAS:-scalar best}"
heavy="${STDCPU_GOLDEN_HEAVY:-}"
light=""
once=""
for dir in $supported; do
  case " $heavy " in
    *" $(basename "$dir") "*) once="$once $dir" ;;
    *) light="$light $dir" ;;
  esac
done

status=0
for precision in f32 int8; do
  for isa in $isas; do
    [ -n "$light" ] || continue
    if [ "$isa" = scalar ]; then
      # shellcheck disable=SC2086
      STDCPU_ISA=scalar run --precision $precision $light || status=1
    else
      # shellcheck disable=SC2086
      run --precision $precision $light || status=1
    fi
  done
done
if [ -n "$once" ]; then
  # shellcheck disable=SC2086
  run --precision f32 $once || status=1
fi
exit $status
