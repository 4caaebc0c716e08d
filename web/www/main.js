// The page: DOM wiring only. Every computation happens in the worker, over the kernel's
// Playground (see web/src/lib.rs); this file sends requests and draws what comes back.
const $ = (id) => document.getElementById(id);
// The page's query (e.g. `?backend=cpu`) goes to the worker, which picks the backend.
const worker = new Worker(new URL(`./worker.js${location.search}`, import.meta.url), { type: "module" });
const controls = ["new-scene", "action", "n", "temperature", "predict", "explain"].map($);
let started = 0;
// Images the teaching pickers offer: the scene, then the candidates best first.
let images = [];
const picked = { before: 0, after: 0 };
let lastAction = "";

const pngUrl = (bytes) => URL.createObjectURL(new Blob([bytes], { type: "image/png" }));
// Keeps the first `keep` images and releases the others' object URLs: a URL holds its PNG
// until revoked, so without this every prediction's candidates stayed in the page's memory.
function dropImages(keep) {
  for (const im of images.slice(keep)) URL.revokeObjectURL(im.url);
  images = images.slice(0, keep);
}
const setBusy = (busy) => controls.forEach((c) => (c.disabled = busy));
const status = (text, error = false) => {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
};

// The "before" and "after" rows of the teaching panel, with the picked ones marked.
function drawPickers() {
  for (const side of ["before", "after"]) {
    $(side).replaceChildren(...images.map((im, i) => {
      const b = Object.assign(document.createElement("button"), { className: "pick" + (picked[side] === i ? " selected" : ""), type: "button", title: im.label });
      b.dataset.index = i;
      b.append(Object.assign(document.createElement("img"), { src: im.url, alt: im.label }), im.label);
      b.onclick = () => { picked[side] = i; drawPickers(); };
      return b;
    }));
  }
}

function explain() {
  const [before, after] = [images[picked.before], images[picked.after]];
  status("Explaining…");
  worker.postMessage({ type: "explain", before: before.bytes, after: after.bytes, labels: [before.label, after.label] });
}

function live(items) {
  $("live").replaceChildren(...items.map((t) => Object.assign(document.createElement("li"), { textContent: t })));
}

function showScene(bytes, suggestions) {
  $("candidates").replaceChildren();
  $("explanation").textContent = "";
  dropImages(0);
  images = [{ bytes, url: pngUrl(bytes), label: "scene" }];
  $("scene").src = images[0].url;
  picked.before = picked.after = 0;
  drawPickers();
  $("suggestions").replaceChildren(...suggestions.map((s) => Object.assign(document.createElement("option"), { value: s })));
  $("chips").replaceChildren(...suggestions.slice(0, 6).map((s) => {
    const b = Object.assign(document.createElement("button"), { textContent: s, type: "button" });
    b.onclick = () => ($("action").value = s);
    return b;
  }));
  if (!$("action").value) $("action").value = suggestions[0] ?? "";
}

function addCandidate(meta, bytes) {
  const fig = document.createElement("figure");
  fig.className = "candidate" + (meta.rank === 0 ? " best" : "");
  fig.dataset.rank = meta.rank;
  fig.dataset.score = meta.score;
  fig.dataset.sample = meta.sample;
  const img = Object.assign(document.createElement("img"), { src: pngUrl(bytes), alt: `candidate ${meta.rank}` });
  const cap = document.createElement("figcaption");
  cap.textContent = `#${meta.rank + 1} · sample ${meta.sample} · log p ${meta.score.toFixed(2)}`;
  fig.append(img, cap);
  const image = { bytes, url: img.src, label: `#${meta.rank + 1}` };
  images.push(image);
  if (meta.rank === 0) {
    picked.after = images.length - 1;
    live([`World model: the scene + “${lastAction}” → ${$("n").value} imagined next images; the dynamics model ranked sample ${meta.sample} first (log p ${meta.score.toFixed(2)}).`]);
  }
  drawPickers();
  fig.onclick = () => {
    picked.before = 0;
    picked.after = images.indexOf(image);
    drawPickers();
    explain();
  };
  $("candidates").append(fig);
}

worker.onmessage = ({ data: m }) => {
  switch (m.type) {
    case "progress": status(m.text); break;
    case "ready":
      $("backend").textContent = m.backend;
      $("backend").title = m.adapter || "candle on the CPU (wasm SIMD)";
      if (m.backend === "cpu") $("fallback").hidden = new URLSearchParams(location.search).get("backend") === "cpu";
      showScene(m.scene, m.suggestions);
      setBusy(false);
      status("Ready: type an action and press Predict.");
      break;
    case "scene": showScene(m.scene, m.suggestions); setBusy(false); status("New scene."); break;
    case "note": status(m.text); break;
    case "candidate":
      if (m.meta.rank === 0) $("timing").textContent = `first candidate after ${(performance.now() - started).toFixed(0)} ms`;
      addCandidate(m.meta, m.png);
      break;
    case "done":
      $("timing").textContent += ` · all ${m.n} after ${(performance.now() - started).toFixed(0)} ms`;
      setBusy(false);
      status(m.note ?? `Done: ${m.n} candidates, best first.`);
      break;
    case "explained": {
      const [before, after] = m.labels;
      $("explanation").textContent = `${before} → ${after}: “${m.result.text}” (log p ${m.result.score.toFixed(2)}, ${m.result.score_per_token.toFixed(2)} per token)`;
      const items = [...$("live").children].slice(0, 1).map((li) => li.textContent);
      live([...items, `Dynamics model: ${before} + ${after} → “${m.result.text}”.`]);
      status("Explained.");
      break;
    }
    case "error": setBusy(false); status(m.text, true); break;
  }
};

$("explain").onclick = explain;
$("predict").onclick = () => {
  $("candidates").replaceChildren();
  dropImages(1);
  picked.before = picked.after = 0;
  drawPickers();
  lastAction = $("action").value;
  $("timing").textContent = "";
  setBusy(true);
  status("Predicting…");
  started = performance.now();
  worker.postMessage({
    type: "predict",
    action: $("action").value,
    n: Number($("n").value),
    temperature: Number($("temperature").value),
    seed: 0,
  });
};
$("action").addEventListener("keydown", (e) => { if (e.key === "Enter" && !$("predict").disabled) $("predict").click(); });
$("new-scene").onclick = () => {
  setBusy(true);
  worker.postMessage({ type: "new-scene", seed: Math.floor(Math.random() * 1e9) });
};
