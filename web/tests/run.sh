#!/usr/bin/env bash
# Builds the browser demo, serves it on 127.0.0.1 and runs the end-to-end check in headless
# Chromium (CPU path). Installs what is missing: chromium and node from apt, playwright-core
# from npm (into web/tests/node_modules), wasm-bindgen-cli via web/build.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
command -v python3 >/dev/null || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
[ -d web/tests/node_modules/playwright-core ] ||
    (cd web/tests && npm install --no-save --no-package-lock --silent playwright-core@1)
bash web/build.sh
port=$((20000 + RANDOM % 20000))
python3 -m http.server --bind 127.0.0.1 --directory web/dist "$port" >/dev/null 2>&1 &
server=$!
trap 'kill $server' EXIT
for _ in $(seq 50); do
    python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/')" 2>/dev/null && break
    sleep 0.1
done
mkdir -p out/web
node web/tests/e2e.mjs "http://127.0.0.1:$port/" out/web/cpu.png
echo "screenshot: out/web/cpu.png"
