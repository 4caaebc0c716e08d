#!/usr/bin/env bash
# The human-evaluation study end to end: `dynaboot study create` with the shipped world model
# (16 items of the embedded test split, one sample vs copying the source), two raters,
# `study serve` on a loopback port; tests/study/e2e.mjs rates in headless Chromium (two raters
# at once, mouse and keyboard, a reload, a change of mind); the server is then killed with
# SIGKILL and started again, and every judgment must read back as rated; `study report` must
# count exactly those judgments. Installs chromium, node and playwright-core if missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
[ -d tests/study/node_modules/playwright-core ] ||
    (cd tests/study && npm install --no-save --no-package-lock --silent playwright-core@1)
# The debug binary with the features of the unit and end-to-end tests (tests/support.rs), so
# after them this build has nothing to do.
cargo build -q --workspace --bins --features dynaboot/notebook
bin=target/debug/dynaboot
out=${STUDY_OUT:-out/study-e2e}
rm -rf "$out" && mkdir -p "$out"
$bin study create --out "$out/study.sqlite" --system "FT=models/world" --per-family 4 --name e2e
$bin study rater --study "$out/study.sqlite" --name alice >/dev/null
$bin study rater --study "$out/study.sqlite" --name bob >/dev/null

server=
start_server() {
    $bin study serve --study "$out/study.sqlite" --addr 127.0.0.1:0 >"$out/serve.log" 2>&1 &
    server=$!
    # Up to a minute: a loaded CI machine starts slowly.
    for _ in $(seq 600); do grep -q "bob: http" "$out/serve.log" 2>/dev/null && break; sleep 0.1; done
    alice=$(sed -n 's/^ *alice: //p' "$out/serve.log")
    bob=$(sed -n 's/^ *bob: //p' "$out/serve.log")
    [ -n "$alice" ] && [ -n "$bob" ] || { echo "FAIL: the server printed no rater links:"; cat "$out/serve.log"; exit 1; }
}
trap '[ -n "$server" ] && kill -9 $server 2>/dev/null || true' EXIT

start_server
node tests/study/e2e.mjs rate "$alice" "$bob" "$out/expected.json" "$out/rating-page.png"
# A killed server loses no committed judgment.
kill -9 $server
wait $server 2>/dev/null || true
start_server
node tests/study/e2e.mjs check "$alice" "$bob" "$out/expected.json"
kill $server

$bin study report --study "$out/study.sqlite" --out "$out/report.json" --html "$out/report.html"
node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const want = { raters: 2, judgments: 21, submissions: 22 };
for (const [k, v] of Object.entries(want)) {
  if (r[k] !== v) { console.error(`FAIL: report ${k} = ${r[k]}, expected ${v}`); process.exit(1); }
}
const total = r.systems.reduce((s, x) => s + x.best, 0);
if (total !== 21) { console.error(`FAIL: ${total} best marks for 21 judgments`); process.exit(1); }
console.log("report: 2 raters, 21 judgments, 22 submissions");
' "$out/report.json"
