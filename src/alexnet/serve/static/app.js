// The page of `alexnet serve`: plain JavaScript, no build step, no network beyond this server.
"use strict";
const $ = (id) => document.getElementById(id);
const CROP_NAMES = ["top-left", "top-right", "bottom-left", "bottom-right", "centre",
                    "top-left \u21c6", "top-right \u21c6", "bottom-left \u21c6", "bottom-right \u21c6", "centre \u21c6"];

function el(tag, attrs = {}, children = []) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") e.textContent = v; else if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.appendChild(c);
  return e;
}

function bars(target, rows, label, value, fmt) {
  target.classList.remove("empty");
  target.replaceChildren();
  const top = Math.max(...rows.map(value), 1e-12);
  for (const r of rows) {
    const fill = el("div", {class: "fill"});
    fill.style.width = (100 * Math.max(value(r), 0) / top).toFixed(1) + "%";
    target.appendChild(el("div", {class: "bar"}, [
      el("span", {class: "label", text: label(r), title: label(r)}),
      el("div", {class: "track"}, [fill]),
      el("span", {class: "pct", text: fmt(value(r))}),
    ]));
  }
}

const pct = (p) => (100 * p).toFixed(p >= 0.1 ? 1 : 2) + "%";
const shape = (s) => s.join("\u00d7");

function showError(msg) {
  const box = $("error");
  box.textContent = msg;
  box.hidden = !msg;
}

function showPredictions(res) {
  const label = (r) => r.class;
  bars($("pred-centre"), res.predictions.centre, label, (r) => r.probability, pct);
  bars($("pred-ten"), res.predictions.ten_crops, label, (r) => r.probability, pct);
}

function showCrops(res) {
  const box = $("crops");
  box.replaceChildren(...res.crops.map((src, i) =>
    el("figure", {}, [el("img", {src, alt: CROP_NAMES[i]}), el("figcaption", {text: CROP_NAMES[i]})])));
  $("crops-note").textContent = "what the network sees (" + res.time_ms + " ms for the whole page's pass)";
  $("crops-section").hidden = false;
}

function showLayers(res) {
  $("layers").replaceChildren(...res.layers.map((layer) => {
    const towers = layer.towers.map((t) => el("div", {class: "tower"}, [
      el("img", {src: t.image, alt: layer.name + " tower " + t.tower}),
      el("div", {text: (layer.towers.length > 1 ? "tower " + t.tower + ": " : "") + "channels " +
                       t.channels.join(", ")}),
    ]));
    const title = el("h3", {text: layer.name}, [el("span", {class: "muted", text: shape(layer.shape)})]);
    return el("div", {class: "card layer"}, [title, el("div", {class: "towers"}, towers)]);
  }));
  $("layers-section").hidden = false;
  $("fc").replaceChildren(...res.fc.map((layer) => {
    const box = el("div", {class: "bars"});
    bars(box, layer.units, (u) => (u.label !== undefined ? u.label : "unit " + u.unit), (u) => u.value,
         (v) => v.toFixed(2));
    const title = el("h3", {text: layer.name}, [el("span", {class: "muted", text: shape(layer.shape) + " units"})]);
    return el("div", {class: "card layer"}, [title, box]);
  }));
  $("fc-section").hidden = false;
}

function showNeighbours(res) {
  if (!res.neighbours) return;
  $("nn").replaceChildren(...res.neighbours.map((n) => el("figure", {}, [
    n.image ? el("img", {src: n.image, alt: n.path}) : el("div", {text: "(missing)"}),
    el("figcaption", {text: n.path.split("/").slice(-2).join("/") + " \u00b7 " + n.distance.toFixed(2)}),
  ])));
  $("nn-section").hidden = false;
}

async function inspect(file) {
  showError("");
  $("drop").classList.add("has-image");
  const img = $("input-img");
  img.src = URL.createObjectURL(file);
  img.hidden = false;
  document.body.dataset.state = "busy";
  try {
    const r = await fetch("/v1/inspect", {method: "POST", body: file,
                                          headers: {"Content-Type": file.type || "application/octet-stream"}});
    const res = await r.json();
    if (!r.ok) throw new Error(res.error || ("HTTP " + r.status));
    showPredictions(res);
    showCrops(res);
    showLayers(res);
    showNeighbours(res);
    document.body.dataset.state = "done";
  } catch (e) {
    showError(file.name + ": " + e.message);
    document.body.dataset.state = "error";
  }
}

function cardRow(box, k, v) {
  box.appendChild(el("div", {class: "k", text: k}));
  box.appendChild(typeof v === "string" ? el("div", {text: v}) : v);
}

function fmtAccuracy(acc) {
  if (!acc) return "not measured";
  return Object.entries(acc).map(([k, v]) => {
    if (k === "publisher" && v && typeof v === "object")   // named weights: the publisher's own measurement
      return "publisher: top-1 " + v.top1 + "% \u00b7 top-5 " + v.top5 + "% (" + (v.crops || 1) + "-crop, " +
        (v.split || "") + ")";
    return k.includes("error") ? k.replace(/_/g, " ") + " " + (100 * v).toFixed(1) + "%" : k + " " + v;
  }).join(" \u00b7 ");
}

async function loadModel() {
  const r = await fetch("/v1/model");
  const m = await r.json();
  const sw = m.switches;
  $("model-chip").textContent = m.architecture + " \u00b7 " + m.num_classes + " classes \u00b7 " +
    (m.parameters / 1e6).toFixed(m.parameters < 1e6 ? 3 : 1) + "M parameters";
  const box = $("card");
  cardRow(box, "architecture", m.architecture + (sw.towers > 1 ? " (two towers, section 3.2)" : ""));
  cardRow(box, "layers", m.layers.map((l) => l.layer + " " + shape(l.output)).join(" \u2192 "));
  cardRow(box, "parameters", m.parameters.toLocaleString());
  cardRow(box, "switches", Object.entries(sw).filter(([k]) => k !== "arch")
    .map(([k, v]) => k + "=" + (Array.isArray(v) ? v.join("-") : v)).join(", "));
  const p = m.preprocessing;
  cardRow(box, "preprocessing", "shorter side " + p.resize + ", centre " + p.crop + "\u00d7" + p.crop + " crop, " +
    (p.channels || 3) + " channel(s) " + (p.channel_order || "RGB") + ", mean " +
    p.mean.map((v) => (+v).toFixed(1)).join("/") + ", std " + p.std.map((v) => (+v).toFixed(1)).join("/"));
  cardRow(box, "weights", Object.entries(m.weights).map(([k, v]) => k + ": " + v).join(" \u00b7 "));
  cardRow(box, "accuracy", fmtAccuracy(m.accuracy));
  cardRow(box, "classes", m.classes.slice(0, 12).join(", ") + (m.classes.length > 12 ? ", \u2026" : ""));
  $("filters").src = "/v1/figures/filters.png";
  if (m.figures.includes("curves")) {
    $("curves").src = "/v1/figures/curves.png";
    $("curves-card").hidden = false;
  } else {
    $("curves-card").parentElement.classList.add("single");
  }
  document.body.dataset.model = "ready";
}

function setup() {
  for (const o of document.querySelectorAll(".origin")) o.textContent = location.origin;
  const drop = $("drop");
  $("file").addEventListener("change", (e) => { if (e.target.files[0]) inspect(e.target.files[0]); });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files[0]) inspect(e.dataTransfer.files[0]);
  });
  loadModel().catch((e) => showError("could not load the model card: " + e.message));
}

setup();
