// The inventory pages: dashboard, hosts, a host, VMs, a VM. Each page loads what it shows
// once, then follows the live stream: records in a delta replace the ones on screen; a
// list reloads only its current page, and only when a change may have altered it.

import { historyPanel } from "./charts.js";
import { act, api, can, mergeEvents, recentEvents, S } from "./core.js";
import {
  badge, bar, card, confirmDialog, debounce, fill, fmt, formDialog, h, link, table, toast,
} from "./dom.js";
import { MORE } from "./more.js";
import { serialPanel } from "./serial.js";

const enc = encodeURIComponent;

// ---- shared pieces ------------------------------------------------------------------------

function hostStatus(host) {
  return [badge(host.status), host.maintenance ? badge("maintenance", "warn") : null];
}

function liveOf(host) {
  return S.live[host.name] || {};
}

function hostRow(host) {
  const live = liveOf(host);
  const cpu = live.cpu_load ?? host.cpu_load;
  const capacity = host.memory_allocated_mib + host.memory_free_mib;
  return h("tr", { "data-host": host.name },
    h("td", {}, link(`#/hosts/${enc(host.name)}`, host.name)),
    h("td", {}, hostStatus(host)),
    h("td", { class: "num" }, host.vms.length),
    h("td", {}, bar(cpu ?? 0, 1, fmt.pct(cpu))),
    h("td", {}, bar(host.memory_allocated_mib, capacity,
      `${fmt.mib(host.memory_allocated_mib)} / ${fmt.mib(capacity)}`)),
    h("td", { class: "num" }, `${host.vcpus_allocated} / ${host.cpus}`),
    h("td", { class: "num" }, fmt.secs(live.last_heard_ago ?? host.last_heard_ago)),
    h("td", { class: "num" }, fmt.num(live.heartbeat_rtt_ms ?? host.heartbeat_rtt_ms, 1)));
}

const HOST_COLUMNS = ["Host", "Status", "VMs", "CPU load", "Memory allocated", "vCPUs / CPUs",
  "Last heard", "Heartbeat ms"];

function vmRow(vm) {
  return h("tr", { "data-vm": vm.name },
    h("td", {}, link(`#/vms/${enc(vm.name)}`, vm.name)),
    h("td", {}, badge(vm.status)),
    h("td", {}, vm.host ? link(`#/hosts/${enc(vm.host)}`, vm.host) : "–",
      vm.migrating_to ? ` → ${vm.migrating_to}` : ""),
    h("td", { class: "num" }, vm.vcpus), h("td", { class: "num" }, fmt.mib(vm.memory_mib)),
    h("td", { class: "num" }, vm.disk_gib), h("td", {}, vm.ha ? "yes" : "no"),
    h("td", { class: "num" }, vm.priority));
}

const VM_COLUMNS = [["name", "Name"], ["status", "Status"], ["host", "Host"],
  ["vcpus", "vCPUs"], ["memory_mib", "Memory"], ["disk_gib", "Disk GiB"], [null, "HA"],
  ["priority", "Priority"]];

function eventList(events, limit) {
  return h("ul", { class: "events", "data-testid": "events" }, events.slice(0, limit).map((e) =>
    h("li", {}, h("time", {}, fmt.time(e.ts)), " ", h("span", { class: "kind" }, e.kind), " ",
      e.message)));
}

function whatIfTable(result) {
  const rows = result.vms.map((v) => h("tr", { "data-vm": v.name, class: v.target ? "" : "stranded" },
    h("td", {}, link(`#/vms/${enc(v.name)}`, v.name)),
    h("td", {}, v.target ? link(`#/hosts/${enc(v.target)}`, v.target) : badge("no host", "bad")),
    h("td", {}, v.reason)));
  if (!rows.length) return h("p", { class: "muted" }, `${result.host} runs no VMs.`);
  return table(["VM", "Would run on", "Why"], rows, { "data-testid": "what-if" });
}

// ---- dashboard ----------------------------------------------------------------------------

