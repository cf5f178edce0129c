// The cluster's other pages: incidents (drawn as timelines), operations under way, the
// event feed, rules, storage and networks, balancing, policy and tokens.

import { act, api, can, mergeEvents, recentEvents, S } from "./core.js";
import {
  badge, bar, card, confirmDialog, debounce, fill, fmt, formDialog, h, link, table, toast,
} from "./dom.js";
import { timeline } from "./timeline.js";

const enc = encodeURIComponent;

// A page that shows one loaded value and reloads it when the stream says its view changed.
function simple(title, load, draw, views) {
  return () => {
    let root, data;
    const reload = debounce(async () => { data = await load(); paint(); }, 400);
    const paint = () => fill(root, h("h2", {}, title), draw(data, reload));
    return {
      async render(main) { root = main; data = await load(); paint(); },
      delta(d) {
        if (views === "*" || (d.views || []).some((v) => views.includes(v))) reload();
      },
      reset() { reload(); },
    };
  };
}

// ---- incidents ------------------------------------------------------------------------------

const incidents = simple("Incidents", () => api("GET", "/incidents"), (list) => list.length
  ? table(["#", "Host", "Open", "Declared down", "Fenced by", "To fenced", "To all running", "VMs"],
    list.map((i) => h("tr", { "data-incident": i.id },
      h("td", {}, link(`#/incidents/${i.id}`, `#${i.id}`)), h("td", {}, i.host),
      h("td", {}, i.open ? badge("open", "bad") : "closed"), h("td", {}, fmt.datetime(i.declared_at)),
      h("td", {}, i.fenced_by || "–"), h("td", { class: "num" }, fmt.secs(i.seconds_to_fenced)),
      h("td", { class: "num" }, fmt.secs(i.seconds_to_all_running)),
      h("td", { class: "num" }, i.vms.length))), { "data-testid": "incidents" })
  : h("p", { class: "muted" }, "No incidents: no host has been lost."), ["incidents"]);

function incidentPage(id) {
  let root, incident;
  const load = async () => { incident = await api("GET", `/incidents/${enc(id)}`); };
  const reload = debounce(async () => { await load(); draw(); }, 300);
  const tick = setInterval(() => { if (incident?.open) draw(); }, 1000);

  function draw() {
    const i = incident;
    fill(root,
      h("h2", {}, `Incident #${i.id}: ${i.host} `, i.open ? badge("open", "bad") : badge("closed", "ok")),
      h("div", { class: "cards" },
        card("Last heard", fmt.time(i.last_heard)),
        card("Declared down", fmt.time(i.declared_at), fmt.secs(i.seconds_to_declared)),
        card("Fenced", i.fenced_at ? fmt.time(i.fenced_at) : "not yet",
          i.fenced_at ? `${fmt.secs(i.seconds_to_fenced)}, by ${i.fenced_by}` : ""),
        card("All VMs running", fmt.secs(i.seconds_to_all_running),
          `${i.vms.filter((v) => v.running_at).length} of ${i.vms.length}`)),
      h("section", { class: "panel" }, h("h3", {}, "Timeline (seconds since the last heartbeat)"),
        timeline(i, Date.now() / 1000)),
      table(["VM", "Placed on", "Placed", "Running", "Seconds to running"], i.vms.map((v) =>
        h("tr", { "data-vm": v.name }, h("td", {}, link(`#/vms/${enc(v.name)}`, v.name)),
          h("td", {}, v.host || "–"), h("td", {}, fmt.time(v.placed_at)),
          h("td", {}, fmt.time(v.running_at)), h("td", { class: "num" }, fmt.secs(v.seconds_to_running))))));
  }
  return {
    async render(main) { root = main; await load(); draw(); },
    delta(d) { if ((d.views || []).includes("incidents")) reload(); },
    reset() { reload(); },
    leave() { clearInterval(tick); },
  };
}

// ---- alarms ---------------------------------------------------------------------------------

