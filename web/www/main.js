// The page: DOM wiring only. Every computation happens in the worker, over the kernel's
// Playground (see web/src/lib.rs); this file sends requests and draws what comes back.
const $ = (id) => document.getElementById(id);
// The page's query (e.g. `?backend=cpu`) goes to the worker, which picks the backend.
const worker = new Worker(new URL(`./worker.js${location.search}`, import.meta.url), { type: "module" });
const controls = ["new-scene", "action", "n", "temperature", "predict"].map($);
let sceneBytes = null;
let started = 0;

const pngUrl = (bytes) => URL.createObjectURL(new Blob([bytes], { type: "image/png" }));
const setBusy = (busy) => controls.forEach((c) => (c.disabled = busy));
const status = (text, error = false) => {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
};

function showScene(bytes, suggestions) {
  sceneBytes = bytes;
  $("scene").src = pngUrl(bytes);
  $("candidates").replaceChildren();
  $("explanation").textContent = "";
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
  fig.onclick = () => {
    status("Explaining…");
    worker.postMessage({ type: "explain", before: sceneBytes, after: bytes });
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
    case "explained":
      $("explanation").textContent = `“${m.result.text}” (log p ${m.result.score.toFixed(2)}, ${m.result.score_per_token.toFixed(2)} per token)`;
      status("Explained.");
      break;
    case "error": setBusy(false); status(m.text, true); break;
  }
};

$("predict").onclick = () => {
  $("candidates").replaceChildren();
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