function dashboard() {
  let root, hosts = [], incidents = [], events = [];
  const reload = debounce(async () => {
    [hosts, incidents] = await Promise.all([api("GET", "/hosts"), api("GET", "/incidents")]);
    draw();
  }, 400);

  function draw() {
    const s = S.summary;
    const st = S.status || {};
    const up = s.hosts_by_status.up || 0;
    const open = incidents.filter((i) => i.open);
    fill(root,
      h("h2", {}, "Dashboard"),
      h("div", { class: "cards" },
        card("Leader", st.leader || "none", st.term ? `term ${st.term}` : "", { "data-testid": "card-leader" }),
        card("Quorum", st.quorum === false ? "lost" : "yes",
          S.members.length ? `${S.members.filter((m) => m.connected).length}/${S.members.length} members connected` : ""),
        card("Hosts up", `${up} / ${s.hosts}`,
          Object.entries(s.hosts_by_status).map(([k, v]) => `${v} ${k}`).join(", "),
          { "data-testid": "card-hosts" }),
        card("VMs", s.vms, h("span", {}, Object.entries(s.vms_by_status).map(([k, v]) =>
          h("span", { class: "chip" }, badge(k), ` ${v}`))), { "data-testid": "card-vms" }),
        card("Failures tolerated", s.failures_tolerated ?? "…",
          "host failures the cluster can absorb now with every HA VM restarted",
          { "data-testid": "card-tolerated" }),
        card("Open incidents", open.length, open.map((i) =>
          link(`#/incidents/${i.id}`, `${i.host} `))),
        card("Alarms", link("#/alarms", String(s.alarms ? s.alarms.active : 0)),
          s.alarms && s.alarms.active ? `${s.alarms.unacknowledged} not acknowledged, ${s.alarms.critical} critical` : "none active",
          { "data-testid": "card-alarms" }),
      ),
      h("div", { class: "cards" },
        card("Memory allocated", bar(s.memory_mib.allocated, s.memory_mib.capacity,
          `${fmt.mib(s.memory_mib.allocated)} / ${fmt.mib(s.memory_mib.capacity)}`)),
        card("vCPUs allocated", bar(s.vcpus.allocated, s.vcpus.capacity,
          `${s.vcpus.allocated} / ${s.vcpus.capacity}`)),
        card("Disk allocated", bar(s.disk_gib.allocated, s.disk_gib.capacity,
          `${s.disk_gib.allocated} / ${s.disk_gib.capacity} GiB`))),
      h("section", { class: "panel" }, h("h3", {}, "Hosts"),
        table(HOST_COLUMNS, hosts.map(hostRow), { "data-testid": "hosts" })),
      h("section", { class: "panel" }, h("h3", {}, "Recent events"), eventList(events, 12)));
  }

  return {
    async render(main) {
      root = main;
      let backlog;
      [S.summary, hosts, incidents, backlog] = await Promise.all([api("GET", "/summary"),
        api("GET", "/hosts"), api("GET", "/incidents"), recentEvents(12)]);
      events = mergeEvents(backlog);
      draw();
    },
    delta(d) {
      if (d.hosts || (d.views || []).includes("incidents")) reload();
      else if (d.summary) draw();
    },
    live() { draw(); },
    event(e) { events.unshift(e); draw(); },
    reset() { reload(); },
  };
}

// ---- hosts --------------------------------------------------------------------------------

function hosts() {
  let root, list = [];
  const draw = () => fill(root, h("h2", {}, "Hosts"),
    table(HOST_COLUMNS, list.map(hostRow), { "data-testid": "hosts" }));
  return {
    async render(main) { root = main; list = await api("GET", "/hosts"); draw(); },
    delta(d) {
      if (!d.hosts) return;
      for (const [name, host] of Object.entries(d.hosts)) {
        const i = list.findIndex((x) => x.name === name);
        if (host && i >= 0) list[i] = host;
        else if (host) list.push(host);
        else if (i >= 0) list.splice(i, 1);
      }
      draw();
    },
    live() { draw(); },
    async reset() { list = await api("GET", "/hosts"); draw(); },
  };
}

