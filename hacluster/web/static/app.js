// The console's core: the JSON API, the one live stream per tab, the router and the frame
// (header, navigation, login). Pages live in pages.js and more.js; each is an object with
// render(root, params) and, optionally, delta(d), live(l), event(e) and reset().

import { api, ApiError, can, hooks, S } from "./core.js";
import { fill, fmt, h, link } from "./dom.js";
import { PAGES } from "./pages.js";

let current = null; // the page on screen

// ---- the live stream --------------------------------------------------------------------

function alive(message) {
  S.lastMessage = Date.now();
  if (message && message.lastEventId) S.lastId = message.lastEventId;
  if (S.staleSince) { S.staleSince = null; }
  drawLive();
}

function connect() {
  if (S.es) S.es.close();
  const es = new EventSource(`/api/v1/live${S.lastId ? `?last=${encodeURIComponent(S.lastId)}` : ""}`);
  S.es = es;
  const on = (type, fn) => es.addEventListener(type, (m) => { alive(m); fn(JSON.parse(m.data)); });
  on("hello", () => {});
  on("delta", applyDelta);
  on("live", applyLive);
  on("event", (e) => {
    S.events.unshift(e);
    S.events.length = Math.min(S.events.length, 500);
    current?.event?.(e);
  });
  on("reset", () => { current?.reset?.(); refreshSummary(); });
  on("end", () => { es.close(); setTimeout(recover, 1000); });
  es.onerror = () => {
    if (es.readyState === EventSource.CLOSED) setTimeout(recover, 2000);
  };
}

async function recover() {
  try {
    await loadSession();
    connect();
  } catch {
    setTimeout(recover, 3000);
  }
}

function applyDelta(d) {
  if (d.summary) S.summary = d.summary;
  drawBadges();
  current?.delta?.(d);
}

function applyLive(l) {
  S.status = l.status;
  S.members = l.members;
  S.live = l.hosts;
  drawBadges();
  current?.live?.(l);
}

function drawLive() {
  const el = document.getElementById("live");
  if (!el) return;
  if (S.staleSince) {
    el.className = "live live-stale";
    el.textContent = `stale since ${fmt.time(S.staleSince / 1000)}`;
  } else {
    el.className = "live live-ok";
    el.textContent = "live";
  }
}

setInterval(() => {
  if (S.lastMessage && !S.staleSince && Date.now() - S.lastMessage > 5000) {
    S.staleSince = S.lastMessage;
    drawLive();
  }
}, 1000);

async function refreshSummary() {
  try {
    S.summary = await api("GET", "/summary");
    drawBadges();
  } catch { /* shown by the stale indicator */ }
}

function drawBadges() {
  const el = document.getElementById("badges");
  if (!el || !S.summary) return;
  const s = S.summary;
  const up = (s.hosts_by_status.up || 0);
  const leader = S.status ? S.status.leader : null;
  fill(el,
    h("span", { class: "pill", title: "leader" }, `leader ${leader || "none"}`),
    S.status && !S.status.quorum ? h("span", { class: "pill bad" }, "no quorum") : null,
    h("span", { class: up < s.hosts ? "pill warn" : "pill" }, `${up}/${s.hosts} hosts up`),
    s.incidents_open ? link("#/incidents", `${s.incidents_open} open incident(s)`,
      { class: "pill bad", "data-testid": "incident-badge" }) : null,
    s.alarms && s.alarms.active ? link("#/alarms", `${s.alarms.active} alarm(s)`
      + (s.alarms.unacknowledged ? `, ${s.alarms.unacknowledged} new` : ""),
    { class: s.alarms.critical ? "pill bad" : "pill warn", "data-testid": "alarm-badge" }) : null);
}

// ---- frame, login, routing ----------------------------------------------------------------

const NAV = [["#/", "Dashboard"], ["#/hosts", "Hosts"], ["#/vms", "VMs"],
  ["#/alarms", "Alarms"], ["#/incidents", "Incidents"], ["#/operations", "Operations"], ["#/events", "Events"],
  ["#/rules", "Rules"], ["#/storage", "Storage"], ["#/balance", "Balancing"], ["#/policy", "Policy"],
  ["#/tokens", "Access", "admin"]];

function frame() {
  const who = S.me;
  fill(document.getElementById("app"),
    h("header", {},
      h("a", { class: "brand", href: "#/" }, "hacluster"),
      h("span", { id: "badges" }),
      h("span", { class: "spacer" }),
      h("span", { id: "live", class: "live", "data-testid": "live" }, "connecting"),
      h("span", { class: "who", "data-testid": "who" },
        `${who.user} (${who.role}) · via ${who.member}`),
      h("button", { class: "secondary small", onclick: logout }, "Log out")),
    h("nav", {}, NAV.filter(([, , role]) => !role || can(role)).map(([href, text]) =>
      h("a", { href, "data-nav": href }, text))),
    h("main", { id: "main" }));
  drawBadges();
  drawLive();
}

async function logout() {
  try { await api("DELETE", "/session"); } catch { /* gone already */ }
  S.es?.close();
  S.me = null;
  showLogin("logged out");
}

function showLogin(message) {
  S.es?.close();
  S.me = null;
  const error = h("p", { class: "error", "data-testid": "login-error" }, message || "");
  const submit = async (body) => {
    try {
      await api("POST", "/session", body);
      await start();
    } catch (err) {
      error.textContent = err.message;
    }
  };
  const token = h("input", { type: "password", name: "token", placeholder: "hat_...",
    autocomplete: "off" });
  const user = h("input", { name: "user", autocomplete: "username" });
  const password = h("input", { type: "password", name: "password",
    autocomplete: "current-password" });
  fill(document.getElementById("app"),
    h("div", { class: "login" },
      h("h1", {}, "hacluster"),
      error,
      h("form", { "data-testid": "token-login", onsubmit: (e) => {
        e.preventDefault(); submit({ token: token.value.trim() });
      } }, h("label", {}, h("span", {}, "API token"), token),
      h("button", { class: "primary" }, "Log in with token")),
      h("form", { onsubmit: (e) => {
        e.preventDefault(); submit({ user: user.value, password: password.value });
      } }, h("label", {}, h("span", {}, "User"), user),
      h("label", {}, h("span", {}, "Password"), password),
      h("button", { class: "primary" }, "Log in"))));
}

async function loadSession() {
  const me = await api("GET", "/session");
  S.me = me;
  S.csrf = me.csrf;
  return me;
}

function route() {
  if (!S.me) return;
  const hash = location.hash || "#/";
  const [path, query] = hash.slice(1).split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const params = Object.fromEntries(new URLSearchParams(query || ""));
  let name = parts[0] || "dashboard";
  if (parts.length > 1) name = `${name}/item`;
  const page = PAGES[name];
  for (const a of document.querySelectorAll("nav a")) {
    a.classList.toggle("active", a.dataset.nav === `#/${parts[0] || ""}`);
  }
  current?.leave?.();
  const main = document.getElementById("main");
  if (!page) {
    current = null;
    fill(main, h("h2", {}, "Not found"), link("#/", "Back to the dashboard"));
    return;
  }
  current = page(parts[1], params);
  fill(main);
  current.render(main).catch((err) => {
    if (err instanceof ApiError && err.status === 401) return;
    fill(main, h("h2", {}, "Cannot show this page"), h("p", { class: "error" }, err.message));
  });
}

async function start() {
  await loadSession();
  frame();
  await refreshSummary();
  connect();
  route();
}

hooks.unauthorized = showLogin;
window.addEventListener("hashchange", route);
start().catch((err) => showLogin(err.status === 401 ? "" : err.message));
