#!/bin/sh
# The stdcpu command end to end on tiny random-weight models converted from
# tests/models (real layouts, real 49408-token CLIP vocabulary): inputs of
# every format, odd sizes and aspects, gray and RGBA; PNG and WebP out; seed
# determinism across thread counts; every error path with its exit code and
# no output file left behind; the input never modified.
set -u
B="${STDCPU_BUILDDIR:-.}"
S="${STDCPU_SRCDIR:-.}"
W="${STDCPU_TEST_WRAPPER:-}"
T=$(mktemp -d "${TMPDIR:-/tmp}/stdcpu-cli.XXXXXX")
trap 'rm -rf "$T"' EXIT
fails=0
pass=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fails=$((fails + 1)); echo "FAIL: $*"; }

stdcpu() { $W "$B/stdcpu" "$@"; }
noout() { if [ -e "$1" ]; then bad "output $1 left behind"; else ok "no output left behind"; fi; }
convert() { $W "$B/stdcpu-convert" "$@"; }
mkimg() { $W "$B/tests/mkimg" "$@"; }

# expect CODE DESCRIPTION -- command...
expect() {
  code=$1; shift; what=$1; shift
  "$@" >"$T/out.log" 2>"$T/err.log"; rc=$?
  if [ "$rc" = "$code" ]; then ok "$what (exit $rc)"; else bad "$what: exit $rc, expected $code: $(cat "$T/err.log")"; fi
}

# --- models -----------------------------------------------------------------
vocab="${STDCPU_SHARED:-}/clip/bpe_simple_vocab_16e6.txt.gz"
tok_opt=""
[ -f "$vocab" ] && tok_opt="--tokenizer $vocab"
# shellcheck disable=SC2086
convert -q --random "$S/tests/models/tiny_sdxl" $tok_opt -o "$T/sdxl.stdm" || { echo "convert failed"; exit 1; }
convert -q --random "$S/tests/models/tiny_sdxl" -o "$T/sdxl_notok.stdm" || { echo "convert failed"; exit 1; }
# shellcheck disable=SC2086
convert -q --random "$S/tests/models/tiny_sd15" $tok_opt -o "$T/sd15.stdm" || { echo "convert failed"; exit 1; }
# The tiny SDXL UNet has 8 cross-attention layers of 64 channels (X = 96);
# its image encoder (tests/models/tiny_sdxl/image_encoder) projects to 24.
$W "$B/tests/mk_ip_adapter" "$T/ip.safetensors" 96 24 64 64 64 64 64 64 64 64 || { echo "mk_ip_adapter failed"; exit 1; }
# shellcheck disable=SC2086
convert -q --random "$S/tests/models/tiny_sdxl" $tok_opt --ip-adapter "$T/ip.safetensors" -o "$T/sdxl_ip.stdm" ||
  { echo "convert with IP-Adapter failed"; exit 1; }
$W "$B/tests/mk_ip_adapter" "$T/ip_bad.safetensors" 96 24 64 64 64 || exit 1
M="$T/sdxl.stdm"
prompt_opt=""
[ -n "$tok_opt" ] && prompt_opt="Stick figure abstract nostalgic style."

run() { stdcpu -q -m "$M" --size 128 --seed 7 "$@"; }

# --- inputs of every kind ---------------------------------------------------
mkimg rgb 97 61 "$T/rgb.png" && mkimg gray 50 70 "$T/gray.png" && mkimg gray16 40 33 "$T/g16.png" &&
  mkimg rgba 64 64 "$T/rgba.png" && mkimg palette 33 90 "$T/pal.png" || { echo "mkimg failed"; exit 1; }
for f in rgb gray g16 rgba pal; do
  in="$T/$f.png"
  sum_before=$(cksum < "$in")
  expect 0 "stylize $f.png" run ${prompt_opt:+-p "$prompt_opt"} "$in" "$T/$f-out.png"
  [ "$(mkimg info "$in")" = "$(mkimg info "$T/$f-out.png" 2>/dev/null)" ] && ok "$f: output has the input's size" ||
    bad "$f: output size $(mkimg info "$T/$f-out.png" 2>&1) != input $(mkimg info "$in")"
  [ "$(cksum < "$in")" = "$sum_before" ] && ok "$f: input untouched" || bad "$f: input modified"
