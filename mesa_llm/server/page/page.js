// The demo page of `mesa-llm serve`: plain JavaScript, no build step, nothing from another site.
// It lists simulations, starts one, and draws the first good's price from the WebSocket.
"use strict";

const state = { token: sessionStorage.getItem("mesa-llm-token") || "", socket: null, watching: null, points: [] };
const $ = (id) => document.getElementById(id);

function say(text, isError) {
  const el = $("message");
  el.textContent = text;
  el.className = isError ? "error" : "";
}

async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (state.token) headers["Authorization"] = "Bearer " + state.token;
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) throw new Error(data.error || ("HTTP " + response.status));
  return data;
}

async function loadScenarios() {
  const select = $("scenario");
  select.textContent = "";
  for (const s of await api("GET", "/api/scenarios")) {
    const option = document.createElement("option");
    option.value = s.name;
    option.textContent = s.name;
    option.title = s.description;
    if (s.name === "double_auction") option.selected = true;
    select.appendChild(option);
  }
}

function button(label, action) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.addEventListener("click", async () => {
    try { await action(); } catch (e) { say(e.message, true); }
    refresh();
  });
  return b;
}

async function refresh() {
  let sims;
  try { sims = await api("GET", "/api/simulations"); } catch (e) { say(e.message, true); return; }
  const body = $("simulations").querySelector("tbody");
  body.textContent = "";
  for (const s of sims) {
    const row = document.createElement("tr");
    row.dataset.id = s.id;
    for (const text of [s.id, s.scenario, s.status, s.step + " / " + s.max_steps]) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.appendChild(cell);
    }
    const actions = document.createElement("td");
    const base = "/api/simulations/" + encodeURIComponent(s.id);
    actions.appendChild(button("Watch", async () => watch(s.id)));
    if (s.status === "running") actions.appendChild(button("Pause", () => api("POST", base + "/pause")));
    if (s.status === "paused" || s.status === "idle") actions.appendChild(button("Resume", () => api("POST", base + "/resume")));
    if (!["completed", "stopped", "failed", "budget_exceeded", "interrupted"].includes(s.status)) {
      actions.appendChild(button("Stop", () => api("POST", base + "/stop")));
    }
    actions.appendChild(button("Delete", () => api("DELETE", base)));
    row.appendChild(actions);
    body.appendChild(row);
  }
}

function draw() {
  const canvas = $("chart");
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  canvas.dataset.points = String(state.points.length);
  const priced = state.points.filter((p) => p.price !== null);
  if (priced.length === 0) return;
  const ticks = state.points.map((p) => p.tick);
  const prices = priced.map((p) => p.price);
  const t0 = Math.min(...ticks), t1 = Math.max(...ticks, t0 + 1);
  let lo = Math.min(...prices), hi = Math.max(...prices);
  if (hi - lo < 1e-9) { lo -= 1; hi += 1; }
  const pad = 30, w = canvas.width - 2 * pad, h = canvas.height - 2 * pad;
  const x = (t) => pad + (w * (t - t0)) / (t1 - t0);
  const y = (p) => pad + h - (h * (p - lo)) / (hi - lo);
  ctx.strokeStyle = "#ccc";
  ctx.strokeRect(pad, pad, w, h);
  ctx.fillStyle = "#444";
  ctx.font = "12px sans-serif";
  ctx.fillText(hi.toFixed(2), 2, pad);
  ctx.fillText(lo.toFixed(2), 2, pad + h);
  ctx.strokeStyle = "#1565c0";
  ctx.lineWidth = 2;
  ctx.beginPath();
  priced.forEach((p, i) => (i === 0 ? ctx.moveTo(x(p.tick), y(p.price)) : ctx.lineTo(x(p.tick), y(p.price))));
  ctx.stroke();
}

function watch(id) {
  if (state.socket) state.socket.close();
  state.watching = id;
  state.points = [];
  draw();
  $("watching").textContent = "— " + id;
  const protocols = ["mesa-llm"];
  if (state.token) protocols.push("bearer." + state.token);
  const url = "ws://" + location.host + "/api/simulations/" + encodeURIComponent(id) + "/stream?events=trade";
  const socket = new WebSocket(url, protocols);
  state.socket = socket;
  socket.addEventListener("message", (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "state_update") {
      const goods = message.data.environment.goods;
      const good = Object.keys(goods)[0];
      const price = good === undefined ? null : goods[good].last_price;
      const last = state.points[state.points.length - 1];
      if (!last || last.tick !== message.tick) state.points.push({ tick: message.tick, price });
      if (state.points.length > 2000) state.points.shift();
      draw();
      $("status").textContent = "step " + message.tick + " / " + message.data.environment.max_steps + " — " +
        message.data.environment.status + (good === undefined ? "" : " — " + good + " last price " + (price === null ? "none yet" : price));
    } else if (message.type === "simulation_end") {
      $("status").textContent += " — ended (" + message.status + ")";
      refresh();
    } else if (message.type === "error") {
      say(message.error, true);
    }
  });
  socket.addEventListener("close", () => { if (state.socket === socket) state.socket = null; });
}

async function start(event) {
  event.preventDefault();
  const body = { scenario: $("scenario").value, seed: Number($("seed").value || 0) };
  if ($("steps").value) body.steps = Number($("steps").value);
  try {
    const sim = await api("POST", "/api/simulations", body);
    watch(sim.id);
    await api("POST", "/api/simulations/" + encodeURIComponent(sim.id) + "/run", { rate: Number($("rate").value || 0) });
    say("started " + sim.id + " (" + sim.scenario + ", seed " + sim.seed + ")", false);
  } catch (e) {
    say(e.message, true);
  }
  refresh();
}

let timer = null;

async function init() {
  const health = await api("GET", "/api/health");
  if (health.token_required) {
    $("auth").hidden = false;
    $("token").value = state.token;
  }
  if (health.token_required && !state.token) { say("enter the server's token", true); return; }
  try { await loadScenarios(); } catch (e) { say(e.message, true); return; }
  say("", false);
  refresh();
  if (timer === null) timer = setInterval(refresh, 2000);
}

document.addEventListener("DOMContentLoaded", () => {
  $("save-token").addEventListener("click", () => {
    state.token = $("token").value.trim();
    sessionStorage.setItem("mesa-llm-token", state.token);
    init().catch((e) => say(e.message, true));
  });
  $("start").addEventListener("submit", start);
  init().catch((e) => say(e.message, true));
});
