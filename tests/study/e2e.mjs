// The rating page end to end in headless Chromium (playwright-core), two raters at once:
//   node tests/study/e2e.mjs rate ALICE_URL BOB_URL EXPECTED.json SCREENSHOT.png
//   node tests/study/e2e.mjs check ALICE_URL BOB_URL EXPECTED.json
// `rate`: Alice rates 10 items with the mouse while Bob rates 6 at the same time; Alice reloads
// (the page must resume at her 11th item with 10 rated), rates 5 more with the keyboard only,
// goes back one item and changes that judgment; every judgment that should count is written to
// EXPECTED.json as {rater: {item: [best slot, worst slot]}}. `check` (after the server was
// killed and started again) reads every item back through the API and compares.
import { chromium } from "playwright-core";
import { readFileSync, writeFileSync } from "node:fs";

const [mode, aliceUrl, bobUrl, expectedPath, shot] = process.argv.slice(2);
const fail = (msg) => { console.error(`FAIL: ${msg}`); process.exit(1); };
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--headless=new"],
});

async function open(url) {
  const page = await (await browser.newContext({ viewport: { width: 1000, height: 800 } })).newPage();
  page.on("pageerror", (e) => fail(`page error: ${e.message}`));
  await page.goto(url);
  await ready(page);
  return page;
}

// Waits until the page shows an item (or says all are rated).
async function ready(page) {
  await page.waitForFunction(() => {
    const item = document.getElementById("item");
    const done = !document.getElementById("finished").hidden;
    const imgs = [...document.querySelectorAll("#images img")];
    return done || (!item.hidden && imgs.length > 1 && imgs.every((i) => i.complete && i.naturalWidth > 0));
  }, null, { timeout: 60_000 }).catch(async () => fail(`never ready: ${await page.textContent("#status")}`));
}

const itemId = (page) => page.$eval("#item", (e) => Number(e.dataset.item));
const rated = async (page) => Number((await page.textContent("#count")).split(" ")[0]);
const candidates = (page) => page.$$eval("#best input", (i) => i.length);

async function waitNext(page, previous) {
  await page.waitForFunction((prev) => {
    const item = document.getElementById("item");
    return !document.getElementById("finished").hidden || (Number(item.dataset.item) !== prev);
  }, previous, { timeout: 30_000 });
  await ready(page);
}

// One judgment with the mouse: click the labels, then the save button.
async function rateByMouse(page, k, record) {
  const id = await itemId(page), n = await candidates(page);
  const best = k % n, worst = (k + 1) % n;
  await page.click(`label:has(#best-${best})`);
  await page.click(`label:has(#worst-${worst})`);
  await page.click("#save");
  record[id] = [best, worst];
  await waitNext(page, id);
}

// One judgment with the keyboard only: number = best, Shift+number = worst, Enter saves.
async function rateByKeyboard(page, k, record) {
  const id = await itemId(page), n = await candidates(page);
  const best = (k + 1) % n, worst = k % n;
  await page.keyboard.press(`Digit${best + 1}`);
  await page.keyboard.press(`Shift+Digit${worst + 1}`);
  await page.keyboard.press("Enter");
  record[id] = [best, worst];
  await waitNext(page, id);
}

if (mode === "rate") {
  const expected = { alice: {}, bob: {} };
  const alice = await open(aliceUrl), bob = await open(bobUrl);
  // Two raters at the same time.
  await Promise.all([
    (async () => { for (let k = 0; k < 10; k++) await rateByMouse(alice, k, expected.alice); })(),
    (async () => { for (let k = 0; k < 6; k++) await rateByMouse(bob, k, expected.bob); })(),
  ]);
  // Stop and resume: a reload shows the 11th item with 10 rated.
  await alice.reload();
  await ready(alice);
  if ((await rated(alice)) !== 10) fail(`after a reload ${await rated(alice)} rated, expected 10`);
  if (expected.alice[await itemId(alice)]) fail("after a reload the page shows an item already rated");
  for (let k = 0; k < 5; k++) await rateByKeyboard(alice, k, expected.alice);
  // Back one item (keyboard) and change the judgment: the saved one is preselected.
  const before = await itemId(alice);
  await alice.keyboard.press("Backspace");
  await waitNext(alice, before);
  const back = await itemId(alice);
  const saved = await alice.$eval("input[name=best]:checked", (i) => Number(i.value));
  if (saved !== expected.alice[back][0]) fail(`going back shows best ${saved}, saved ${expected.alice[back][0]}`);
  const n = await candidates(alice);
  const change = [expected.alice[back][1], (expected.alice[back][1] + 1) % n];
  await alice.keyboard.press(`Digit${change[0] + 1}`);
  await alice.keyboard.press(`Shift+Digit${change[1] + 1}`);
  await alice.keyboard.press("Enter");
  expected.alice[back] = change;
  await waitNext(alice, back);
  if ((await rated(alice)) !== 15) fail(`${await rated(alice)} rated, expected 15`);
  // A submission with best = worst is refused with a word on the page and saves nothing.
  await alice.keyboard.press("Digit1");
  await alice.keyboard.press("Shift+Digit1");
  await alice.keyboard.press("Enter");
  const status = await alice.textContent("#status");
  if (!status.includes("must differ")) fail(`no message for best = worst: "${status}"`);
  await alice.keyboard.press("Shift+Digit2");
  await alice.screenshot({ path: shot });
  writeFileSync(expectedPath, JSON.stringify(expected, null, 1));
  console.log(`rated: alice ${Object.keys(expected.alice).length}, bob ${Object.keys(expected.bob).length}`);
} else if (mode === "check") {
  const expected = JSON.parse(readFileSync(expectedPath, "utf8"));
  for (const [name, url] of [["alice", aliceUrl], ["bob", bobUrl]]) {
    const u = new URL(url);
    const token = u.pathname.split("/").pop();
    const state = await (await fetch(`${u.origin}/api/${token}/state${u.search}`)).json();
    const done = state.items.filter((i) => i.done).map((i) => String(i.id)).sort();
    const want = Object.keys(expected[name]).sort();
    if (JSON.stringify(done) !== JSON.stringify(want)) fail(`${name}: rated ${done}, expected ${want}`);
    for (const [id, [best, worst]] of Object.entries(expected[name])) {
      const item = await (await fetch(`${u.origin}/api/${token}/item/${id}${u.search}`)).json();
      if (item.best !== best || item.worst !== worst) {
        fail(`${name}, item ${id}: stored best ${item.best} worst ${item.worst}, expected ${best} ${worst}`);
      }
    }
    console.log(`${name}: all ${want.length} judgments stored as rated`);
  }
} else {
  fail(`unknown mode ${mode}`);
}
await browser.close();
