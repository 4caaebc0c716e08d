#!/usr/bin/env bash
# The browser soak (`just soak-web`): builds the demo, serves it on 127.0.0.1 and runs
# web/tests/soak.mjs on both backends: ROUNDS (default 100) best-of-8 predictions on the CPU
# backend, and as many best-of-2 on WebGPU (SwiftShader draws a best-of-8 in ~11 s on 2 cores).
# The memory curves go to out/web/soak-cpu.json and out/web/soak-webgpu.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-100}
[ -d web/tests/node_modules/playwright-core ] ||
    (cd web/tests && npm install --no-save --no-package-lock --silent playwright-core@1)
bash web/build.sh
source web/tests/serve.sh
mkdir -p out/web
echo "soak on the CPU backend ($rounds best-of-8)"
CHROMIUM_ARGS="" node web/tests/soak.mjs "http://127.0.0.1:$port/" --expect cpu --rounds "$rounds" --n 8 --out out/web/soak-cpu.json
echo "soak on WebGPU ($rounds best-of-2)"
CHROMIUM_ARGS="--enable-unsafe-webgpu" node web/tests/soak.mjs "http://127.0.0.1:$port/" --expect webgpu --rounds "$rounds" --n 2 --out out/web/soak-webgpu.json
