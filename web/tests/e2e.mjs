// End-to-end check of the served demo in headless Chromium (playwright-core):
//   node web/tests/e2e.mjs URL SCREENSHOT.png
// Loads the page, predicts for a suggested action with N = 8, checks the candidates arrive
// sorted by score with the backend named, sends bad input (empty, 5,000 characters, another
// language) and checks each gets a message and the next valid request still works. Prints
// the timings as JSON.
import { chromium } from "playwright-core";

const [url, shot] = process.argv.slice(2);
const fail = (msg) => { console.error(`FAIL: ${msg}`); process.exit(1); };
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--headless=new", ...(process.env.CHROMIUM_ARGS ?? "").split(" ").filter(Boolean)],
});
const page = await browser.newPage({ viewport: { width: 1200, height: 1100 } });
page.on("console", (m) => console.log(`  [page] ${m.text()}`));
page.on("pageerror", (e) => fail(`page error: ${e.message}`));
const t0 = Date.now();
await page.goto(url);
await page.waitForFunction(() => !document.getElementById("predict").disabled, null, { timeout: 180_000 })
  .catch(async () => fail(`never ready: ${await page.textContent("#status")}`));
const loadMs = Date.now() - t0;
const backend = (await page.textContent("#backend")).trim();
if (!["cpu", "webgpu"].includes(backend)) fail(`backend is ${backend}`);

async function predict(action, n) {
  await page.fill("#action", action);
  await page.selectOption("#n", String(n));
  const start = Date.now();
  await page.click("#predict");
  let first = null;
  await page.waitForFunction(() => document.querySelectorAll(".candidate").length > 0 || document.getElementById("status").classList.contains("error"), null, { timeout: 300_000 });
  first = Date.now() - start;
  await page.waitForFunction(() => !document.getElementById("predict").disabled, null, { timeout: 300_000 });
  return { first, all: Date.now() - start };
}

const action = await page.$eval("#action", (e) => e.value);
const timing = await predict(action, 8);
const cands = await page.$$eval(".candidate", (cs) => cs.map((c) => ({ rank: +c.dataset.rank, score: +c.dataset.score })));
if (cands.length !== 8) fail(`${cands.length} candidates`);
cands.forEach((c, i) => { if (c.rank !== i) fail(`rank ${c.rank} at position ${i}`); });
for (let i = 1; i < cands.length; i++) if (cands[i].score > cands[i - 1].score) fail("scores not sorted");
if (shot) await page.screenshot({ path: shot, fullPage: true });

for (const [bad, expect] of [["", /type an action/], ["x".repeat(5000), /shorten it/]]) {
  await predict(bad, 2);
  const cls = await page.getAttribute("#status", "class");
  const text = await page.textContent("#status");
  if (!cls?.includes("error") || !expect.test(text)) fail(`bad input ${bad.slice(0, 10)}…: status "${text}"`);
}
await predict("pousse le cube rouge vers la gauche", 2);
if (!/not in the language/.test(await page.textContent("#status"))) fail("no note for another language");
await predict(action, 2);
if ((await page.$$(".candidate")).length !== 2) fail("a valid request after bad ones failed");

console.log(JSON.stringify({ backend, load_ms: loadMs, action, first_candidate_ms: timing.first, all_8_ms: timing.all, scores: cands.map((c) => c.score) }));
await browser.close();
