// The live page: polls the JSON API every second and redraws. Text only goes in through
// textContent, so nothing a client sends (subjects, addresses) can inject markup.
"use strict";

const POLL_MS = 1000;
const LAST = 50;
const TOKEN_KEY = "ses-harness-api-token";

// A server started with --api-token prints the page's URL as /?token=...: keep the token for
// this tab (a reload still works) and take it out of the address bar and the history.
function apiToken() {
  const params = new URLSearchParams(location.search);
  const given = params.get("token");
  if (given !== null) {
    sessionStorage.setItem(TOKEN_KEY, given);
    params.delete("token");
    const rest = params.toString();
    history.replaceState(null, "", `${location.pathname}${rest ? `?${rest}` : ""}${location.hash}`);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

const TOKEN = apiToken();
const AUTH = TOKEN ? { Authorization: `Bearer ${TOKEN}` } : {};

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (className) td.className = className;
  return td;
}

function fill(tableId, items, render) {
  const body = document.querySelector(`#${tableId} tbody`);
  const rows = items.slice().reverse().map((item) => {
    const row = document.createElement("tr");
    render(row, item);
    return row;
  });
  body.replaceChildren(...rows);
  document.getElementById(`${tableId}-empty`).hidden = items.length > 0;
}

function clock(iso) {
  return iso ? new Date(iso).toLocaleTimeString() : "";
}

function size(bytes) {
  return bytes >= 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${bytes} B`;
}

function text(id, value) {
  document.getElementById(id).textContent = value;
}

function drawStats(stats) {
  text("smtp-url", stats.smtp.url);
  const tls = { none: "no TLS", starttls: "STARTTLS", implicit: "implicit TLS" }[stats.smtp.tls];
  text("smtp-tls", `${tls}${stats.smtp.auth ? ", AUTH required" : ""}`);
  text("profile", `${stats.profile}, seed ${stats.seed}`);
  text("behaviours", stats.behaviours.join(" · "));
  text("fault-rules", stats.fault_rules.length ? stats.fault_rules.join(" · ") : "none");
  text("count-sessions", stats.sessions.total);
  text("count-open", stats.sessions.open);
  text("count-messages", stats.messages.total);
  text("count-unacknowledged", stats.messages.unacknowledged);
  text("count-faults", stats.faults.total);
  const names = document.getElementById("fault-names");
  names.replaceChildren(
    ...Object.entries(stats.faults.by_name).map(([name, count]) => {
      const tag = document.createElement("span");
      tag.className = "tag";
      tag.textContent = `${name} × ${count}`;
      return tag;
    }),
  );
}

function drawMessage(row, m) {
  const link = document.createElement("a");
  link.href = m.raw_url;
  link.textContent = m.sequence;
  link.title = "the message as received (.eml)";
  if (TOKEN) link.addEventListener("click", openRaw);
  row.insertCell().append(link);
  cell(row, clock(m.received));
  cell(row, m.mail_from);
  cell(row, m.rcpt_tos.join(", "));
  cell(row, m.subject, "subject");
  cell(row, size(m.size), "num");
  cell(row, m.restored ? `${m.session} (earlier run)` : m.session, "num");
  cell(row, m.acknowledged ? m.ses_id : `${m.ses_id} (cut before 250)`, "mono");
  if (!m.acknowledged) row.className = "warn";
}

function drawSession(row, s) {
  cell(row, s.number, "num");
  cell(row, s.peer, "mono");
  cell(row, clock(s.opened));
  cell(row, s.open ? "open" : `closed by ${s.closed_by}: ${s.close_reason}`);
  cell(row, s.accepted, "num");
  cell(row, s.tls ? "yes" : "");
  if (s.open) row.className = "live";
}

function drawFault(row, f) {
  cell(row, f.index, "num");
  cell(row, f.session, "num");
  cell(row, f.stage);
  cell(row, `${f.source}:${f.name} (${f.action})`);
  cell(row, f.reply, "mono");
}

// A plain link cannot send the token: fetch the .eml with it and show it as text.
async function openRaw(event) {
  event.preventDefault();
  const response = await fetch(event.currentTarget.href, { headers: AUTH, cache: "no-store" });
  const blob = new Blob([await response.arrayBuffer()], { type: "text/plain; charset=utf-8" });
  window.open(URL.createObjectURL(blob), "_blank");
}

async function getJson(path) {
  const response = await fetch(path, { headers: AUTH, cache: "no-store" });
  if (response.status === 401) {
    const error = new Error("the API wants a token: open the page at the URL the server printed");
    error.needsToken = true;
    throw error;
  }
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

async function poll() {
  const status = document.getElementById("status");
  try {
    const [stats, messages, sessions, faults] = await Promise.all([
      getJson("/api/stats"),
      getJson(`/api/messages?limit=${LAST}`),
      getJson(`/api/sessions?transcript=0&limit=${LAST}`),
      getJson(`/api/faults?limit=${LAST}`),
    ]);
    drawStats(stats);
    fill("messages", messages, drawMessage);
    fill("sessions", sessions, drawSession);
    fill("faults", faults, drawFault);
    status.textContent = `live · updated ${new Date().toLocaleTimeString()}`;
    status.className = "status ok";
  } catch (error) {
    status.textContent = error.needsToken ? error.message : `server unreachable (${error.message})`;
    status.className = "status down";
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

poll();
