#!/bin/sh
# stdcpu-convert / stdcpu-info command lines: usage errors, atomic output,
# quiet mode, progress lines, info and --verify. Needs ../shared (skips).
set -u
B=${STDCPU_BUILDDIR:-.}
W=${STDCPU_TEST_WRAPPER:-}
G=${STDCPU_SHARED:-}/golden/models
[ -d "$G/sdxl_tiny" ] || { echo "golden models absent: skip"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/stdcpu-cli-XXXXXX")
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# usage errors: exit 2, nothing written
$W "$B/stdcpu-convert" >/dev/null 2>&1; [ $? -eq 2 ] || fail "no arguments should exit 2"
$W "$B/stdcpu-convert" --base "$G/sdxl_tiny" --quant int4 -o "$T/x.stdm" 2>/dev/null; [ $? -eq 2 ] || fail "bad --quant"
$W "$B/stdcpu-convert" --help | grep -q -- "--keep-f16" || fail "--help"

# a failing conversion leaves no file (not even a temporary one)
$W "$B/stdcpu-convert" --base "$G/sdxl_tiny" --lora "$T/missing.safetensors" -o "$T/x.stdm" 2>"$T/err"
[ $? -eq 1 ] || fail "missing LoRA should exit 1"
grep -q "missing.safetensors" "$T/err" || fail "error names the file: $(cat "$T/err")"
[ -z "$(ls "$T" | grep stdm)" ] || fail "output left behind: $(ls "$T")"

# progress: plain lines (stderr is not a terminal) and a summary; -q is silent
$W "$B/stdcpu-convert" --base "$G/sd15_tiny" --tokenizer "$STDCPU_SHARED/clip/bpe_simple_vocab_16e6.txt.gz" \
    -o "$T/sd15.stdm" 2>"$T/log" || fail "convert sd15: $(cat "$T/log")"
grep -q "^convert: 100/100" "$T/log" || fail "no progress lines: $(cat "$T/log")"
grep -q "^unet .*params" "$T/log" || fail "no per-component summary"
$W "$B/stdcpu-convert" -q --base "$G/sd15_tiny" -o "$T/q.stdm" 2>"$T/qlog" || fail "convert -q"
[ ! -s "$T/qlog" ] || fail "-q printed: $(cat "$T/qlog")"

# a diffusers folder with tokenizer folders and an fp16-variant weight file
mkdir -p "$T/pipe/tokenizer" "$T/pipe/tokenizer_2" "$T/pipe/unet"
ln -s "$G/sd15_tiny/vae" "$G/sd15_tiny/text_encoder" "$G/sd15_tiny/scheduler" "$T/pipe/"
cp "$G/sd15_tiny/unet/config.json" "$T/pipe/unet/"
ln -s "$G/sd15_tiny/unet/diffusion_pytorch_model.safetensors" "$T/pipe/unet/diffusion_pytorch_model.fp16.safetensors"
printf '{"a</w>": 0}' >"$T/pipe/tokenizer/vocab.json"
printf '#version: 0.2\na b\n' >"$T/pipe/tokenizer/merges.txt"
cp "$T/pipe/tokenizer/vocab.json" "$T/pipe/tokenizer/merges.txt" "$T/pipe/tokenizer_2/"
$W "$B/stdcpu-convert" -q --base "$T/pipe" -o "$T/pipe.stdm" || fail "convert a folder with tokenizers"
$W "$B/stdcpu-info" "$T/pipe.stdm" >"$T/pinfo" || fail "info pipe"
grep -q "^tokenizer .*merges.txt" "$T/pinfo" || fail "tokenizer blobs: $(cat "$T/pinfo")"
grep -q "^tokenizer_2 .*vocab.json" "$T/pinfo" || fail "tokenizer_2 blobs"
grep -q "^unet .*UNet2DConditionModel" "$T/pinfo" || fail "fp16-variant unet weights not found"

# info: components, classes, tokenizer blob, dtype totals, verify
$W "$B/stdcpu-info" --verify "$T/sd15.stdm" >"$T/info" || fail "info"
grep -q "UNet2DConditionModel" "$T/info" || fail "info lacks the unet class"
grep -q "bpe_simple_vocab_16e6.txt.gz" "$T/info" || fail "info lacks the tokenizer"
grep -q "^verify: *ok" "$T/info" || fail "verify line"
$W "$B/stdcpu-info" --config vae "$T/sd15.stdm" | grep -q "AutoencoderKL" || fail "--config vae"
$W "$B/stdcpu-info" --tensors "$T/sd15.stdm" | grep -q "^i8 .* unet\." || fail "--tensors lists int8 unet tensors"

# a flipped weight byte is found by --verify only; a flipped header byte at open
cp "$T/sd15.stdm" "$T/bad.stdm"
OFF=$($W "$B/stdcpu-info" --tensors "$T/sd15.stdm" | grep " unet.conv_out.weight @" | sed 's/.*@//')
[ -n "$OFF" ] || fail "no offset for unet.conv_out.weight"
printf '\377' | dd of="$T/bad.stdm" bs=1 seek=$((OFF + 3)) conv=notrunc 2>/dev/null
$W "$B/stdcpu-info" "$T/bad.stdm" >/dev/null || fail "open should not read weights"
$W "$B/stdcpu-info" --verify "$T/bad.stdm" >/dev/null 2>"$T/verr" && fail "--verify missed a corrupt byte"
grep -q "checksum" "$T/verr" || fail "verify message: $(cat "$T/verr")"
printf 'X' | dd of="$T/bad.stdm" bs=1 seek=20 conv=notrunc 2>/dev/null
$W "$B/stdcpu-info" "$T/bad.stdm" >/dev/null 2>&1 && fail "corrupt header accepted"
exit 0
