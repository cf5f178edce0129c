// What every page uses: the session, the JSON API, role checks, buttons' writes.

import { toast } from "./dom.js";

export const S = {
  me: null, csrf: null, summary: null, status: null, members: [], live: {},
  events: [], lastId: null, lastMessage: 0, staleSince: null, es: null,
};
const RANK = { viewer: 0, operator: 1, admin: 2 };
export const hooks = { unauthorized: null }; // the login screen, set by app.js

export class ApiError extends Error {
  constructor(status, message, code) { super(message); this.status = status; this.code = code; }
}

export async function api(method, path, body, headers = {}) {
  const opts = { method, headers: { ...headers }, credentials: "same-origin" };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  if (method !== "GET" && S.csrf) opts.headers["X-CSRF-Token"] = S.csrf;
  const response = await fetch(`/api/v1${path}`, opts);
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!response.ok) {
    const message = data && data.error ? data.error : `${response.status} ${response.statusText}`;
    if (response.status === 401 && path !== "/session") hooks.unauthorized?.(message);
    throw new ApiError(response.status, message, data && data.code);
  }
  return data;
}

// A write from a button: the error, if any, is shown; the live stream shows the result.
export async function act(what, method, path, body) {
  try {
    const result = await api(method, path, body, { "Idempotency-Key": crypto.randomUUID() });
    toast(`${what}: done`, "ok");
    return result;
  } catch (err) {
    toast(`${what}: ${err.message}`, "error");
    return null;
  }
}

export function can(role) {
  return S.me && RANK[S.me.role] >= RANK[role];
}


// The newest n events, read from the event stream's backlog (SSE text, without following).
export async function recentEvents(n) {
  const response = await fetch(`/api/v1/events?follow=false&backlog=${n}`,
    { credentials: "same-origin" });
  if (!response.ok) return [];
  const events = [];
  for (const block of (await response.text()).split("\n\n")) {
    const lines = block.split("\n");
    if (!lines.includes("event: event")) continue;
    const data = lines.find((l) => l.startsWith("data: "));
    if (data) events.push(JSON.parse(data.slice(6)));
  }
  return events.reverse();
}

// Streamed events and a fetched backlog, newest first, each once.
export function mergeEvents(backlog) {
  const seen = new Set(S.events.map((e) => e.seq));
  const merged = [...S.events, ...backlog.filter((e) => !seen.has(e.seq))];
  merged.sort((a, b) => b.seq - a.seq);
  return merged;
}