function alarmsPage(_, params) {
  const all = params.all === "true";
  return simple("Alarms", () => api("GET", `/alarms${all ? "?all=true" : ""}`), (list) => [
    h("div", { class: "toolbar" }, link(all ? "#/alarms" : "#/alarms?all=true",
      all ? "show active ones only" : "show cleared ones too")),
    list.length ? table(["Severity", "Alarm", "Message", "Raised", "Acknowledged", ""], list.map((a) =>
      h("tr", { "data-alarm": a.key, class: a.active ? "" : "cleared" },
        h("td", {}, badge(a.severity, a.severity === "critical" ? "bad" : "warn")),
        h("td", {}, a.key, a.local ? h("span", { class: "muted" }, " (this member)") : null),
        h("td", {}, a.message),
        h("td", {}, a.raised_at ? fmt.datetime(a.raised_at) : "now"),
        h("td", {}, a.active ? (a.acked_by ? `by ${a.acked_by}` : "no") : `cleared ${fmt.time(a.cleared_at)}`),
        h("td", {}, a.active && !a.acked_by && !a.local && can("operator")
          ? h("button", { class: "secondary small", "data-testid": "ack",
            onclick: () => act(`acknowledge ${a.key}`, "POST", `/alarms/${enc(a.key)}/ack`) }, "Acknowledge")
          : null))), { "data-testid": "alarms" })
      : h("p", { class: "muted", "data-testid": "alarms" }, "No alarms.")], ["alarms"])();
}

// ---- operations -----------------------------------------------------------------------------

const operations = simple("Operations under way", () => api("GET", "/operations"), (data) => {
  const ops = data.operations;
  if (!ops.length) return h("p", { class: "muted", "data-testid": "operations" }, "Nothing under way.");
  return table(["Kind", "What", "State", "Progress"], ops.map((o) => {
    let what, progress = "";
    if (o.kind === "migration") {
      what = [link(`#/vms/${enc(o.vm)}`, o.vm), ` ${o.source || "?"} → ${o.target || "best host"}`];
      progress = o.error || "";
    } else if (o.kind === "evacuation") {
      what = [link(`#/hosts/${enc(o.host)}`, o.host), " entering maintenance"];
      progress = `${o.remaining} VM(s) still to move`;
    } else {
      what = [link(`#/incidents/${o.incident}`, `incident #${o.incident}`), ` on ${o.host}`];
      progress = bar(o.vms_running, o.vms_total || 1, `${o.vms_running} / ${o.vms_total} VMs running`);
    }
    return h("tr", {}, h("td", {}, o.kind), h("td", {}, what), h("td", {}, badge(o.state)), h("td", {}, progress));
  }), { "data-testid": "operations" });
}, "*");

// ---- events ---------------------------------------------------------------------------------

function eventsPage() {
  let root, events = [], filter = "";
  const list = h("ul", { class: "events", "data-testid": "events" });
  const draw = () => fill(list, events.filter((e) => !filter || `${e.kind} ${e.message}`.includes(filter))
    .slice(0, 500).map((e) => h("li", {}, h("time", {}, fmt.datetime(e.ts)), " ",
      h("span", { class: "kind" }, e.kind), " ", e.message)));
  return {
    async render(main) {
      root = main;
      events = mergeEvents(await recentEvents(500));
      const search = h("input", { type: "search", placeholder: "filter", oninput: () => { filter = search.value; draw(); } });
      fill(root, h("h2", {}, "Events"), h("p", { class: "muted" },
        "This member's feed of what the cluster did and who asked (newest first), as it happens."),
      h("div", { class: "toolbar" }, search), list);
      draw();
    },
    event(e) { events.unshift(e); draw(); },
  };
}

// ---- rules, balancing, policy, tokens ---------------------------------------------------------

const rules = simple("Rules", () => api("GET", "/rules"), (list) => [
  can("admin") ? h("div", { class: "actions" }, h("button", { class: "primary", onclick: async () => {
    const v = await formDialog("Create a rule", [
      { name: "name", label: "Name", required: true },
      { name: "kind", label: "Kind", type: "select", options: ["affinity", "anti-affinity", "host"] },
      { name: "strength", label: "Strength", type: "select", options: ["must", "should"] },
      { name: "vms", label: "VMs (comma-separated)", required: true },
      { name: "hosts", label: "Hosts (host rules)" }], "Create");
    if (v) {
      const split = (s) => s.split(",").map((x) => x.trim()).filter(Boolean);
      await act(`create rule ${v.name}`, "POST", "/rules", { ...v, vms: split(v.vms), hosts: split(v.hosts) });
    }
  } }, "Create rule")) : null,
  list.length ? table(["Name", "Kind", "Strength", "VMs", "Hosts", ""], list.map((r) => h("tr", {},
    h("td", {}, r.name), h("td", {}, r.kind), h("td", {}, r.strength), h("td", {}, r.vms.join(", ")),
    h("td", {}, r.hosts.join(", ") || "–"),
    h("td", {}, can("admin") ? h("button", { class: "danger small", onclick: async () => {
      if (await confirmDialog(`Delete rule ${r.name}?`, "", "Delete", true)) await act(`delete rule ${r.name}`, "DELETE", `/rules/${enc(r.name)}`);
    } }, "Delete") : null))), { "data-testid": "rules" })
    : h("p", { class: "muted" }, "No rules.")], ["rules"]);