function hostPage(name) {
  let root, host, vms = [], whatIf = null, whatIfError = null;
  const charts = historyPanel(`/hosts/${enc(name)}/history`, [
    { title: "CPU", unit: "%", max: 100, series: [{ key: "cpu_percent", label: "busy" }] },
    { title: "Memory", unit: "MiB", series: [{ key: "memory_used_mib", label: "used" },
      { key: "memory_total_mib", label: "total" }] }]);
  const timer = setInterval(() => { if (!document.hidden) charts.refresh(); }, 10000);
  const refreshWhatIf = debounce(async () => {
    try { whatIf = await api("GET", `/hosts/${enc(name)}/what-if`); whatIfError = null; }
    catch (err) { whatIfError = err.message; }
    draw();
  }, 1000);
  const loadVms = async () => { vms = (await api("GET", `/vms?host=${enc(name)}&limit=500`)).vms; };

  async function maintenance(on) {
    if (on) {
      const plan = await api("GET", `/hosts/${enc(name)}/what-if?maintenance=true`);
      const stranded = plan.vms.filter((v) => !v.target).length;
      const ok = await confirmDialog(`Put ${name} in maintenance?`, h("div", {},
        h("p", {}, plan.vms.length
          ? `Its ${plan.vms.length} VM(s) would go as follows${stranded ? ` (${stranded} cannot move and keep running here)` : ""}:`
          : `${name} runs no VMs: nothing moves.`),
        plan.vms.length ? whatIfTable(plan) : null), "Enter maintenance");
      if (!ok) return;
    }
    await act(on ? "enter maintenance" : "exit maintenance", "POST",
      `/hosts/${enc(name)}/maintenance`, { on });
  }

  async function confirmFenced() {
    const ok = await confirmDialog(`Is ${name} really powered off?`,
      h("p", {}, "Its HA VMs restart elsewhere at once. If it is in fact still running them, they will run twice: check its power and console first."),
      "It is off: confirm fenced", true);
    if (ok) await act("confirm fenced", "POST", `/hosts/${enc(name)}/confirm-fenced`);
  }

  function draw() {
    if (!host) return;
    const live = liveOf(host);
    const capacity = host.memory_allocated_mib + host.memory_free_mib;
    const actions = [];
    if (can("operator")) {
      actions.push(host.maintenance
        ? h("button", { class: "primary", onclick: () => maintenance(false) }, "Exit maintenance")
        : h("button", { class: "primary", onclick: () => maintenance(true) }, "Enter maintenance"));
    }
    if (can("admin") && host.status === "down") {
      actions.push(h("button", { class: "danger", onclick: confirmFenced }, "Confirm fenced"));
    }
    fill(root,
      h("h2", {}, `Host ${host.name} `, hostStatus(host)),
      h("div", { class: "actions" }, actions),
      h("div", { class: "cards" },
        card("Memory allocated", bar(host.memory_allocated_mib, capacity,
          `${fmt.mib(host.memory_allocated_mib)} / ${fmt.mib(capacity)}`)),
        card("vCPUs", `${host.vcpus_allocated} / ${host.cpus} CPUs`, host.cpu_model ? `guest CPU model ${host.cpu_model}` : ""),
        card("Disk free", `${host.disk_free_gib} / ${host.disk_gib} GiB`),
        card("CPU load", fmt.pct(live.cpu_load ?? host.cpu_load)),
        card("Heartbeat", fmt.secs(live.last_heard_ago ?? host.last_heard_ago),
          `round trip ${fmt.num(live.heartbeat_rtt_ms ?? host.heartbeat_rtt_ms, 1)} ms; lease ${host.lease} s; watchdog ${host.watchdog ? `${host.watchdog} s` : "none"}`),
        host.fenced_by ? card("Fenced by", host.fenced_by) : null,
        host.watchdog_error ? card("Watchdog", host.watchdog_error) : null),
      charts.el,
      h("section", { class: "panel" }, h("h3", {}, `If ${host.name} failed now`),
        h("p", { class: "muted" }, "The leader's own placement, run on a copy of the current state; recomputed as the cluster changes."),
        whatIfError ? h("p", { class: "error" }, whatIfError) : whatIf ? whatIfTable(whatIf) : "…"),
      h("section", { class: "panel" }, h("h3", {}, `VMs on ${host.name} (${vms.length})`),
        table(VM_COLUMNS.map(([, label]) => label), vms.map(vmRow), { "data-testid": "host-vms" })));
  }

  const reloadVms = debounce(async () => { await loadVms(); draw(); }, 400);
  return {
    async render(main) {
      root = main;
      [host] = await Promise.all([api("GET", `/hosts/${enc(name)}`), loadVms()]);
      draw();
      charts.refresh();
      refreshWhatIf();
    },
    delta(d) {
      if (d.hosts && name in d.hosts && d.hosts[name]) host = d.hosts[name];
      if (d.vms || d.vms_changed || d.hosts) reloadVms();
      refreshWhatIf();
      draw();
    },
    live() { draw(); },
    reset() { this.render(root); },
    leave() { clearInterval(timer); charts.destroy(); },
  };
}

