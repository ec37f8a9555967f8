// trt-inpaint's page: open an image, paint a mask, run, compare, download. No build step, no other origin.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  file: null,        // the image's original bytes (sent unchanged)
  name: "image",
  width: 0, height: 0,
  maskFile: null,    // a loaded mask file, sent as it is until the mask is painted on
  tool: "brush",
  size: 40,
  undo: [], redo: [],
  drawing: false, last: null,
  resultUrl: null,
  busy: false,
};
const UNDO_LIMIT = 40;
const imageCanvas = $("image-canvas");
const maskCanvas = $("mask-canvas");
const maskCtx = maskCanvas.getContext("2d", { willReadFrequently: true });

function message(text, kind = "info") {
  const m = $("message");
  m.textContent = text;
  m.className = text ? kind : "";
}

// ---- opening images ------------------------------------------------------------------------------

async function openImage(file) {
  if (!file) return;
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch (e) {
    message(`Cannot open ${file.name || "this file"} as an image here (PNG, JPEG, WebP or BMP).`, "error");
    return;
  }
  state.file = file;
  state.name = (file.name || "pasted.png").replace(/\.[^.]*$/, "") || "image";
  state.width = bitmap.width;
  state.height = bitmap.height;
  for (const c of [imageCanvas, maskCanvas]) { c.width = bitmap.width; c.height = bitmap.height; }
  imageCanvas.getContext("2d").drawImage(bitmap, 0, 0);
  maskCtx.clearRect(0, 0, state.width, state.height);
  state.undo = []; state.redo = []; state.maskFile = null;
  hideResult();
  $("drop-hint").hidden = true;
  $("canvas-box").hidden = false;
  $("run").disabled = false;
  message(`${state.width} × ${state.height}: paint over what should go.`);
}

async function openMaskFile(file) {
  if (!file || !state.file) { message("Open an image first.", "error"); return; }
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch (e) {
    message(`Cannot open ${file.name} as a mask image.`, "error");
    return;
  }
  pushUndo();
  // shown stretched over the image; sent to the server unchanged (it checks the size)
  const tmp = new OffscreenCanvas(state.width, state.height);
  const t = tmp.getContext("2d");
  t.drawImage(bitmap, 0, 0, state.width, state.height);
  const px = t.getImageData(0, 0, state.width, state.height);
  const out = maskCtx.createImageData(state.width, state.height);
  for (let i = 0; i < px.data.length; i += 4) {
    const hole = Math.max(px.data[i], px.data[i + 1], px.data[i + 2]) > 127 && px.data[i + 3] > 127;
    out.data[i] = 255; out.data[i + 3] = hole ? 255 : 0;
  }
  maskCtx.putImageData(out, 0, 0);
  state.maskFile = file;
  hideResult();
  const note = bitmap.width !== state.width || bitmap.height !== state.height
    ? ` (it is ${bitmap.width} × ${bitmap.height}, the image ${state.width} × ${state.height})` : "";
  message(`Mask ${file.name} loaded${note}.`);
}

// ---- painting --------------------------------------------------------------------------------------

function pushUndo() {
  state.undo.push({ pixels: maskCtx.getImageData(0, 0, state.width, state.height), file: state.maskFile });
  if (state.undo.length > UNDO_LIMIT) state.undo.shift();
  state.redo = [];
}

function restore(from, to) {
  if (!from.length) return;
  to.push({ pixels: maskCtx.getImageData(0, 0, state.width, state.height), file: state.maskFile });
  const snap = from.pop();
  maskCtx.putImageData(snap.pixels, 0, 0);
  state.maskFile = snap.file;
  hideResult();
}

function toImage(ev) {
  const r = maskCanvas.getBoundingClientRect();
  return { x: (ev.clientX - r.left) * state.width / r.width, y: (ev.clientY - r.top) * state.height / r.height };
}

function stroke(a, b) {
  maskCtx.globalCompositeOperation = state.tool === "eraser" ? "destination-out" : "source-over";
  maskCtx.strokeStyle = maskCtx.fillStyle = "rgb(255, 0, 0)";
  maskCtx.lineWidth = state.size;
  maskCtx.lineCap = maskCtx.lineJoin = "round";
  maskCtx.beginPath();
  maskCtx.moveTo(a.x, a.y);
  maskCtx.lineTo(b.x + 0.01, b.y);
  maskCtx.stroke();
}