// ---- storage pools and networks ---------------------------------------------------------------

const storagePage = simple("Storage and networks", async () => {
  const [pools, networks] = await Promise.all([api("GET", "/storage"), api("GET", "/networks")]);
  return { pools, networks };
}, ({ pools, networks }) => {
  const remove = (kind, path, name) => async () => {
    if (await confirmDialog(`Delete ${kind} ${name}?`, "Refused while a VM uses it; nothing on the storage is deleted.", "Delete", true)) {
      await act(`delete ${kind} ${name}`, "DELETE", `${path}/${enc(name)}`);
    }
  };
  const createPool = async () => {
    const v = await formDialog("Create a storage pool", [
      { name: "name", label: "Name", required: true },
      { name: "type", label: "Type", type: "select", options: ["dir", "netfs", "logical", "rbd"] },
      { name: "path", label: "Path on each host (dir, netfs)" },
      { name: "source_host", label: "Source host (netfs, rbd)" },
      { name: "source_path", label: "Source path (netfs export, LVM volume group, Ceph pool)" },
      { name: "shared", label: "Shared: every host sees the same volumes", type: "checkbox", value: true }], "Create");
    if (v) await act(`create pool ${v.name}`, "POST", "/storage", v);
  };
  const createNetwork = async () => {
    const v = await formDialog("Create a network", [
      { name: "name", label: "Name", required: true },
      { name: "bridge", label: "Bridge on each host", required: true, placeholder: "br0" }], "Create");
    if (v) await act(`create network ${v.name}`, "POST", "/networks", v);
  };
  return [
    h("h3", {}, "Storage pools"),
    h("p", { class: "muted" }, "Every host defines these in its own libvirt and reports what it sees; VMs' disks are volumes in them."),
    can("admin") ? h("div", { class: "actions" }, h("button", { class: "primary", onclick: createPool }, "Create pool")) : null,
    pools.length ? table(["Name", "Type", "Shared", "Capacity", "Free", "Allocated", "Hosts", "Problems", ""],
      pools.map((p) => h("tr", { "data-pool": p.name },
        h("td", {}, p.name), h("td", {}, p.type), h("td", {}, p.shared ? "yes" : "local"),
        h("td", { class: "num" }, `${p.capacity_gib} GiB`), h("td", { class: "num" }, `${p.free_gib} GiB`),
        h("td", { class: "num" }, `${p.allocated_gib} GiB`), h("td", {}, p.hosts.join(", ") || "none yet"),
        h("td", {}, Object.entries(p.errors).map(([host, why]) => `${host}: ${why}`).join("; ") || "–"),
        h("td", {}, can("admin") ? h("button", { class: "danger small", onclick: remove("pool", "/storage", p.name) }, "Delete") : null))),
      { "data-testid": "pools" }) : h("p", { class: "muted" }, "No storage pools."),
    h("h3", {}, "Networks"),
    h("p", { class: "muted" }, "A bridge of that name on the hosts that offer it; VMs' NICs keep their MAC for life."),
    can("admin") ? h("div", { class: "actions" }, h("button", { class: "primary", onclick: createNetwork }, "Create network")) : null,
    networks.length ? table(["Name", "Bridge", "Hosts", "VMs", ""], networks.map((n) => h("tr", { "data-network": n.name },
      h("td", {}, n.name), h("td", {}, n.bridge), h("td", {}, n.hosts.join(", ") || "none yet"),
      h("td", { class: "num" }, n.vms),
      h("td", {}, can("admin") ? h("button", { class: "danger small", onclick: remove("network", "/networks", n.name) }, "Delete") : null))),
    { "data-testid": "networks" }) : h("p", { class: "muted" }, "No networks."),
  ];
}, ["storage"]);

function balancePage() {
  let root, plan;
  const load = async () => { plan = await api("GET", "/balance"); };
  const draw = () => fill(root, h("h2", {}, "Balancing"),
    h("p", {}, `Load imbalance (standard deviation): ${plan.imbalance} now, ${plan.imbalance_after} after these moves.`),
    h("div", { class: "actions" },
      h("button", { class: "secondary", onclick: async () => { await load(); draw(); } }, "Plan again"),
      can("operator") ? h("button", { class: "primary", disabled: !plan.moves.length, onclick: async () => {
        if (await act("balance", "POST", "/balance")) location.hash = "#/operations";
      } }, "Apply these moves") : null),
    plan.moves.length ? table(["VM", "From", "To", "Gain"], plan.moves.map((m) => h("tr", {},
      h("td", {}, link(`#/vms/${enc(m.vm)}`, m.vm)), h("td", {}, m.source), h("td", {}, m.target),
      h("td", { class: "num" }, m.gain))), { "data-testid": "balance" })
      : h("p", { class: "muted" }, "Balanced: no move would help."));
  return { async render(main) { root = main; await load(); draw(); } };
}