// ---- VMs ----------------------------------------------------------------------------------

function vmsPage(_, params) {
  const q = { q: params.q || "", status: params.status || "", host: params.host || "",
    sort: params.sort || "name", order: params.order || "asc", offset: Number(params.offset || 0),
    limit: 50 };
  let root, page = { total: 0, vms: [], counts: {} }, tbody, summaryEl, chipsEl;

  const query = () => new URLSearchParams(Object.entries(q).filter(([, v]) => v !== "" && v !== 0));
  async function load() {
    page = await api("GET", `/vms?${query()}`);
    history.replaceState(null, "", `#/vms?${query()}`);
    drawRows();
  }
  const reload = debounce(load, 500);

  function drawRows() {
    fill(tbody, page.vms.map(vmRow));
    const last = Math.min(q.offset + page.vms.length, page.total);
    fill(summaryEl, page.total ? `${q.offset + 1}–${last} of ${page.total}` : "no VMs match");
    const total = Object.values(page.counts).reduce((a, b) => a + b, 0);
    fill(chipsEl, [["", `all ${total}`], ...Object.entries(page.counts).sort().map(([k, v]) => [k, `${k} ${v}`])]
      .map(([status, text]) => h("button", {
        class: q.status === status ? "chip active" : "chip", "data-status": status,
        onclick: () => { q.status = status; q.offset = 0; load(); },
      }, text)));
  }

  async function create() {
    const values = await formDialog("Create a VM", [
      { name: "name", label: "Name", required: true },
      { name: "vcpus", label: "vCPUs", type: "number", value: 1 },
      { name: "memory_mib", label: "Memory (MiB)", type: "number", value: 512 },
      { name: "disks", label: "Disks (POOL:GiB, comma-separated)", placeholder: "shared:20" },
      { name: "networks", label: "Networks (comma-separated)", placeholder: "lan" },
      { name: "priority", label: "Priority", type: "number", value: 0 },
      { name: "ha", label: "HA (restart elsewhere if its host fails)", type: "checkbox", value: true },
      { name: "stopped", label: "Create it stopped", type: "checkbox", value: false }], "Create");
    if (!values) return;
    const split = (s) => s.split(",").map((x) => x.trim()).filter(Boolean);
    const disks = split(values.disks).map((d) => {
      const [pool, size] = d.split(":");
      return { pool, size_gib: Number(size) };
    });
    if (disks.some((d) => !d.pool || !Number.isInteger(d.size_gib))) {
      toast("disks are POOL:GiB, e.g. shared:20");
      return;
    }
    await act(`create ${values.name}`, "POST", "/vms", { ...values, disks, networks: split(values.networks) });
  }

  return {
    async render(main) {
      root = main;
      tbody = h("tbody");
      summaryEl = h("span", { class: "muted", "data-testid": "vm-count" });
      chipsEl = h("span", { class: "chips" });
      const search = h("input", { type: "search", placeholder: "search name or uuid", value: q.q,
        "data-testid": "vm-search",
        oninput: debounce(() => { q.q = search.value; q.offset = 0; load(); }, 250) });
      const hostsList = await api("GET", "/hosts");
      const hostSelect = h("select", { onchange: () => { q.host = hostSelect.value; q.offset = 0; load(); } },
        h("option", { value: "" }, "any host"),
        hostsList.map((x) => h("option", { value: x.name, selected: x.name === q.host }, x.name)));
      const sortHead = VM_COLUMNS.map(([key, label]) => h("th", key ? {
        class: `sortable ${q.sort === key ? q.order : ""}`,
        onclick: () => {
          q.order = q.sort === key && q.order === "asc" ? "desc" : "asc";
          q.sort = key;
          load().then(() => this.render(root));
        },
      } : {}, label));
      fill(root,
        h("h2", {}, "Virtual machines"),
        h("div", { class: "toolbar" }, search, hostSelect, chipsEl, h("span", { class: "spacer" }),
          can("operator") ? h("button", { class: "primary", onclick: create, "data-testid": "create-vm" }, "Create VM") : null),
        h("table", { "data-testid": "vms" }, h("thead", {}, h("tr", {}, sortHead)), tbody),
        h("div", { class: "pager" },
          h("button", { class: "secondary small", onclick: () => { q.offset = Math.max(0, q.offset - q.limit); load(); } }, "‹ previous"),
          summaryEl,
          h("button", { class: "secondary small", onclick: () => { if (q.offset + q.limit < page.total) { q.offset += q.limit; load(); } } }, "next ›")));
      await load();
      search.focus();
    },
    delta(d) {
      if (d.vms_changed) { reload(); return; }
      if (!d.vms) return;
      let stale = false;
      for (const [name, vm] of Object.entries(d.vms)) {
        const i = page.vms.findIndex((v) => v.name === name);
        if (i < 0 || !vm || (q.status && vm.status !== q.status) || (q.host && vm.host !== q.host)) {
          stale = true; // it may enter or leave this page: reload the page (one call)
        } else {
          page.vms[i] = vm;
        }
      }
      drawRows();
      if (stale) reload();
    },
    reset() { reload(); },
  };
}

