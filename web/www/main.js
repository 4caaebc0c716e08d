// The page: DOM wiring only. Every computation happens in the worker, over the kernel's
// Playground (see web/src/lib.rs); this file sends requests and draws what comes back.
const $ = (id) => document.getElementById(id);
// The page's query (e.g. `?backend=cpu`) goes to the worker, which picks the backend.
const worker = new Worker(new URL(`./worker.js${location.search}`, import.meta.url), { type: "module" });
const controls = [
  "new-scene", "action", "n", "temperature", "predict", "explain",
  "goal-distance", "new-goal", "plan-depth", "plan-proposals", "plan-beam", "plan-n",
].map($);
let started = 0;
// Images the teaching pickers offer: the scene, then the candidates best first.
let images = [];
const picked = { before: 0, after: 0 };
let lastAction = "";
// The chain of frames continued from ("continue from here"), the scene first.
let chain = [];
// The goal's PNG bytes, while one is shown for the current frame.
let goal = null;

const pngUrl = (bytes) => URL.createObjectURL(new Blob([bytes], { type: "image/png" }));
// Keeps the first `keep` images and releases the others' object URLs: a URL holds its PNG
// until revoked, so without this every prediction's candidates stayed in the page's memory.
function dropImages(keep) {
  for (const im of images.slice(keep)) URL.revokeObjectURL(im.url);
  images = images.slice(0, keep);
}
const setBusy = (busy) => {
  controls.forEach((c) => (c.disabled = busy));
  $("undo").disabled = busy || chain.length < 2;
  $("plan").disabled = busy || !goal;
};
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

// The frames continued from, as thumbnails, and the depth in words.
function drawChain() {
  $("chain").replaceChildren(...chain.map((c, i) => Object.assign(document.createElement("img"), { src: c.url, alt: i ? `imagined step ${i}` : "the scene" })));
  const d = chain.length - 1;
  $("depth").textContent = d === 0 ? "The scene itself." : `${d} imagined step${d > 1 ? "s" : ""} from the scene: predictions continue from the last.`;
}

function clearGoal() {
  goal = null;
  for (const id of ["goal", "goal-start"]) $(id).removeAttribute("src");
  $("goal-pair").hidden = $("goal-truth").hidden = true;
  for (const id of ["goal-actions", "search"]) $(id).replaceChildren();
  $("plan-table").tBodies[0].replaceChildren();
  $("plan-verdict").textContent = "";
}