const policy = simple("Policy", () => api("GET", "/policy"), (p, reload) => {
  const inputs = {};
  const rows = Object.entries(p).filter(([k]) => k !== "version").map(([k, v]) => {
    inputs[k] = h("input", { type: "number", step: "any", value: v, disabled: !can("admin"), name: k });
    return h("tr", {}, h("td", {}, k), h("td", {}, inputs[k]));
  });
  const save = async () => {
    const changes = {};
    for (const [k, input] of Object.entries(inputs)) {
      if (Number(input.value) !== p[k]) changes[k] = Number(input.value);
    }
    if (!Object.keys(changes).length) { toast("nothing changed"); return; }
    if (await act("policy", "PATCH", "/policy", { changes, expect_version: p.version })) reload();
  };
  return [h("p", { class: "muted" }, `Replicated placement and failover policy, version ${p.version}.`),
    table(["Setting", "Value"], rows, { "data-testid": "policy" }),
    can("admin") ? h("button", { class: "primary", onclick: save }, "Save changes") : null];
}, ["policy"]);

function accessPage() {
  const load = async () => {
    const [tokens, users] = await Promise.all([api("GET", "/tokens"), api("GET", "/users")]);
    return { tokens, users };
  };
  return simple("Access: tokens and users", load, ({ tokens, users }) => [
    h("h3", {}, "Users"),
    h("p", { class: "muted" }, "Local accounts: they log in here or with hactl login; passwords are kept as argon2id hashes."),
    h("div", { class: "actions" }, h("button", { class: "primary", "data-testid": "create-user", onclick: async () => {
      const v = await formDialog("Create a user", [
        { name: "name", label: "Name", required: true },
        { name: "role", label: "Role", type: "select", options: ["viewer", "operator", "admin"] },
        { name: "password", label: "Password (12 characters or more)", type: "password", required: true }], "Create");
      if (v) await act(`create user ${v.name}`, "POST", "/users", v);
    } }, "Create user")),
    users.length ? table(["Name", "Role", "Created", ""], users.map((u) => h("tr", { "data-user": u.name },
      h("td", {}, u.name), h("td", {}, u.role), h("td", {}, fmt.datetime(u.created_at)),
      h("td", {}, h("button", { class: "danger small", onclick: async () => {
        if (await confirmDialog(`Delete user ${u.name}?`, "Their sessions end at once.", "Delete", true)) {
          await act(`delete user ${u.name}`, "DELETE", `/users/${enc(u.name)}`);
        }
      } }, "Delete")))), { "data-testid": "users" }) : h("p", { class: "muted" }, "No local users."),
    h("h3", {}, "Tokens"),
    h("div", { class: "actions" }, h("button", { class: "primary", onclick: async () => {
      const v = await formDialog("Create a token", [
        { name: "name", label: "Name", required: true },
        { name: "role", label: "Role", type: "select", options: ["viewer", "operator", "admin"] },
        { name: "ttl_seconds", label: "Expires after (seconds; 0 = never)", type: "number", value: 0 }], "Create");
      if (!v) return;
      const created = await act(`create token ${v.name}`, "POST", "/tokens", v);
      if (created) {
        await confirmDialog("Token created", h("div", {}, h("p", {}, "Copy it now: it is not shown again."),
          h("code", { class: "secret" }, created.token)), "Done");
      }
    } }, "Create token")),
    table(["Name", "Role", "Owner", "Created", "Expires", ""], tokens.map((t) => h("tr", {},
      h("td", {}, t.name), h("td", {}, t.role), h("td", {}, t.owner), h("td", {}, fmt.datetime(t.created_at)),
      h("td", {}, t.expires_at ? fmt.datetime(t.expires_at) : "never"),
      h("td", {}, t.name === S.me.name ? "(this session)" : h("button", { class: "danger small", onclick: async () => {
        if (await confirmDialog(`Revoke token ${t.name}?`, "Whoever uses it is refused from now on, its web sessions included.", "Revoke", true)) {
          await act(`revoke ${t.name}`, "DELETE", `/tokens/${enc(t.name)}`);
        }
      } }, "Revoke")))), { "data-testid": "tokens" })], ["tokens", "users"])();
}

export const MORE = {
  alarms: alarmsPage, incidents, "incidents/item": incidentPage, operations, events: eventsPage, rules,
  storage: storagePage, balance: balancePage, policy, tokens: accessPage,
};
