// An incident as one timeline: the host's last heartbeat, when it was declared down, when
// and how it was fenced, then for each of its HA VMs when it was placed and when it ran
// again. SVG built element by element (no markup strings); colours come from app.css.

const NS = "http://www.w3.org/2000/svg";

function el(tag, attrs, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

export function timeline(incident, now) {
  const t0 = incident.last_heard || incident.declared_at;
  const times = [incident.declared_at, incident.fenced_at, incident.returned_at,
    ...incident.vms.flatMap((v) => [v.placed_at, v.running_at])].filter(Boolean);
  let t1 = Math.max(t0 + 1, ...times);
  if (incident.open) t1 = Math.max(t1, now);
  const left = 150, right = 30, rowH = 26, top = 30;
  const width = 900;
  const rows = 1 + incident.vms.length;
  const height = top + rows * rowH + 30;
  const x = (t) => left + ((t - t0) / (t1 - t0)) * (width - left - right);
  // a note beside its marker: to the right, or to the left near the right edge
  const note = (t, y, text) => {
    const near = x(t) > width - 260;
    return el("text", { x: x(t) + (near ? -9 : 9), y, class: "note",
      "text-anchor": near ? "end" : "start" }, text);
  };
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, class: "timeline",
    role: "img", "aria-label": `incident ${incident.id} timeline`, "data-testid": "timeline" });

  // axis: seconds since the last heartbeat
  const span = t1 - t0;
  const step = [0.5, 1, 2, 5, 10, 30, 60, 300, 600, 1800, 3600].find((s) => span / s <= 10) || 7200;
  for (let s = 0; s <= span + 1e-9; s += step) {
    svg.append(el("line", { x1: x(t0 + s), x2: x(t0 + s), y1: top - 8, y2: height - 24, class: "grid" }));
    svg.append(el("text", { x: x(t0 + s), y: height - 8, class: "tick" }, `${+s.toFixed(1)}s`));
  }

  // the host's row
  const hy = top + rowH / 2;
  svg.append(el("text", { x: 8, y: hy + 4, class: "label" }, incident.host));
  const declared = incident.declared_at || t1;
  svg.append(el("line", { x1: x(t0), x2: x(declared), y1: hy, y2: hy, class: "silent" }));
  if (incident.fenced_at) {
    svg.append(el("line", { x1: x(declared), x2: x(incident.fenced_at), y1: hy, y2: hy, class: "fencing" }));
  } else if (incident.open) {
    svg.append(el("line", { x1: x(declared), x2: x(t1), y1: hy, y2: hy, class: "fencing" }));
  }
  const mark = (t, cls, label) => {
    if (!t) return;
    svg.append(el("circle", { cx: x(t), cy: hy, r: 5, class: cls }));
    svg.append(note(t, hy - 8, label));
  };
  mark(incident.last_heard, "heard", "last heard");
  mark(incident.declared_at, "down", "declared down");
  mark(incident.fenced_at, "fenced", `fenced (${incident.fenced_by || "?"})`);
  mark(incident.returned_at, "returned", "back");

  // one row per VM: waiting for a host, then starting, then running
  incident.vms.forEach((vm, i) => {
    const y = top + (i + 1) * rowH + rowH / 2;
    svg.append(el("text", { x: 8, y: y + 4, class: "label" }, vm.name));
    const from = incident.fenced_at || declared;
    if (vm.placed_at) {
      svg.append(el("line", { x1: x(from), x2: x(vm.placed_at), y1: y, y2: y, class: "waiting" }));
      svg.append(el("line", { x1: x(vm.placed_at), x2: x(vm.running_at || t1), y1: y, y2: y, class: "starting" }));
    } else if (incident.fenced_at) {
      svg.append(el("line", { x1: x(from), x2: x(t1), y1: y, y2: y, class: "waiting" }));
    }
    if (vm.running_at) {
      svg.append(el("circle", { cx: x(vm.running_at), cy: y, r: 5, class: "running" }));
      svg.append(note(vm.running_at, y + 4, `running on ${vm.host} after ${vm.seconds_to_running}s`));
    } else if (vm.placed_at) {
      svg.append(note(vm.placed_at, y - 6, `placed on ${vm.host}`));
    }
  });
  return svg;
}
