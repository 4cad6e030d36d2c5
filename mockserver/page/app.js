// The journal page: polls /_mockserver/journal, newest request first; no build step, no CDN.
"use strict";

const POLL_MS = 1000;
const KEEP = 2000; // entries kept in the page
const NO_MATCH = "mockserver_no_match";
const $ = (id) => document.getElementById(id);
const entries = []; // oldest first
const open = new Set();
let since = null;
let token = sessionStorage.getItem("mockserver-token") || "";
let timer = null;

function headers(extra) {
  const h = Object.assign({}, extra || {});
  if (token) h.Authorization = "Bearer " + token;
  return h;
}

async function call(url, options) {
  const response = await fetch(url, Object.assign({ cache: "no-store" }, options || {}));
  if (response.status === 401) {
    $("login").hidden = false;
    $("token").focus();
    throw new Error("this server needs its admin token");
  }
  const body = await response.json();
  if (!response.ok) throw new Error((body.error && body.error.message) || response.statusText);
  return body;
}

function kind(e) {
  if (e.error && e.error.type === NO_MATCH) return "miss";
  return e.status < 400 ? "ok" : "error";
}

function shown(e) {
  const session = $("session").value;
  if (session !== "*" && (e.session || "") !== session) return false;
  const status = $("status").value;
  if (status && kind(e) !== status) return false;
  const name = $("scenario").value.trim();
  if (name) {
    const names = [e.scenario, e.miss && e.miss.closest].filter(Boolean).join(" ");
    if (!names.includes(name)) return false;
  }
  return true;
}

