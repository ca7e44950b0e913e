// The admin's pages: plain JavaScript over the JSON API (no framework, no CDN).
"use strict";

const state = { csrf: null, role: "viewer", stream: null };
const $ = (selector) => document.querySelector(selector);

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

async function api(method, path, body) {
  const headers = {};
  if (state.csrf) headers["X-CSRF-Token"] = state.csrf;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({ error: response.statusText }));
  if (response.status === 401 && path !== "/login") showLogin();
  return { status: response.status, data };
}

function showLogin(message) {
  $("#app").hidden = true;
  $("#who").hidden = true;
  $("#login").hidden = false;
  $("#login-error").textContent = message || "";
  if (state.stream) { state.stream.close(); state.stream = null; }
}

function showApp(session) {
  state.csrf = session.csrf;
  state.role = session.role;
  $("#login").hidden = true;
  $("#app").hidden = false;
  $("#who").hidden = false;
  $("#who-user").textContent = session.user;
  $("#who-role").textContent = session.role;
  document.querySelectorAll(".operator").forEach((button) => {
    button.disabled = session.role !== "operator";
  });
  refreshServices();
  openLogStream();
  loadConfig();
  loadPlugins();
  loadProcess();
}

function since(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString();
}

async function refreshServices() {
  const { status, data } = await api("GET", "/api/services");
  if (status !== 200) return;
  const body = $("#services tbody");
  body.replaceChildren();
  for (const service of data.services) {
    const row = element("tr");
    row.dataset.service = service.name;
    row.append(element("td", service.name), element("td", service.kind));
    row.append(element("td", service.state, `state state-${service.state}`));
    row.append(element("td", since(service.since)));
    row.append(element("td", service.endpoints.join(" "), "endpoints"));
    const actions = element("td");
    for (const action of ["stop", "start", "restart"]) {
      const button = element("button", action);
      button.type = "button";
      button.dataset.action = action;
      button.setAttribute("aria-label", `${action} ${service.name}`);
      button.disabled = state.role !== "operator"
        || (action === "start") === (service.state === "running");
      button.addEventListener("click", () => act(service.name, action));
      actions.append(button);
    }
    row.append(actions);
    body.append(row);
  }
}

async function act(name, action) {
  $("#services-error").textContent = "";
  const { status, data } = await api("POST", `/api/services/${encodeURIComponent(name)}/${action}`);
  if (status !== 200) $("#services-error").textContent = data.error;
  refreshServices();
}

function openLogStream() {
  if (state.stream) state.stream.close();
  const list = $("#log-lines");
  list.replaceChildren();
  const level = $("#log-level").value;
  const query = $("#log-search").value;
  const params = new URLSearchParams({ level });
  if (query) params.set("q", query);
  const stream = new EventSource(`/api/logs/stream?${params}`);
  state.stream = stream;
  $("#log-state").textContent = "";
  stream.onmessage = (event) => {
    const line = JSON.parse(event.data);
    const item = element("li", `${new Date(line.time * 1000).toLocaleTimeString()} `
      + `${line.level.toUpperCase()} ${line.logger}: ${line.message}`, `level-${line.level}`);
    const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
    list.append(item);
    while (list.children.length > 1000) list.firstElementChild.remove();
    if (atBottom) list.scrollTop = list.scrollHeight;
  };
  stream.onerror = async () => {
    if (stream !== state.stream) return;
    const { status, data } = await api("GET", `/api/logs?${params}`);
    if (status === 400) { stream.close(); $("#log-state").textContent = data.error; }
  };
}

async function loadConfig() {
  const { status, data } = await api("GET", "/api/config");
  if (status !== 200) {
    $("#config-path").textContent = data.error;
    $("#config-text").disabled = true;
    return;
  }
  $("#config-path").textContent = data.path;
  $("#config-text").value = data.text;
}

function showOutcome(status, data) {
  const problems = $("#config-problems");
  problems.replaceChildren();
  for (const problem of data.problems || []) problems.append(element("li", problem));
  $("#config-diff").textContent = data.diff || "";
  if (status !== 200) $("#config-result").textContent = data.error;
  else if (data.applied) $("#config-result").textContent = `applied: ${data.reload}`;
  else if (data.ok) $("#config-result").textContent = `ok: ${data.plan || "no changes"}`;
  else $("#config-result").textContent = "problems found";
}

async function configAction(path) {
  $("#config-result").textContent = "…";
  const body = path.endsWith("rollback") ? undefined : { text: $("#config-text").value };
  const { status, data } = await api("POST", path, body);
  showOutcome(status, data);
  if (status === 200 && !path.endsWith("check")) { await loadConfig(); refreshServices(); }
}

async function loadPlugins() {
  const { status, data } = await api("GET", "/api/plugins");
  if (status !== 200) return;
  const body = $("#plugins tbody");
  body.replaceChildren();
  for (const plugin of data.plugins) {
    const row = element("tr");
    const version = plugin.distribution ? `${plugin.distribution} ${plugin.version || ""}` : "";
    row.append(element("td", plugin.name),
      element("td", (plugin.interfaces || []).map((i) => i.split(".").pop()).join(", ")),
      element("td", plugin.source || ""), element("td", version),
      element("td", plugin.state));
    body.append(row);
  }
}

async function loadProcess() {
  const { status, data } = await api("GET", "/api/process");
  if (status !== 200) return;
  const list = $("#process");
  list.replaceChildren();
  const rows = [["pid", data.pid], ["uptime", `${Math.round(data.uptime)} s`],
    ["memory", data.rss_kib === null ? "?" : `${Math.round(data.rss_kib / 1024)} MiB`],
    ["open files", data.open_files], ["Python", data.python], ["dropins", data.dropins]];
  for (const [name, value] of rows) list.append(element("dt", name), element("dd", String(value)));
}

document.addEventListener("DOMContentLoaded", async () => {
  $("#login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const { status, data } = await api("POST", "/login", {
      user: $("#login-user").value, password: $("#login-password").value });
    if (status === 200) { $("#login-password").value = ""; showApp(data); }
    else showLogin(data.error);
  });
  $("#logout").addEventListener("click", async () => {
    await api("POST", "/logout");
    state.csrf = null;
    showLogin();
  });
  $("#log-level").addEventListener("change", openLogStream);
  let typing = null;
  $("#log-search").addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(openLogStream, 300);
  });
  $("#config-check").addEventListener("click", () => configAction("/api/config/check"));
  $("#config-apply").addEventListener("click", () => configAction("/api/config/apply"));
  $("#config-rollback").addEventListener("click", () => configAction("/api/config/rollback"));
  $("#config-reload").addEventListener("click", loadConfig);
  setInterval(() => { if (!$("#app").hidden) { refreshServices(); loadProcess(); } }, 3000);
  const { status, data } = await api("GET", "/api/session");
  if (status === 200) showApp(data);
});
