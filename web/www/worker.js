// The Web Worker: fetches the shipped models (the browser caches them), builds the wasm Demo
// and answers the page's requests, so inference never freezes the page. `?backend=cpu` in the
// page's address skips WebGPU; otherwise the Demo uses it when the browser offers an adapter.
import init, { Demo, ImageTokenizerFiles, ModelFiles } from "./pkg/dynaboot_web.js";

let demo = null;
let wasmMemory = null;
// What the worker holds, for the browser soak (web/tests/soak.mjs): the wasm heap, which only
// ever grows, and the worker's JS heap where the browser reports it.
self.memoryInUse = () => ({
  wasm_bytes: wasmMemory?.buffer.byteLength ?? 0,
  js_heap_bytes: performance.memory?.usedJSHeapSize ?? null,
});
const post = (m, transfer) => self.postMessage(m, transfer ?? []);

async function fetchBytes(path, label) {
  const res = await fetch(path);
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  const total = Number(res.headers.get("content-length")) || 0;
  const reader = res.body.getReader();
  const chunks = [];
  let got = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    got += value.length;
    post({ type: "progress", text: `Loading ${label}: ${(got / 1e6).toFixed(1)}${total ? ` of ${(total / 1e6).toFixed(1)}` : ""} MB` });
  }
  const out = new Uint8Array(got);
  let at = 0;
  for (const c of chunks) { out.set(c, at); at += c.length; }
  return out;
}
const fetchText = async (path, label) => new TextDecoder().decode(await fetchBytes(path, label));

async function load() {
  wasmMemory = (await init()).memory;
  const files = {};
  for (const m of ["world", "dynamics"]) {
    files[m] = {
      config: await fetchText(`models/${m}/config.json`, `${m} config`),
      weights: await fetchBytes(`models/${m}/model.safetensors`, `${m} model`),
      tokenizer: await fetchText(`models/${m}/tokenizer.json`, `${m} tokenizer`),
    };
  }
  const vqConfig = await fetchText("models/vq/config.json", "image tokenizer config");
  const vqWeights = await fetchBytes("models/vq/model.safetensors", "image tokenizer");
  post({ type: "progress", text: "Building the models…" });
  const webgpu = new URLSearchParams(self.location.search).get("backend") !== "cpu";
  const model = (f) => new ModelFiles(f.config, f.weights, f.tokenizer);
  demo = await Demo.create(
    model(files.world), model(files.dynamics), new ImageTokenizerFiles(vqConfig, vqWeights),
    1n, webgpu,
  );
  post({ type: "progress", text: "Warming up…" });
  demo.warm_up();
  post({
    type: "ready", backend: demo.backend(), adapter: demo.adapter(),
    scene: demo.scene_png(), suggestions: demo.suggestions(),
  });
}

self.onmessage = async ({ data: m }) => {
  try {
    if (m.type === "predict") {
      const check = JSON.parse(demo.check_action(m.action));
      if (check.note) post({ type: "note", text: check.note });
      await demo.predict(check.text, m.n, m.temperature, BigInt(m.seed), (meta, png) => {
        post({ type: "candidate", meta: JSON.parse(meta), png }, [png.buffer]);
      });
      post({ type: "done", n: m.n, note: check.note });
    } else if (m.type === "new-scene") {
      post({ type: "scene", scene: demo.new_scene(BigInt(m.seed)), suggestions: demo.suggestions(), depth: 0 });
    } else if (m.type === "continue" || m.type === "undo") {
      const depth = m.type === "undo" ? demo.undo() : demo.continue_from(m.png, m.action);
      post({ type: "scene", scene: demo.scene_png(), suggestions: demo.suggestions(), depth });
    } else if (m.type === "goal") {
      const g = demo.goal(BigInt(m.seed), m.actions);
      post({ type: "goal", actions: JSON.parse(g.json).actions, png: g.images[0] });
    } else if (m.type === "plan") {
      const t0 = performance.now();
      const plan = await demo.plan(m.goal, m.depth, m.beam, m.proposals, m.n, (meta, png) => {
        post({ type: "node", meta: JSON.parse(meta), png }, [png.buffer]);
      });
      const seconds = (performance.now() - t0) / 1000;
      const steps = JSON.parse(plan.json);
      const real = demo.run_plan(steps.steps.map((s) => s.action), m.goal);
      post({ type: "planned", plan: steps, images: plan.images, real: JSON.parse(real.json), realImages: real.images, seconds });
    } else if (m.type === "explain") {
      post({ type: "explained", labels: m.labels, result: JSON.parse(demo.explain(m.before, m.after)) });
    }
  } catch (e) {
    post({ type: "error", text: String(e.message ?? e) });
  }
};

load().catch((e) => post({ type: "error", text: `Could not start: ${e.message ?? e}` }));