const esc = (t) => String(t).replace(/[&<>"']/g, (c) => "&#" + c.charCodeAt(0) + ";");
const TOKEN = /("(?:\\.|[^"\\])*")(\s*:)?|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/g;

function colour(text) {
  let out = "";
  let last = 0;
  text.replace(TOKEN, (m, str, colon, lit, offset) => {
    out += esc(text.slice(last, offset));
    if (str) out += '<span class="' + (colon ? "k" : "s") + '">' + esc(str) + "</span>" + esc(colon || "");
    else out += '<span class="n">' + esc(lit) + "</span>";
    last = offset + m.length;
    return m;
  });
  return out + esc(text.slice(last));
}

// The request as JSON, with the top-level key a failed condition reads marked.
function pretty(value, markKey) {
  if (!value || typeof value !== "object" || Array.isArray(value)) {
    return colour(JSON.stringify(value, null, 2));
  }
  const keys = Object.keys(value);
  const lines = keys.map((k, i) => {
    const text = "  " + JSON.stringify(k) + ": " +
      JSON.stringify(value[k], null, 2).replace(/\n/g, "\n  ") + (i < keys.length - 1 ? "," : "");
    return k === markKey ? "<mark>" + colour(text) + "</mark>" : colour(text);
  });
  return "{\n" + lines.join("\n") + "\n}";
}

const READS = { last_user_message: "messages", system: "messages", messages: "messages" };

function markedKey(condition) {
  if (!condition) return null;
  const field = condition.replace(/^match\./, "").split(/[.[]/)[0];
  return READS[field] || field;
}

const ms = (v) => (v < 10 ? v.toFixed(1) : Math.round(v).toLocaleString("en")) + " ms";

function timingsText(e) {
  const t = e.timings;
  const parts = ["Answered at " + esc(e.time)];
  if (t.first_byte_ms !== null) parts.push("first byte after " + ms(t.first_byte_ms));
  if (t.total_ms !== null) {
    parts.push((t.client_gone ? "client went away after " : "last byte after ") + ms(t.total_ms));
  } else if (t.received_at !== null) {
    parts.push("still sending");
  }
  if (t.delay_ms) parts.push("scripted delay " + ms(t.delay_ms));
  return parts.join(" · ");
}

// The reply as the server sent it: status and headers, then the body or the stream's frames.
function sentHtml(e) {
  const r = e.sent;
  if (!r) return "";
  let html = '<h3>Sent</h3><pre class="sent">HTTP ' + esc(r.status) + "\n";
  for (const [name, value] of Object.entries(r.headers)) html += esc(name) + ": " + esc(value) + "\n";
  html += "\n";
  if (r.frames) {
    html += r.frames.map((f) => (f.delay_ms ? '<span class="delay">+' + esc(ms(f.delay_ms)) + "</span>\n" : "") + esc(f.data)).join("");
  } else if (r.body !== null) {
    let body = r.body;
    if (!r.cut_bytes) {
      try { body = JSON.stringify(JSON.parse(body), null, 2); } catch (err) { /* sent as is */ }
    }
    html += r.cut_bytes ? esc(body) : colour(body);
  }
  html += "</pre>";
  if (r.note) html += '<p class="note">' + esc(r.note) + "</p>";
  return html;
}

function keyOf(e) {
  return (e.session || "") + "|" + e.at + "|" + e.status;
}

function element(e) {
  const li = document.createElement("li");
  li.className = kind(e);
  li.dataset.key = keyOf(e);
  const details = document.createElement("details");
  details.open = open.has(li.dataset.key);
  details.addEventListener("toggle", () => {
    if (details.open) open.add(li.dataset.key); else open.delete(li.dataset.key);
  });
  const summary = document.createElement("summary");
  const label = e.scenario || (e.miss ? "no match" : (e.error && e.error.code) || "refused");
  summary.innerHTML =
    '<span class="status">' + esc(e.status) + "</span>" +
    '<span class="name">' + esc(label) + "</span>" +
    '<span class="where">' + esc(e.where || (e.miss && e.miss.closest ? "closest: " + e.miss.closest : "")) + "</span>" +
    '<span class="session">' + esc(e.session ? "session " + e.session : "shared") + "</span>" +
    '<span class="time">' + esc(e.time.slice(11, 23)) + "</span>";
  details.appendChild(summary);
  const detail = document.createElement("div");
  detail.className = "detail";
  let html = "";
  if (e.miss) {
    html += '<p class="failed">No scenario matched. ';
    if (e.miss.closest) {
      html += "Closest: <b>" + esc(e.miss.closest) + "</b> (" + esc(e.miss.where) + ")";
      html += e.miss.condition
        ? ", which failed <code>" + esc(e.miss.condition) + "</code>: " + esc(e.miss.reason)
        : ", whose sequence is used up";
    } else {
      html += "No scenarios are loaded.";
    }
    html += "</p>";
  } else if (e.error) {
    html += '<p class="failed">' + esc(e.error.message) + "</p>";
  }
  if (e.reply) {
    html += "<h3>Reply " + esc((e.reply_index || 0) + 1) + "</h3><pre>" + colour(JSON.stringify(e.reply, null, 2)) + "</pre>";
  }
  html += "<h3>Request</h3><pre class=\"request\">" + pretty(e.request, e.miss && markedKey(e.miss.condition)) + "</pre>";
  html += "<h3>Headers</h3><pre>" + colour(JSON.stringify(e.headers, null, 2)) + "</pre>";
  html += sentHtml(e);
  html += '<p class="time timings">' + timingsText(e) + "</p>";
  detail.innerHTML = html;
  details.appendChild(detail);
  li.appendChild(details);
  return li;
}

function render() {
  const list = $("entries");
  const items = entries.filter(shown).reverse().slice(0, 500);
  list.replaceChildren(...items.map(element));
  status(items.length);
}

function status(count) {
  const when = new Date().toLocaleTimeString();
  $("state").textContent = count + (count === 1 ? " request" : " requests") + " shown · updated " + when;
}

const pending = (e) => e.timings.received_at !== null && e.timings.total_ms === null;

function add(fetched) {
  const known = new Map(entries.map((e, i) => [keyOf(e), i]));
  const fresh = [];
  for (const e of fetched) {
    const at = known.get(keyOf(e));
    if (at === undefined) { fresh.push(e); continue; }
    if (pending(entries[at]) && !pending(e)) { // finished sending: show it whole now
      entries[at] = e;
      const li = document.querySelector('#entries li[data-key="' + CSS.escape(keyOf(e)) + '"]');
      if (li) li.replaceWith(element(e));
    }
  }
  if (!fresh.length) return;
  entries.push(...fresh);
  if (entries.length > KEEP) entries.splice(0, entries.length - KEEP);
  const list = $("entries");
  const news = fresh.filter(shown);
  for (const e of news) list.insertBefore(element(e), list.firstChild);
  while (list.children.length > 500) list.lastChild.remove();
  status(list.children.length);
}

async function sessions() {
  const body = await call("/_mockserver/sessions", { headers: headers() });
  const select = $("session");
  const have = new Set(Array.from(select.options).map((o) => o.value));
  for (const s of body.data) {
    if (!have.has(s.name)) select.add(new Option("session " + s.name, s.name));
  }
}

async function poll() {
  clearTimeout(timer);
  try {
    // from the oldest entry still sending (for at most a minute), else from the newest seen
    const now = Date.now() / 1000;
    const waiting = entries.find((e) => pending(e) && now - e.at < 60);
    const from = waiting ? Math.min(since, waiting.at - 0.001) : since;
    const url = "/_mockserver/journal?all_sessions=true&limit=1000" + (from === null ? "" : "&since=" + from);
    const body = await call(url, { headers: headers() });
    if (body.data.length) since = Math.max(since || 0, body.data[body.data.length - 1].at);
    add(body.data);
    await sessions();
    if (!entries.length) status(0);
  } catch (err) {
    $("state").textContent = "Cannot read the journal: " + err.message;
  }
  if ($("live").checked) timer = setTimeout(poll, POLL_MS);
}

async function reset() {
  const session = $("session").value;
  const url = "/_mockserver/reset" + (session && session !== "*" ? "?session=" + encodeURIComponent(session) : "");
  try {
    await call(url, { method: "POST", headers: headers({ "x-mockserver-admin": "1" }) });
    const gone = session && session !== "*" ? (e) => e.session === session : () => true;
    for (let i = entries.length - 1; i >= 0; i--) if (gone(entries[i])) entries.splice(i, 1);
    render();
    $("state").textContent = "Reset " + (session && session !== "*" ? "session " + session : "everything") + ".";
  } catch (err) {
    $("state").textContent = "Reset failed: " + err.message;
  }
}

function move(step) {
  const summaries = Array.from(document.querySelectorAll("#entries summary"));
  if (!summaries.length) return;
  const at = summaries.indexOf(document.activeElement);
  const next = at < 0 ? 0 : Math.min(Math.max(at + step, 0), summaries.length - 1);
  summaries[next].focus();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const id of ["session", "status"]) $(id).addEventListener("change", render);
  $("scenario").addEventListener("input", render);
  $("reset").addEventListener("click", reset);
  $("live").addEventListener("change", () => { if ($("live").checked) poll(); });
  $("filters").addEventListener("submit", (ev) => ev.preventDefault());
  $("login").addEventListener("submit", (ev) => {
    ev.preventDefault();
    token = $("token").value;
    sessionStorage.setItem("mockserver-token", token);
    $("login").hidden = true;
    poll();
  });
  document.addEventListener("keydown", (ev) => {
    if (ev.target.matches("input, select, textarea")) return;
    if (ev.key === "j") move(1);
    else if (ev.key === "k") move(-1);
    else if (ev.key === "/") { ev.preventDefault(); $("scenario").focus(); }
    else return;
  });
  poll();
});