done
expect 0 "WebP output" run "$T/rgb.png" "$T/rgb-out.webp"
expect 0 "WebP input" run "$T/rgb-out.webp" "$T/from-webp.png"
jpg="${STDCPU_SHARED:-}/data/styles/starry_night.jpg"
if [ -f "$jpg" ] && stdcpu --version >/dev/null; then
  if grep -q '^#define HAVE_JPEG 1' "$B/config.h" 2>/dev/null; then
    expect 0 "JPEG input (real photo)" run "$jpg" "$T/jpg-out.png"
  fi
fi
expect 0 "SD1.5 / LCM model, no guidance" stdcpu -q -m "$T/sd15.stdm" --size 128 --seed 3 "$T/rgb.png" "$T/sd15.png"
expect 0 "portrait, explicit working size, f32" run --width 64 --height 128 --precision f32 "$T/pal.png" "$T/pal-f32.png"

# --- style from an example image (IP-Adapter, InstantStyle) ---------------
IP="$T/sdxl_ip.stdm"
expect 0 "style image (RGBA PNG, any size), InstantStyle" stdcpu -q -m "$IP" --size 128 --seed 7 --style-image "$T/rgba.png" "$T/rgb.png" "$T/st1.png"
expect 0 "style image as WebP, all blocks, scale 0.5" stdcpu -q -m "$IP" --size 128 --seed 7 --style-image "$T/rgb-out.webp" --style-blocks all --style-scale 0.5 "$T/rgb.png" "$T/st2.png"
expect 0 "same seed without a style image" stdcpu -q -m "$IP" --size 128 --seed 7 "$T/rgb.png" "$T/st0.png"
cmp -s "$T/st0.png" "$T/st1.png" && bad "the style image changed nothing" || ok "the style image changes the result"
[ -n "$prompt_opt" ] && expect 0 "text and image style together" stdcpu -q -m "$IP" --size 128 -p "$prompt_opt" --style-image "$T/pal.png" "$T/rgb.png" "$T/st3.png"
expect 4 "unreadable style image" stdcpu -q -m "$IP" --size 128 --style-image "$T/junk.png" "$T/rgb.png" "$T/st4.png"; noout "$T/st4.png"
expect 2 "bad --style-blocks" stdcpu -q -m "$IP" --style-blocks some "$T/rgb.png" "$T/st5.png"
# shellcheck disable=SC2086
convert -q --random "$S/tests/models/tiny_sdxl" --ip-adapter "$T/ip_bad.safetensors" -o "$T/bad_ip.stdm" 2>"$T/err.log" ||
  true
# A mismatched adapter (3 layers for a UNet with 8) is refused when the model is opened (or converted).
if [ -f "$T/bad_ip.stdm" ]; then
  expect 3 "IP-Adapter that does not fit the UNet" stdcpu -q -m "$T/bad_ip.stdm" --size 128 "$T/rgb.png" "$T/st6.png"
else
  ok "IP-Adapter that does not fit the UNet refused by the converter"
fi

# --- decoders: full VAE (default) and the bundled tiny one -----------------
expect 0 "tiny decoder (TAESD)" run --decoder tiny "$T/rgb.png" "$T/tiny.png"
cmp -s "$T/tiny.png" "$T/rgb-out.png" && bad "tiny decoder gave the VAE's image" || ok "tiny decoder decodes differently"
expect 6 "tiny decoder missing from the model" stdcpu -q -m "$T/sd15.stdm" --decoder tiny "$T/rgb.png" "$T/e15.png"
noout "$T/e15.png"
expect 2 "bad --decoder" run --decoder huge "$T/rgb.png" "$T/e16.png"

# --- settings stored in the PNG --------------------------------------------
if grep -a -q "Seed: 7" "$T/rgb-out.png" && grep -a -q "parameters" "$T/rgb-out.png"; then
  ok "PNG carries the settings (parameters chunk with the seed)"