function vmPage(name) {
  let root, vm, explain = null, rules = [], events = [], gone = false, hostNames = [];
  const charts = historyPanel(`/vms/${enc(name)}/history`, [
    { title: "CPU", unit: "%", max: 100, series: [{ key: "cpu_percent", label: "busy" }] },
    { title: "Disk and network", unit: "B/s", series: [
      { key: "disk_read_bps", label: "disk read" }, { key: "disk_write_bps", label: "disk write" },
      { key: "net_rx_bps", label: "net in" }, { key: "net_tx_bps", label: "net out" }] }]);
  const timer = setInterval(() => { if (!document.hidden && vm?.host) charts.refresh(); }, 10000);
  const serial = can("operator") ? serialPanel(name) : null;
  const reloadExplain = debounce(async () => {
    try { explain = await api("GET", `/vms/${enc(name)}/explain`); } catch { explain = null; }
    draw();
  }, 800);

  async function migrate() {
    explain = await api("GET", `/vms/${enc(name)}/explain`); // judged now, not as of the last change
    const verdicts = explain.hosts;
    const select = h("select", { "data-testid": "migrate-target" },
      h("option", { value: "" }, "best host (placement decides)"),
      hostNames.filter((x) => x !== vm.host).map((x) => h("option", { value: x }, x)));
    const check = h("p", { "data-testid": "migrate-check" });
    const judge = () => {
      const target = select.value;
      if (!target) {
        check.textContent = explain?.choice ? `placement would choose ${explain.choice}` : "placement decides when the move starts";
        check.className = "muted";
        return;
      }
      const v = verdicts.find((x) => x.host === target);
      check.textContent = !v ? "no verdict for this host" : v.eligible
        ? `${target} can take it (score ${v.score})` : `${target} cannot take it: ${v.reason}`;
      check.className = v && v.eligible ? "ok" : "error";
    };
    select.addEventListener("change", judge);
    judge();
    const ok = await confirmDialog(`Migrate ${vm.name}`, h("div", {}, h("label", {}, "To ", select), check), "Migrate");
    if (ok) await act(`migrate ${vm.name}`, "POST", `/vms/${enc(name)}/migrate`, { to: select.value });
  }

  async function remove() {
    const ok = await confirmDialog(`Delete ${vm.name}?`, h("p", {}, "It is stopped and undefined on its host; its record goes. This cannot be undone."), "Delete", true);
    if (ok && await act(`delete ${vm.name}`, "DELETE", `/vms/${enc(name)}`)) location.hash = "#/vms";
  }

  function draw() {
    if (gone) { fill(root, h("h2", {}, `VM ${name}`), h("p", { class: "error" }, "This VM was deleted.")); return; }
    if (!vm) return;
    const facts = [
      ["Status", badge(vm.status)], ["Desired state", vm.state],
      ["Host", vm.host ? link(`#/hosts/${enc(vm.host)}`, vm.host) : "–"],
      ["Observed", vm.observed], ["Last host", vm.last_host || "–"],
      ["HA", vm.ha ? "yes: restarted elsewhere if its host fails" : "no"],
      ["Priority", vm.priority], ["vCPUs", vm.vcpus], ["Memory", fmt.mib(vm.memory_mib)],
      ["CPU", vm.cpu === "host-passthrough" ? "host-passthrough: stays on identical CPUs" : "the cluster's baseline: migrates anywhere"],
      ["Disk", `${vm.disk_gib} GiB`], ["Restarts / relocations", `${vm.restarts} / ${vm.relocations}`],
      ["UUID", vm.uuid], ["Version", vm.version]];
    (vm.disks || []).forEach((d, i) => facts.push([`Disk vd${"abcdefgh"[i]}`,
      `${d.pool}/${d.volume}, ${d.size_gib} GiB${d.image ? `, a clone of ${d.image}` : ""}`]));
    (vm.nics || []).forEach((n, i) => facts.push([`NIC ${i}`, `${n.network}, ${n.mac}`]));
    if (vm.migrating_to) facts.push(["Moving to", vm.migrating_to]);
    if (vm.migration_error) facts.push(["Last move", vm.migration_error]);
    if (vm.error) facts.push(["Error", vm.error]);
    if (vm.pending_reasons.length) facts.push(["Waiting because", vm.pending_reasons.join("; ")]);
    if (vm.failures.length) facts.push(["Failures", vm.failures.join("; ")]);
    const actions = can("operator") ? [
      h("button", { class: "primary", disabled: vm.state === "started", onclick: () => act(`start ${name}`, "POST", `/vms/${enc(name)}/start`) }, "Start"),
      h("button", { class: "secondary", disabled: vm.state !== "started", onclick: () => act(`stop ${name}`, "POST", `/vms/${enc(name)}/stop`) }, "Stop"),
      h("button", { class: "secondary", disabled: !vm.host || !!vm.migrating_to, onclick: migrate, "data-testid": "migrate" }, "Migrate"),
      h("button", { class: "danger", onclick: remove }, "Delete")] : [];
    const mine = rules.filter((r) => r.vms.includes(name));
    fill(root,
      h("h2", {}, `VM ${vm.name} `, badge(vm.status)),
      h("div", { class: "actions" }, actions),
      h("dl", { class: "facts", "data-testid": "vm-facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
      vm.host ? charts.el : null,
      serial && (vm.host || vm.last_host) ? serial.el : null,
      h("section", { class: "panel" }, h("h3", {}, "Placement: every host's verdict"),
        explain ? [h("p", {}, `placement would choose ${explain.choice || "no host"} now`),
          table(["Host", "Eligible", "Score", "Why not"], explain.hosts.map((v) => h("tr", {},
            h("td", {}, v.host), h("td", {}, v.eligible ? "yes" : "no"),
            h("td", { class: "num" }, v.score ?? "–"), h("td", {}, v.reason || ""))), { "data-testid": "explain" })] : "…"),
      h("section", { class: "panel" }, h("h3", {}, "Rules"), mine.length
        ? h("ul", {}, mine.map((r) => h("li", {}, `${r.name}: ${r.strength} ${r.kind} with ${r.vms.filter((v) => v !== name).join(", ") || "–"}${r.hosts.length ? ` on ${r.hosts.join(", ")}` : ""}`)))
        : h("p", { class: "muted" }, "No rule names this VM.")),
      h("section", { class: "panel" }, h("h3", {}, "Events"),
        eventList(events.filter((e) => e.message.includes(name)), 30)));
  }

  return {
    async render(main) {
      root = main;
      let backlog;
      [vm, rules, backlog, hostNames] = await Promise.all([api("GET", `/vms/${enc(name)}`),
        api("GET", "/rules"), recentEvents(500),
        api("GET", "/hosts").then((l) => l.map((x) => x.name))]);
      events = mergeEvents(backlog);
      draw();
      if (vm.host) charts.refresh();
      reloadExplain();
    },
    delta(d) {
      if (d.vms && name in d.vms) {
        if (d.vms[name] === null) gone = true;
        else {
          const moved = vm && d.vms[name].host !== vm.host;
          vm = d.vms[name];
          if (moved && vm.host) charts.refresh();
        }
        draw();
      }
      if (d.vms || d.hosts) reloadExplain();
    },
    event(e) { events.unshift(e); if (e.message.includes(name)) draw(); },
    reset() { this.render(root); },
    leave() { clearInterval(timer); charts.destroy(); serial?.stop(); },
  };
}

export const PAGES = {
  dashboard, hosts, "hosts/item": hostPage, vms: vmsPage, "vms/item": vmPage, ...MORE,
};
