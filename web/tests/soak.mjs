// The browser soak: ROUNDS predictions in a row on the served demo page in headless Chromium,
// with memory sampled after each (garbage collected first): the page's JS heap, the worker's
// JS heap and its wasm heap (which only grows, so a leak there never hides). Every tenth
// request is bad input (an empty action, then 5,000 characters), which must get a message and
// leave the next prediction working. Fails when memory after the warm-up (the mean of the last
// ten rounds against rounds 10-19) grows by more than 10 %.
//   node web/tests/soak.mjs URL --expect webgpu|cpu [--rounds 100] [--n 8] [--out FILE.json]
// CHROMIUM_ARGS adds browser flags (`--enable-unsafe-webgpu` for the WebGPU backend).
import { chromium } from "playwright-core";
import { writeFileSync } from "node:fs";

const args = process.argv.slice(2);
const url = args[0];
const option = (name, fallback) => { const i = args.indexOf(name); return i < 0 ? fallback : args[i + 1]; };
const expect = option("--expect");
const rounds = Number(option("--rounds", 100));
const n = Number(option("--n", 8));
const out = option("--out", null);
const fail = (msg) => { console.error(`FAIL (${expect}): ${msg}`); process.exit(1); };
if (rounds < 30) fail("--rounds: at least 30 (10 to warm up, 10 to compare against, 10 at the end)");

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: [
    "--no-sandbox", "--headless=new", "--enable-precise-memory-info", "--js-flags=--expose-gc",
    ...(process.env.CHROMIUM_ARGS ?? "").split(" ").filter(Boolean),
  ],
});
const page = await browser.newPage({ viewport: { width: 1200, height: 1100 } });
page.on("pageerror", (e) => fail(`page error: ${e.message}`));
const workerStarted = page.waitForEvent("worker");
await page.goto(url);
const worker = await workerStarted;
await page.waitForFunction(() => !document.getElementById("predict").disabled, null, { timeout: 300_000 })
  .catch(async () => fail(`never ready: ${await page.textContent("#status")}`));
const backend = (await page.textContent("#backend")).trim();
if (backend !== expect) fail(`backend is ${backend}, expected ${expect}`);
const actions = await page.$$eval("#suggestions option", (os) => os.map((o) => o.value));
if (actions.length === 0) fail("no suggested actions");

async function predict(action) {
  await page.fill("#action", action);
  await page.selectOption("#n", String(n));
  await page.click("#predict");
  await page.waitForFunction(() => !document.getElementById("predict").disabled, null, { timeout: 600_000 });
}

if (!(await page.evaluate(() => typeof globalThis.gc === "function"))) fail("no gc() in the page (--js-flags=--expose-gc)");

async function memory() {
  await page.evaluate(() => globalThis.gc());
  const pageHeap = await page.evaluate(() => performance.memory.usedJSHeapSize);
  const w = await worker.evaluate(() => { globalThis.gc?.(); return self.memoryInUse(); });
  return { page_js_heap_bytes: pageHeap, worker_js_heap_bytes: w.js_heap_bytes, worker_wasm_bytes: w.wasm_bytes };
}

const samples = [];
const bad = ["", "x".repeat(5000)];
const started = Date.now();
for (let r = 0; r < rounds; r++) {
  if (r % 10 === 9) {
    await predict(bad[(r / 10) % 2 | 0]);
    const cls = await page.getAttribute("#status", "class");
    if (!cls?.includes("error")) fail(`round ${r}: bad input got no error message`);
  }
  const action = actions[r % actions.length];
  const t = Date.now();
  await predict(action);
  // Counted in the page: element handles would keep the nodes alive and leak themselves.
  const got = await page.$$eval(".candidate", (cs) => cs.length);
  if (got !== n) fail(`round ${r}: ${got} candidates for "${action}"`);
  samples.push({ round: r, ms: Date.now() - t, ...(await memory()) });
}

const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const growth = {};
for (const key of ["page_js_heap_bytes", "worker_js_heap_bytes", "worker_wasm_bytes"]) {
  if (samples.some((s) => s[key] == null)) continue;
  const base = mean(samples.slice(10, 20).map((s) => s[key]));
  const end = mean(samples.slice(-10).map((s) => s[key]));
  growth[key] = end / base - 1;
}
const report = {
  backend, n, rounds, minutes: (Date.now() - started) / 60_000, growth,
  median_ms: samples.map((s) => s.ms).sort((a, b) => a - b)[samples.length >> 1], samples,
};
if (out) writeFileSync(out, JSON.stringify(report, null, 1));
console.log(JSON.stringify({ ...report, samples: undefined }));
for (const [key, g] of Object.entries(growth)) if (g > 0.10) fail(`${key} grew ${(100 * g).toFixed(1)} % after warm-up`);
await browser.close();
