// Small DOM and formatting helpers. Text always goes in as text nodes (no markup strings), and no
// style attribute is ever set (the Content-Security-Policy forbids them): widths go through
// element.style, which it allows.

export function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  add(el, kids);
  return el;
}

function add(el, kids) {
  for (const kid of kids.flat(Infinity)) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : String(kid));
  }
}

export function fill(el, ...kids) {
  el.replaceChildren();
  add(el, kids);
  return el;
}

export function link(href, text, attrs) {
  return h("a", { href, ...attrs }, text);
}

export function badge(text, kind) {
  return h("span", { class: `badge ${kind || text}` }, text);
}

// A bar of used against total (fraction shown as text too, for tests and screen readers).
export function bar(used, total, label) {
  const share = total > 0 ? Math.min(1, used / total) : 0;
  const fillEl = h("div", { class: share > 0.9 ? "fill hot" : share > 0.75 ? "fill warm" : "fill" });
  fillEl.style.width = `${(share * 100).toFixed(1)}%`;
  return h("div", { class: "barbox", title: `${Math.round(share * 100)}%` },
    h("div", { class: "bar" }, fillEl), h("span", { class: "barlabel" }, label));
}

export function card(title, value, detail, attrs) {
  return h("div", { class: "card", ...attrs }, h("div", { class: "card-title" }, title),
    h("div", { class: "card-value" }, value),
    detail ? h("div", { class: "card-detail" }, detail) : null);
}

export function table(columns, rows, attrs) {
  return h("table", attrs || {},
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", {}, c)))),
    h("tbody", {}, rows));
}

export const fmt = {
  mib(v) {
    if (v === null || v === undefined) return "–";
    return v >= 10240 ? `${(v / 1024).toFixed(1)} GiB` : `${Math.round(v)} MiB`;
  },
  pct(v) { return v === null || v === undefined ? "–" : `${Math.round(v * 100)}%`; },
  num(v, digits = 2) { return v === null || v === undefined ? "–" : Number(v).toFixed(digits); },
  secs(v) { return v === null || v === undefined ? "–" : `${Number(v).toFixed(1)} s`; },
  time(ts) {
    if (!ts) return "–";
    const d = new Date(ts * 1000);
    return d.toLocaleTimeString([], { hour12: false });
  },
  datetime(ts) {
    if (!ts) return "–";
    const d = new Date(ts * 1000);
    return `${d.toLocaleDateString()} ${d.toLocaleTimeString([], { hour12: false })}`;
  },
  bytes(v) {
    if (v === null || v === undefined) return "–";
    const units = ["B", "KiB", "MiB", "GiB"];
    let i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
    return `${v.toFixed(i ? 1 : 0)} ${units[i]}`;
  },
};

// Calls fn at most once per `ms`, the last call winning (lists reload once per burst).
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

// A modal dialog; resolves true when confirmed.
export function confirmDialog(title, body, action = "Confirm", danger = false) {
  return new Promise((resolve) => {
    const close = (answer) => { overlay.remove(); resolve(answer); };
    const overlay = h("div", { class: "overlay" },
      h("div", { class: "dialog", role: "dialog", "aria-label": title },
        h("h3", {}, title), h("div", { class: "dialog-body" }, body),
        h("div", { class: "actions" },
          h("button", { class: "secondary", onclick: () => close(false) }, "Cancel"),
          h("button", { class: danger ? "danger" : "primary", "data-testid": "confirm",
            onclick: () => close(true) }, action))));
    document.body.append(overlay);
  });
}

// A form in a modal: resolves with the values, or null when cancelled.
export function formDialog(title, fields, action) {
  return new Promise((resolve) => {
    const inputs = {};
    const rows = fields.map((f) => {
      let input;
      if (f.type === "select") {
        input = h("select", { name: f.name }, f.options.map((o) =>
          h("option", { value: o, selected: o === f.value }, o)));
      } else if (f.type === "checkbox") {
        input = h("input", { type: "checkbox", name: f.name, checked: f.value });
      } else {
        input = h("input", { type: f.type || "text", name: f.name, value: f.value ?? "",
          placeholder: f.placeholder || "", required: f.required });
      }
      inputs[f.name] = [input, f];
      return h("label", {}, h("span", {}, f.label), input);
    });
    const form = h("form", { class: "dialog", onsubmit: (e) => {
      e.preventDefault();
      const out = {};
      for (const [name, [input, f]] of Object.entries(inputs)) {
        if (f.type === "checkbox") out[name] = input.checked;
        else if (f.type === "number") { if (input.value !== "") out[name] = Number(input.value); }
        else out[name] = input.value;
      }
      overlay.remove();
      resolve(out);
    } }, h("h3", {}, title), rows,
    h("div", { class: "actions" },
      h("button", { type: "button", class: "secondary",
        onclick: () => { overlay.remove(); resolve(null); } }, "Cancel"),
      h("button", { type: "submit", class: "primary", "data-testid": "submit" }, action)));
    const overlay = h("div", { class: "overlay" }, form);
    document.body.append(overlay);
    form.querySelector("input,select")?.focus();
  });
}

// A transient message at the bottom of the page.
export function toast(text, kind = "info") {
  const el = h("div", { class: `toast ${kind}`, role: "status" }, text);
  document.getElementById("toasts").append(el);
  setTimeout(() => el.remove(), kind === "error" ? 8000 : 4000);
}
