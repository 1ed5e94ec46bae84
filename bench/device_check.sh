#!/usr/bin/env bash
# The checks to run when a device machine (NVIDIA H200) is lent: one short script, one `run` call.
# Prepared here, once, in the repo root (the device machine reaches no registry):
#   echo /.gl/ >> .git/info/exclude; mkdir -p .gl /tmp/amd64/partial
#   o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
#   apt-get $o update; (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
#   xz -T2 -6 -c "$(readlink -f toolchain/node_modules/.bin/deno)" > .gl/deno.xz   # 95 MB → under the 64 MiB carry
# Then: run(command="bash bench/device_check.sh", carry=[".gl"], timeout_s=540).
# Every figure lands in $OUT (kernels.json/md, qkernels, logs); the closing note records them.
set -uo pipefail
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
export XDG_RUNTIME_DIR=/tmp NO_COLOR=1 QUANTLAB_REQUIRE_HW_GPU=1 DENO_DIR=/tmp/deno-dir
mkdir -p /tmp/bin && xz -dc .gl/deno.xz > /tmp/bin/deno && chmod +x /tmp/bin/deno
export PATH=/tmp/bin:$PATH
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
# 1. kernel speed against the measured copy bandwidth and matmul rate (issue 25's targets)
timeout 120 deno task bench:kernels --size 4096 --gemv 4096 --out "$OUT/kernels" 2>&1 | tee "$OUT/kernels.log"
timeout 120 deno task bench:qkernels --shapes 4096x4096,11008x4096,4096x11008 --m 512 --out "$OUT/qkernels" 2>&1 |
  tee "$OUT/qkernels.log"
# 2. the GPU kernel tests on a hardware adapter (variants chosen for hardware: 4×4 GEMM, "keys" attention, fused qGEMM)
timeout 100 deno test -A --frozen tests/gpu tests/quant/qmatmul.test.ts 2>&1 | tail -40 | tee "$OUT/tests.log"
# 3. issue 19: bench:scale on the hardware adapter — FP16 vs W4 decode tokens/s, per-block GPU bytes,
#    resident vs streamed (same ppl required). 8 layers of Llama-2-7B's shapes (RTN runs on the host,
#    ~8 s a block; 32 layers would not fit the device budget), extrapolated to 32/40/80.
timeout 180 deno task bench:scale --layers 8 --seqlen 512 --decode-tokens 16 --tiled-init --out "$OUT/scale" 2>&1 |
  tail -40 | tee "$OUT/scale.log"
