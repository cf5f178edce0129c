// A VM's serial console on its page, opened on demand: the last lines, then what it prints
// (polled with the offset of the previous answer, once a second while the tab is visible),
// and a line to type into it (operators only: the API's Console needs that role). Built
// once per page and kept across redraws, so typing survives the live stream's updates.

import { api } from "./core.js";
import { h } from "./dom.js";

const KEEP = 200_000; // characters of output kept on screen

export function serialPanel(name) {
  const path = `/vms/${encodeURIComponent(name)}/console`;
  const out = h("pre", { class: "serial", "data-testid": "serial-output" });
  const note = h("p", { class: "muted", "data-testid": "serial-note" }, "…");
  const line = h("input", { type: "text", placeholder: "a line to type into the console", "data-testid": "serial-input" });
  let offset = null, host = null, busy = false, timer = null, pending = "", quietUntil = 0;

  function show(reply) {
    if (reply.host !== host) {
      if (host !== null) out.textContent += `\n--- now on ${reply.host} ---\n`;
      host = reply.host;
      note.textContent = `on ${host}`;
    }
    out.textContent = (out.textContent + reply.text).slice(-KEEP);
    offset = reply.offset;
    if (reply.text) out.scrollTop = out.scrollHeight;
  }

  async function poll() {
    if (busy || document.hidden || (Date.now() < quietUntil && !pending)) return;
    busy = true;
    const typed = pending;
    pending = "";
    try {
      if (offset === null) show(await api("GET", `${path}?tail=50`));
      else if (typed) show(await api("POST", path, { input: typed, after: offset }));
      else show(await api("GET", `${path}?after=${offset}`));
      note.className = "muted";
      quietUntil = 0;
    } catch (err) {
      note.textContent = err.message;
      note.className = "error";
      quietUntil = Date.now() + 10_000; // no console (yet): ask again in a while
      if (err.status === 409 || err.status === 404) offset = null; // not running, or moved
    } finally {
      busy = false;
    }
  }

  function send(event) {
    event.preventDefault();
    pending += `${line.value}\n`;
    line.value = "";
    poll();
  }

  const form = h("form", { class: "serial-input", onsubmit: send }, line,
    h("button", { class: "secondary" }, "Send"));
  const body = h("div", {}, h("button", {
    class: "secondary", "data-testid": "serial-open",
    onclick: () => { body.replaceChildren(note, out, form); start(); },
  }, "Open console"));
  function start() { if (!timer) { poll(); timer = setInterval(poll, 1000); } }
  return {
    el: h("section", { class: "panel" }, h("h3", {}, "Serial console"), body),
    stop() { clearInterval(timer); timer = null; },
  };
}