else
  bad "no parameters chunk with the seed"
fi

# --- determinism: same seed, any thread count ------------------------------
STDCPU_ISA=scalar run --precision f32 --threads 1 "$T/rgb.png" "$T/d1.png" &&
  STDCPU_ISA=scalar run --precision f32 --threads 3 "$T/rgb.png" "$T/d3.png"
cmp -s "$T/d1.png" "$T/d3.png" && ok "f32 scalar: bit-identical with 1 and 3 threads" || bad "f32 scalar differs across threads"
run --threads 1 "$T/rgb.png" "$T/i1.png" && run --threads 2 "$T/rgb.png" "$T/i2.png"
cmp -s "$T/i1.png" "$T/i2.png" && ok "int8 best ISA: identical with 1 and 2 threads" || bad "int8 differs across threads"
run --seed 8 "$T/rgb.png" "$T/s8.png"
cmp -s "$T/i1.png" "$T/s8.png" && bad "seeds 7 and 8 gave the same image" || ok "another seed gives another image"

# --- errors: exit code, one line, no output left ----------------------------
expect 2 "bad --strength" run --strength 1.5 "$T/rgb.png" "$T/e1.png"; noout "$T/e1.png"
expect 2 "bad --steps" run --steps x "$T/rgb.png" "$T/e2.png"; noout "$T/e2.png"
expect 2 "unknown option" run --frobnicate "$T/rgb.png" "$T/e3.png"; noout "$T/e3.png"
expect 2 "unsupported output format" run "$T/rgb.png" "$T/e4.jpg"; noout "$T/e4.jpg"
expect 2 "missing arguments" stdcpu -m "$M"
expect 2 "output is the input" run "$T/rgb.png" "$T/rgb.png"
expect 3 "no model anywhere" env -u STDCPU_MODEL -u XDG_DATA_HOME HOME="$T/nohome" $W "$B/stdcpu" -q "$T/rgb.png" "$T/e5.png"
grep -q "make model" "$T/err.log" && ok "no-model message says how to get one" || bad "no-model message: $(cat "$T/err.log")"
noout "$T/e5.png"
expect 3 "model file missing" stdcpu -q -m "$T/none.stdm" "$T/rgb.png" "$T/e6.png"; noout "$T/e6.png"
printf 'not a model' > "$T/junk.stdm"
expect 3 "model file corrupt" stdcpu -q -m "$T/junk.stdm" "$T/rgb.png" "$T/e7.png"; noout "$T/e7.png"
expect 4 "input missing" run "$T/missing.png" "$T/e8.png"; noout "$T/e8.png"
printf 'garbage' > "$T/junk.png"
expect 4 "input corrupt" run "$T/junk.png" "$T/e9.png"; noout "$T/e9.png"
expect 4 "input is a folder" run "$T" "$T/e10.png"; noout "$T/e10.png"
expect 5 "output folder missing" run "$T/rgb.png" "$T/nodir/e11.png"
expect 6 "style image but no IP-Adapter" run --style-image "$T/rgba.png" "$T/rgb.png" "$T/e12.png"; noout "$T/e12.png"
expect 6 "text prompt but no tokenizer" stdcpu -q -m "$T/sdxl_notok.stdm" --size 128 -p "a cat" "$T/rgb.png" "$T/e13.png"
noout "$T/e13.png"
expect 0 "no tokenizer, empty prompt" stdcpu -q -m "$T/sdxl_notok.stdm" --size 128 "$T/rgb.png" "$T/e14.png"
lines=$(wc -l < "$T/err.log")
expect 2 "bad STDCPU_ISA" env STDCPU_ISA=sse9 $W "$B/stdcpu" --version
[ "$(wc -l < "$T/err.log")" = 1 ] && ok "errors are one line" || bad "error is not one line: $(cat "$T/err.log")"
: "$lines"
STDCPU_ISA=scalar stdcpu --version | grep -q "active isa: scalar" && ok "STDCPU_ISA=scalar caps the ISA" ||
  bad "STDCPU_ISA=scalar not applied"

echo "cli: $pass passed, $fails failed"
[ "$fails" = 0 ]