function showScene(bytes, suggestions) {
  clearGoal();
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
  const more = Object.assign(document.createElement("button"), { type: "button", className: "continue", textContent: "Continue from here" });
  const action = lastAction;
  more.onclick = (e) => {
    e.stopPropagation();
    setBusy(true);
    worker.postMessage({ type: "continue", png: bytes, action });
  };
  fig.append(more);
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

const figure = (bytes, caption, className) => {
  const f = Object.assign(document.createElement("figure"), { className });
  f.append(Object.assign(document.createElement("img"), { src: pngUrl(bytes), alt: caption }), Object.assign(document.createElement("figcaption"), { textContent: caption }));
  return f;
};

// One imagined state of the search, as it comes.
function addNode(meta, bytes) {
  const share = Math.round((100 * meta.agreement) / 64);
  const f = figure(bytes, `d${meta.depth}: ${meta.action} · ${share} % like the goal`, "node");
  f.dataset.id = meta.id;
  f.dataset.depth = meta.depth;
  f.title = meta.relabelled ? `proposed “${meta.proposed}”; the dynamics model reads the imagined step as “${meta.action}”` : `proposed “${meta.proposed}”`;
  $("search").append(f);
}

// The plan: actions, imagined frames, and what the true world did with each.
function showPlan(m) {
  const steps = m.plan.steps;
  const row = (head, cells) => {
    const tr = document.createElement("tr");
    tr.append(Object.assign(document.createElement("th"), { textContent: head }), ...cells);
    return tr;
  };
  const cell = (content, className = "") => {
    const td = Object.assign(document.createElement("td"), { className });
    td.append(content);
    return td;
  };
  const img = (bytes, alt) => Object.assign(document.createElement("img"), { src: pngUrl(bytes), alt });
  const startImg = () => img(chain[chain.length - 1].bytes, "start");
  $("plan-table").tBodies[0].replaceChildren(
    row("action", [cell("start"), ...steps.map((s) => cell(s.action))]),
    row("imagined", [cell(startImg()), ...m.images.map((b, i) => cell(img(b, `imagined step ${i + 1}`)))]),
    row("real", [cell(startImg()), ...m.real.steps.map((s, i) => (m.realImages[i] ? cell(img(m.realImages[i], `real step ${i + 1}`)) : cell(s.refused, "refused")))]),
  );
  const onPlan = new Set(m.plan.path);
  document.querySelectorAll(".node").forEach((n) => n.classList.toggle("on-plan", onPlan.has(+n.dataset.id)));
  const imagined = m.plan.reached ? "the imagined frames reach the goal's tokens" : "the imagined frames end short of the goal";
  const verdict = $("plan-verdict");
  verdict.className = m.real.reached ? "hit" : "miss";
  verdict.textContent = `${steps.length}-action plan from ${m.plan.nodes - 1} imagined states in ${m.seconds.toFixed(1)} s; ${imagined}; in the true world it ${m.real.reached ? "reaches the goal" : "does not reach the goal"}.`;
}

worker.onmessage = ({ data: m }) => {
  switch (m.type) {
    case "progress": status(m.text); break;
    case "ready":
      $("backend").textContent = m.backend;
      $("backend").title = m.adapter || "candle on the CPU (wasm SIMD)";
      if (m.backend === "cpu") $("fallback").hidden = new URLSearchParams(location.search).get("backend") === "cpu";
      chain = [{ url: pngUrl(m.scene), bytes: m.scene }];
      showScene(m.scene, m.suggestions);
      drawChain();
      setBusy(false);
      status("Ready: type an action and press Predict.");
      break;
    case "scene":
      // The frame at `depth` replaces whatever the chain held from there (continue, undo, new).
      chain.splice(m.depth).forEach((c) => URL.revokeObjectURL(c.url));
      chain.push({ url: pngUrl(m.scene), bytes: m.scene });
      showScene(m.scene, m.suggestions);
      drawChain();
      setBusy(false);
      status(m.depth ? "Continuing from the imagined frame: the next prediction starts there." : "New scene.");
      break;
    case "goal":
      goal = m.png;
      $("goal").src = pngUrl(m.png);
      $("goal-start").src = chain[chain.length - 1].url;
      $("goal-pair").hidden = $("goal-truth").hidden = false;
      $("goal-actions").replaceChildren(...m.actions.map((a) => Object.assign(document.createElement("li"), { textContent: a })));
      $("search").replaceChildren();
      $("plan-table").tBodies[0].replaceChildren();
      $("plan-verdict").textContent = "";
      setBusy(false);
      status("A goal: press Plan.");
      break;
    case "node": addNode(m.meta, m.png); break;
    case "planned": showPlan(m); setBusy(false); status("Planned, then run in the true world."); break;
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
$("undo").onclick = () => {
  setBusy(true);
  worker.postMessage({ type: "undo" });
};
$("new-goal").onclick = () => {
  setBusy(true);
  status("Drawing a goal…");
  worker.postMessage({ type: "goal", seed: Math.floor(Math.random() * 1e9), actions: Number($("goal-distance").value) });
};
$("plan").onclick = () => {
  setBusy(true);
  $("search").replaceChildren();
  $("plan-table").tBodies[0].replaceChildren();
  $("plan-verdict").textContent = "";
  status("Planning: the imagined states appear as the search reaches them…");
  const budget = (id) => Number($(id).value);
  worker.postMessage({
    type: "plan", goal,
    depth: budget("plan-depth"), beam: budget("plan-beam"), proposals: budget("plan-proposals"), n: budget("plan-n"),
  });
};
// The planning benchmark's record, quoted from models/imagination/plan-eval.json.
fetch("models/imagination/plan-eval.json").then((r) => (r.ok ? r.json() : null)).then((record) => {
  if (!record) return;
  const pct = (x) => `${Math.round(100 * x)} %`;
  const rows = record.per_depth;
  $("plan-record").textContent = `Planning with the two models, on the project's benchmark (${rows[0].problems} problems per depth, each plan run in the true world): the default search reaches ${rows.map((r) => `${pct(r.success)} of goals ${r.depth} action${r.depth > 1 ? "s" : ""} away`).join(", ")}; the same search with the true simulator in place of the world model reaches ${rows.map((r) => pct(r.oracle_success)).join(", ")}. The gap is the world model's errors over several steps.`;
  $("plan-record").hidden = false;
}).catch(() => {});
