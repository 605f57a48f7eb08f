#!/bin/sh
# tools/stdcpu-fetch-model: argument handling, the URLs and conversion it
# plans (--dry-run), and the offline path: a clear error within seconds and
# no file left behind. (The download itself needs the internet.)
set -u
B="${STDCPU_BUILDDIR:-.}"
F="$B/tools/stdcpu-fetch-model"
T=$(mktemp -d "${TMPDIR:-/tmp}/stdcpu-fetch.XXXXXX")
trap 'rm -rf "$T"' EXIT
fails=0; pass=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fails=$((fails + 1)); echo "FAIL: $*"; }
command -v curl >/dev/null 2>&1 || { echo "curl not installed: skip"; exit 77; }

sh "$F" --help > "$T/help" 2>&1 && grep -q "sdxl-std" "$T/help" && ok "--help" || bad "--help"
sh "$F" --bogus > /dev/null 2>&1; [ $? = 2 ] && ok "unknown argument exits 2" || bad "unknown argument"
sh "$F" --recipe nope > "$T/e" 2>&1; [ $? = 2 ] && grep -q "unknown recipe" "$T/e" && ok "bad recipe" || bad "bad recipe"
sh "$F" --recipe > /dev/null 2>&1; [ $? = 1 ] && ok "missing value" || bad "missing value"

sh "$F" --dry-run --dest "$T/dl" --out "$T/m.stdm" > "$T/plan" 2>&1 || bad "dry run failed"
grep -q "stable-diffusion-xl-base-1.0/resolve/main/unet/diffusion_pytorch_model.fp16.safetensors" "$T/plan" &&
  grep -q "Single-Trajectory-Distillation/resolve/main/std_sdxl_i2i_eta0.75.safetensors" "$T/plan" &&
  grep -q "taesdxl" "$T/plan" && grep -q "ip-adapter_sdxl_vit-h.safetensors" "$T/plan" &&
  grep -q "would run: .*--lora .*--taesd .*--ip-adapter .*--image-encoder .*-o $T/m.stdm" "$T/plan" &&
  ok "sdxl-std plan: base, STD LoRA, TAESDXL, IP-Adapter, conversion" || bad "sdxl-std plan: $(cat "$T/plan")"
sh "$F" --dry-run --recipe sd15-lcm --dest "$T/dl" > "$T/plan2" 2>&1 &&
  grep -q "lcm-lora-sdv1-5" "$T/plan2" && grep -q "madebyollin/taesd/" "$T/plan2" && ok "sd15-lcm plan" || bad "sd15-lcm plan"
[ ! -e "$T/dl" ] && ok "dry run writes nothing" || bad "dry run wrote files"

start=$(date +%s)
STDCPU_HUB=http://127.0.0.1:9 sh "$F" --dest "$T/dl" --out "$T/m.stdm" > "$T/off" 2>&1; rc=$?
took=$(( $(date +%s) - start ))
[ "$rc" = 1 ] && grep -q "cannot reach" "$T/off" && ok "offline: clear error (exit 1)" || bad "offline: rc $rc: $(cat "$T/off")"
[ "$took" -le 15 ] && ok "offline: fails fast (${took}s)" || bad "offline took ${took}s"
[ ! -e "$T/m.stdm" ] && [ ! -e "$T/dl" ] && ok "offline: nothing left behind" || bad "offline left files"
[ "$(wc -l < "$T/off")" = 1 ] && ok "offline: one line" || bad "offline message is not one line"
echo "fetch-model: $pass passed, $fails failed"
[ "$fails" = 0 ]