function moveCursor(ev) {
  const c = $("cursor");
  const box = $("canvas-box").getBoundingClientRect();
  const scale = box.width / state.width;
  c.style.display = "block";
  c.style.width = c.style.height = `${state.size * scale}px`;
  c.style.left = `${ev.clientX - box.left}px`;
  c.style.top = `${ev.clientY - box.top}px`;
}

maskCanvas.addEventListener("pointerdown", (ev) => {
  if (!state.file || ev.button !== 0) return;
  maskCanvas.setPointerCapture(ev.pointerId);
  pushUndo();
  state.maskFile = null;  // painted on: the canvas is the mask now
  hideResult();
  state.drawing = true;
  state.last = toImage(ev);
  stroke(state.last, state.last);
});
maskCanvas.addEventListener("pointermove", (ev) => {
  moveCursor(ev);
  if (!state.drawing) return;
  const p = toImage(ev);
  stroke(state.last, p);
  state.last = p;
});
for (const type of ["pointerup", "pointercancel"]) {
  maskCanvas.addEventListener(type, () => { state.drawing = false; });
}
maskCanvas.addEventListener("pointerleave", () => { $("cursor").style.display = "none"; });

function setTool(tool) {
  state.tool = tool;
  $("tool-brush").classList.toggle("active", tool === "brush");
  $("tool-eraser").classList.toggle("active", tool === "eraser");
}

function setSize(size) {
  state.size = Math.max(2, Math.min(300, Math.round(size)));
  $("brush-size").value = state.size;
  $("brush-size-label").textContent = state.size;
}

// ---- running ---------------------------------------------------------------------------------------

function maskBlob() {
  if (state.maskFile) return Promise.resolve(state.maskFile);
  const px = maskCtx.getImageData(0, 0, state.width, state.height);
  const out = new ImageData(state.width, state.height);
  let any = false;
  for (let i = 0; i < px.data.length; i += 4) {
    const v = px.data[i + 3] > 127 ? 255 : 0;
    any ||= v > 0;
    out.data[i] = out.data[i + 1] = out.data[i + 2] = v; out.data[i + 3] = 255;
  }
  const c = new OffscreenCanvas(state.width, state.height);
  c.getContext("2d").putImageData(out, 0, 0);
  return any ? c.convertToBlob({ type: "image/png" }) : Promise.resolve(null);
}

async function run() {
  if (!state.file || state.busy) return;
  const mask = await maskBlob();
  if (!mask) { message("Paint over the area to fill first (or load a mask file).", "error"); return; }
  const form = new FormData();
  form.append("image", state.file, state.file.name || "image");
  form.append("mask", mask, "mask.png");
  for (const [id, field] of [["models", "models"], ["hd-strategy", "hd_strategy"], ["seed", "seed"]]) {
    if ($(id).value !== "") form.append(field, $(id).value);
  }
  state.busy = true;
  $("run").disabled = true;
  message("Running…");
  const t0 = performance.now();
  try {
    const r = await fetch("/api/v1/inpaint", { method: "POST", body: form });
    if (!r.ok) { message(await describeError(r), "error"); return; }
    const blob = await r.blob();
    showResult(blob, r.headers, (performance.now() - t0) / 1000);
  } catch (e) {
    message("Cannot reach the server: is it still running?", "error");
  } finally {
    state.busy = false;
    $("run").disabled = !state.file;
    refreshState();
  }
}

async function describeError(r) {
  let text = "";
  try { text = (await r.json()).error || ""; } catch (e) { /* not JSON */ }
  const what = {
    400: "The server could not use this input", 401: "The server needs an API key",
    413: "Too large for this server", 415: "Not an image format the server takes",
    422: "The request was not understood", 500: "The server failed", 503: "The server is busy or stopping",
    504: "The server took too long",
  }[r.status] || "Request failed";
  return `${what} (${r.status}): ${text || r.statusText}`;
}

function showResult(blob, headers, seconds) {
  if (state.resultUrl) URL.revokeObjectURL(state.resultUrl);
  state.resultUrl = URL.createObjectURL(blob);
  const img = $("result");
  img.src = state.resultUrl;
  img.hidden = false;
  maskCanvas.style.opacity = "0";
  $("result-tools").hidden = false;
  $("compare").value = 100;
  applyCompare();
  const ext = (blob.type.split("/")[1] || "png").replace("jpeg", "jpg");
  $("download").href = state.resultUrl;
  $("download").download = `${state.name}_inpainted.${ext}`;
  const h = (k) => headers.get(`x-inpaint-${k}`);
  $("result-info").textContent =
    `${seconds.toFixed(2)} s · models ${h("models")} · seed ${h("seed")} · batch of ${h("batch-size")} · ` +
    `queued ${Number(h("queue-seconds")).toFixed(2)} s`;
  message("Done.", "ok");
}

