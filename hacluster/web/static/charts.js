// Monitoring charts (uPlot, vendored): a host's or a VM's history, an hour at 5 s or a day
// at one minute, fetched from the host that keeps it. An empty or unreachable history says
// why instead of drawing nothing.

import { api } from "./core.js";
import { fill, h } from "./dom.js";

const COLORS = ["#2f6fde", "#d9822b", "#1f9d55", "#b83280"];

function plot(container, title, labels, unit, max) {
  const width = Math.max(320, Math.min(container.clientWidth || 480, 640) - 8);
  const opts = {
    title, width, height: 170,
    scales: { x: { time: true }, y: max ? { range: [0, max] } : { range: (u, lo, hi) => [0, Math.max(hi, 1)] } },
    series: [{}, ...labels.map((label, i) => ({
      label, stroke: COLORS[i % COLORS.length], width: 1.5,
      value: (u, v) => (v === null || v === undefined ? "–" : `${v.toFixed(1)} ${unit}`),
    }))],
    axes: [{}, { size: 60, values: (u, vals) => vals.map((v) => `${v}${unit === "%" ? "%" : ""}`) }],
  };
  // eslint-disable-next-line no-undef
  return new uPlot(opts, [[], ...labels.map(() => [])], container);
}

// A panel of charts for one subject; refresh() reloads its history.
export function historyPanel(path, specs) {
  let range = "1h";
  const note = h("p", { class: "muted", "data-testid": "chart-note" });
  const boxes = specs.map(() => h("div", { class: "chart" }));
  const plots = [];
  const buttons = ["1h", "1d"].map((r) => h("button", {
    class: r === range ? "small active" : "small secondary",
    onclick: () => {
      range = r;
      for (const b of buttons) b.className = b.textContent === range ? "small active" : "small secondary";
      refresh();
    },
  }, r));
  const el = h("section", { class: "panel charts", "data-testid": "charts" },
    h("div", { class: "panel-head" }, h("h3", {}, "Monitoring"), h("span", {}, buttons)),
    note, h("div", { class: "chart-row" }, boxes));

  async function refresh() {
    let data;
    try {
      data = await api("GET", `${path}?range=${range}`);
    } catch (err) {
      note.textContent = `No charts: ${err.message}`;
      note.className = "error";
      return;
    }
    note.className = "muted";
    note.textContent = data.t.length
      ? `${data.t.length} samples every ${data.step} s from ${data.host}`
      : `no samples yet: ${data.host} samples every 5 s`;
    specs.forEach((spec, i) => {
      if (!plots[i]) {
        fill(boxes[i]);
        plots[i] = plot(boxes[i], spec.title, spec.series.map((s) => s.label), spec.unit, spec.max);
      }
      plots[i].setData([data.t, ...spec.series.map((s) => data.series[s.key] || [])]);
    });
  }
  return { el, refresh, destroy: () => plots.forEach((p) => p.destroy()) };
}