function hideResult() {
  $("result").hidden = true;
  $("result-tools").hidden = true;
  maskCanvas.style.opacity = "";
}

function applyCompare() {
  $("result").style.clipPath = `inset(0 0 0 ${100 - Number($("compare").value)}%)`;
}

// ---- the server's state ----------------------------------------------------------------------------

async function refreshState() {
  const el = $("server-state");
  try {
    const r = await fetch("/api/v1/status");
    if (!r.ok) { el.className = "state down"; el.textContent = await describeError(r); return; }
    const s = await r.json();
    const mb = (b) => `${(b / 2 ** 20).toFixed(0)} MiB`;
    const resident = s.stages.filter((x) => x.resident).map((x) => x.stage).join(", ") || "none";
    const budget = s.budget_bytes ? ` of ${mb(s.budget_bytes)}` : "";
    el.className = "state " + (!s.ready ? "down" : s.queue.waiting + s.queue.running ? "busy" : "ready");
    el.textContent = `${s.ready ? "ready" : s.reason || s.state} · ${s.backend} ${s.precision} · resident: ` +
      `${resident} (${mb(s.resident_bytes)}${budget}) · queue ${s.queue.waiting}/${s.queue.max_queue}` +
      `, running ${s.queue.running}`;
    el.title = `loads ${s.stages.map((x) => `${x.stage} ${x.loads}`).join(", ")} · swaps ${s.swaps}`;
  } catch (e) {
    el.className = "state down";
    el.textContent = "server unreachable";
  }
}

// ---- wiring ----------------------------------------------------------------------------------------

$("image-file").addEventListener("change", (ev) => { openImage(ev.target.files[0]); ev.target.value = ""; });
$("mask-file").addEventListener("change", (ev) => { openMaskFile(ev.target.files[0]); ev.target.value = ""; });
$("tool-brush").addEventListener("click", () => setTool("brush"));
$("tool-eraser").addEventListener("click", () => setTool("eraser"));
$("brush-size").addEventListener("input", (ev) => setSize(Number(ev.target.value)));
$("undo").addEventListener("click", () => restore(state.undo, state.redo));
$("redo").addEventListener("click", () => restore(state.redo, state.undo));
$("clear-mask").addEventListener("click", () => {
  if (!state.file) return;
  pushUndo(); state.maskFile = null; maskCtx.clearRect(0, 0, state.width, state.height); hideResult();
});
$("run").addEventListener("click", run);
$("compare").addEventListener("input", applyCompare);

const stage = $("stage");
stage.addEventListener("dragover", (ev) => { ev.preventDefault(); stage.classList.add("dragging"); });
stage.addEventListener("dragleave", () => stage.classList.remove("dragging"));
stage.addEventListener("drop", (ev) => {
  ev.preventDefault();
  stage.classList.remove("dragging");
  if (ev.dataTransfer.files.length) openImage(ev.dataTransfer.files[0]);
});
document.addEventListener("paste", (ev) => {
  const item = [...(ev.clipboardData?.items || [])].find((i) => i.type.startsWith("image/"));
  if (item) openImage(item.getAsFile());
});
document.addEventListener("keydown", (ev) => {
  if (ev.target.matches("input, select, textarea")) return;
  const k = ev.key.toLowerCase();
  if (k === "[") setSize(state.size * 0.8);
  else if (k === "]") setSize(state.size * 1.25 + 1);
  else if ((ev.ctrlKey || ev.metaKey) && k === "z") restore(ev.shiftKey ? state.redo : state.undo, ev.shiftKey ? state.undo : state.redo);
  else if ((ev.ctrlKey || ev.metaKey) && k === "y") restore(state.redo, state.undo);
  else if (k === "b") setTool("brush");
  else if (k === "e") setTool("eraser");
  else if (k === "c" && !ev.ctrlKey && !ev.metaKey) $("canvas-box").classList.add("comparing");
  else if (k === "enter") run();
  else return;
  ev.preventDefault();
});
document.addEventListener("keyup", (ev) => {
  if (ev.key.toLowerCase() === "c") $("canvas-box").classList.remove("comparing");
});

refreshState();
setInterval(refreshState, 2000);
