// The live page. It reads the JSON API, and hears of every change by push (GET /api/events,
// server-sent events read with fetch so the API token can go in a header); it never polls.
// Text goes in through textContent only, so nothing a client sends (subjects, addresses,
// bodies) can inject markup; a message's HTML is shown in a sandboxed frame from its own URL.
"use strict";

const PAGE = 50; // messages per page
const LAST = 100; // sessions and faults shown
const RECONNECT_MS = 1000;
const TOKEN_KEY = "ses-harness-api-token";

// --- API access ---------------------------------------------------------------------------

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

class ApiError extends Error {
  constructor(status, body) {
    super(body && body.error ? body.error : `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(method, path, body) {
  const options = { method, headers: { ...AUTH }, cache: "no-store" };
  if (method !== "GET") {
    // The server refuses a state change that does not say it is JSON (a cross-site form can't).
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body === undefined ? {} : body);
  }
  const response = await fetch(path, options);
  const type = response.headers.get("Content-Type") || "";
  const data = type.startsWith("application/json") ? await response.json() : await response.text();
  if (!response.ok) throw new ApiError(response.status, data);
  return { data, response };
}

const getJson = async (path) => (await api("GET", path)).data;

// --- small DOM helpers -------------------------------------------------------------------

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function setText(id, value) {
  $(id).textContent = value === null || value === undefined ? "" : String(value);
}

function clock(iso) {
  return iso ? new Date(iso).toLocaleTimeString() : "";
}

function size(bytes) {
  if (bytes >= 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  return bytes >= 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${bytes} B`;
}

function meta(dl, pairs) {
  dl.replaceChildren(
    ...pairs
      .filter(([, value]) => value !== null && value !== undefined && value !== "")
      .flatMap(([key, value]) => [el("dt", { text: key }), el("dd", {}, value instanceof Node ? value : String(value))]),
  );
}

// A plain link cannot send the token: fetch with it and hand the browser a blob.
function tokenLink(link, download) {
  if (!TOKEN) return;
  link.addEventListener("click", async (event) => {
    event.preventDefault();
    const response = await fetch(link.href, { headers: AUTH, cache: "no-store" });
    const url = URL.createObjectURL(await response.blob());
    const a = el("a", { href: url, download: download || "" });
    a.click();
  });
}

// --- live: the event stream --------------------------------------------------------------

const live = { connected: false, everConnected: false };

function showStatus(text, state) {
  const status = $("status");
  status.textContent = text;
  status.className = `status ${state}`;
}

async function listen() {
  for (;;) {
    try {
      const response = await fetch("/api/events", { headers: AUTH, cache: "no-store" });
      if (response.status === 401) {
        showStatus("the API wants a token: open the page at the URL the server printed", "down");
        return;
      }
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = frame
            .split("\n")
            .filter((line) => line.startsWith("data: "))
            .map((line) => line.slice(6))
            .join("\n");
          if (data) onEvent(JSON.parse(data));
        }
      }
      throw new Error("the stream ended");
    } catch (error) {
      live.connected = false;
      showStatus("lost the server · reconnecting…", "down");
      await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS));
    }
  }
}

function onEvent(event) {
  if (event.type === "hello") {
    const again = live.everConnected;
    live.connected = live.everConnected = true;
    showStatus(again ? "live · reconnected" : "live", "ok");
    refresh.all(); // whatever happened while the stream was down
    return;
  }
  refresh.stats();
  if (event.type === "message" || event.type === "deleted") {
    refresh.messages();
    refresh.events();
    if (state.session !== null && event.message && event.message.session === state.session) refresh.session();
  } else if (event.type === "session" || event.type === "closed") {
    refresh.sessions();
    if (event.session.number === state.session) refresh.session();
  } else if (event.type === "fault") {
    refresh.faults();
    refresh.planCounts();
    if (event.fault.session === state.session) refresh.session();
  } else if (event.type === "plan") {
    refresh.plan();
  } else if (event.type === "resync") {
    refresh.all();
  }
}

// Many events in a burst make one request per view, not one per event.
function debounced(fn, ms = 80) {
  let timer = null;
  return () => {
    if (timer !== null) return;
    timer = setTimeout(async () => {
      timer = null;
      try {
        await fn();
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
      }
    }, ms);
  };
}

// --- state and routing -------------------------------------------------------------------

const state = {
  view: "messages",
  query: "",
  offset: 0,
  total: 0,
  messages: [], // the page of messages shown
  sessions: [],
  message: null, // sequence of the open message
  session: null, // number of the open session
  tab: "text",
  width: "desktop", // the HTML preview's width: phone, tablet or desktop
  panel: null, // the last GET /api/steering
  dirty: false, // the plan panel has edits not applied
};

function route() {
  const [, view, id] = (location.hash || "#/messages").split("/");
  const views = ["messages", "sessions", "faults", "events", "plan"];
  state.view = views.includes(view) ? view : "messages";
  for (const name of views) {
    $(`view-${name}`).hidden = name !== state.view;
  }
  for (const link of document.querySelectorAll(".tabs a")) {
    link.classList.toggle("current", link.dataset.view === state.view);
  }
  const number = id && /^\d+$/.test(id) ? Number(id) : null;
  if (state.view === "messages") openMessage(number);
  if (state.view === "sessions") openSession(number);
  if (state.view === "plan") {
    refresh.plan();
    drawTemplates();
  }
  if (state.view === "events") refresh.events();
  document.body.classList.toggle("detail-open", number !== null);
}

// --- stats ---------------------------------------------------------------------------------

async function drawStats() {
  const stats = await getJson("/api/stats");
  setText("smtp-url", stats.smtp.url);
  const tls = { none: "no TLS", starttls: "STARTTLS", implicit: "implicit TLS" }[stats.smtp.tls];
  setText("smtp-tls", `${tls}${stats.smtp.auth ? ", AUTH required" : ""}`);
  setText("profile", `${stats.profile}, seed ${stats.seed}`);
  setText("behaviours", stats.behaviours.join(" · "));
  setText("count-sessions", stats.sessions.total);
  setText("count-open", stats.sessions.open);
  setText("count-messages", stats.messages.total - (stats.messages.deleted || 0));
  setText("count-unacknowledged", stats.messages.unacknowledged);
  setText("count-faults", stats.faults.total);
  $("fault-names").replaceChildren(
    ...Object.entries(stats.faults.by_name).map(([name, count]) => el("span", { class: "tag", text: `${name} × ${count}` })),
  );
}

// --- messages ------------------------------------------------------------------------------

async function drawMessages() {
  const params = new URLSearchParams({ order: "newest", offset: state.offset, limit: PAGE, summary: 1 });
  if (state.query) params.set("q", state.query);
  let result;
  try {
    result = await api("GET", `/api/messages?${params}`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 400) {
      setText("messages-total", error.message);
      $("messages-total").className = "error";
      return;
    }
    throw error;
  }
  $("messages-total").className = "muted";
  state.messages = result.data;
  state.total = Number(result.response.headers.get("X-Total-Count") || result.data.length);
  if (state.offset > 0 && state.offset >= state.total) {
    state.offset = Math.max(0, state.total - PAGE);
    return drawMessages();
  }
  const rows = state.messages.map(messageRow);
  $("messages").tBodies[0].replaceChildren(...rows);
  const first = state.total ? state.offset + 1 : 0;
  const last = state.offset + state.messages.length;
  setText("messages-total", state.total ? `${first}–${last} of ${state.total.toLocaleString()}` : "");
  $("messages-empty").hidden = state.messages.length > 0;
  $("messages-empty").textContent = state.query ? "Nothing matches." : "No messages yet.";
  $("page-newer").disabled = state.offset === 0;
  $("page-older").disabled = last >= state.total;
}

function selectTab(tab) {
  state.tab = tab;
  for (const button of document.querySelectorAll("#message-tabs button")) {
    button.classList.toggle("current", button.dataset.tab === tab);
  }
  for (const pane of document.querySelectorAll("#message .tab")) pane.hidden = pane.dataset.tab !== tab;
  if (tab === "raw" && state.message !== null && !$("message-raw").dataset.loaded) loadRaw();
}

async function loadRaw() {
  const sequence = state.message;
  const raw = $("message-raw");
  try {
    const { data } = await api("GET", `/api/messages/${sequence}/raw`);
    if (state.message !== sequence) return;
    raw.textContent = typeof data === "string" ? data : JSON.stringify(data, null, 1);
  } catch (error) {
    raw.textContent = error.message;
  }
  raw.dataset.loaded = "1";
}

async function openMessage(sequence) {
  state.message = sequence;
  for (const row of $("messages").tBodies[0].rows) {
    row.classList.toggle("selected", Number(row.dataset.sequence) === sequence);
  }
  $("message").hidden = sequence === null;
  if (sequence === null) return;
  let m;
  try {
    m = await getJson(`/api/messages/${sequence}`);
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    setText("message-subject", error.message);
    $("message-meta").replaceChildren();
    for (const pane of document.querySelectorAll("#message .tab")) pane.hidden = true;
    return;
  }
  if (state.message !== sequence) return;
  const header = (name) => (m.headers.find(([key]) => key.toLowerCase() === name) || [])[1];
  setText("message-subject", m.subject === null ? "(no subject)" : m.subject);
  meta($("message-meta"), [
    ["From", header("from") || m.mail_from],
    ["Envelope", `${m.mail_from} → ${m.rcpt_tos.join(", ")}`],
    ["Date", header("date")],
    ["Received", `${new Date(m.received).toLocaleString()} · ${size(m.size)}`],
    ["Message-ID", m.message_id],
    ["SES id", m.ses_id],
    // A message sent through the SES HTTP API has no SMTP session to show.
    ["Session", m.via && m.via !== "smtp" ? null : el("a", { href: `#/sessions/${m.session}`, text: `session ${m.session}` })],
    ["Status", status(m)],
    ["Came by", m.via && m.via !== "smtp" ? m.via : null],
  ]);
  const rawLink = $("message-raw-link");
  rawLink.href = m.raw_url;
  rawLink.setAttribute("download", `${String(m.sequence).padStart(6, "0")}.eml`);
  $("message-headers").tBodies[0].replaceChildren(...headerRows(m.headers, m.headers_decoded));
  const body = m.body;
  const raw = $("message-raw");
  raw.textContent = "";
  delete raw.dataset.loaded;
  if (body === null) {
    setText("message-text", m.body_missing);
    setText("message-html-source", m.body_missing);
    $("message-html").removeAttribute("src");
    $("message-parts").tBodies[0].replaceChildren();
    setText("attachment-count", "");
    selectTab("text");
    return;
  }
  $("message-text").replaceChildren(body.text === null ? "(no text part)" : linkify(body.text));
  setText("message-html-source", body.html === null ? "(no HTML part)" : body.html);
  showHtmlBody(m, body);
  const attachments = body.parts.filter((p) => p.attachment);
  setText("attachment-count", attachments.length ? `(${attachments.length})` : "");
  $("message-parts").tBodies[0].replaceChildren(
    ...body.parts.map((p) => {
      const link = el("a", { href: `${p.url}?download=1`, text: "download", download: p.filename || "" });
      tokenLink(link, p.filename);
      return el(
        "tr",
        { class: p.attachment ? "attachment" : "muted" },
        el("td", { class: "num", text: p.index }),
        el("td", {}, thumbnail(p), el("div", { text: p.filename || (p.attachment ? "(no name)" : "(body)") })),
        el("td", { class: "mono", text: p.content_type }),
        el("td", { class: "num", text: size(p.size) }),
        el("td", {}, link),
      );
    }),
  );
  const wanted = state.tab === "html" && body.html === null ? "text" : state.tab;
  selectTab(body.text === null && body.html !== null && wanted === "text" ? "html" : wanted);
}

function status(m) {
  const api = m.via && m.via !== "smtp";
  if (m.acknowledged) return api ? "delivered (200 sent with its MessageId)" : "delivered (250 sent)";
  const answer = api ? "the API's answer" : "the 250";
  return `cut before ${answer}: the client cannot know it arrived`;
}

async function deleteMessage(sequence) {
  const index = state.messages.findIndex((m) => m.sequence === sequence);
  await api("DELETE", `/api/messages/${sequence}`);
  // Its neighbour on this page opens next; a message opened from elsewhere (a session's link,
  // another page) closes, and the list stays on the page it shows.
  const next = index < 0 ? null : state.messages[index + 1] || state.messages[index - 1];
  location.hash = next ? `#/messages/${next.sequence}` : "#/messages";
  await drawMessages();
}

// --- sessions ------------------------------------------------------------------------------

function ended(s) {
  if (s.open) return "open";
  return `${s.closed_by}: ${s.close_reason}`;
}

async function drawSessions() {
  state.sessions = (await getJson(`/api/sessions?transcript=0&limit=${LAST}`)).reverse();
  $("sessions").tBodies[0].replaceChildren(
    ...state.sessions.map((s) =>
      el(
        "tr",
        {
          "data-number": s.number,
          class: [s.open ? "live" : "", s.number === state.session ? "selected" : ""].join(" ").trim() || null,
          onclick: () => (location.hash = `#/sessions/${s.number}`),
        },
        el("td", { class: "num", text: s.number }),
        el("td", { class: "mono", text: s.peer }),
        el("td", { text: clock(s.opened) }),
        el("td", { class: s.closed_by === "server" ? "bad-text" : null, text: ended(s) }),
        el("td", { class: "num", text: s.accepted }),
      ),
    ),
  );
  $("sessions-empty").hidden = state.sessions.length > 0;
}

function replyClass(code) {
  return { 2: "r2", 3: "r3", 4: "r4", 5: "r5" }[Math.floor((code || 0) / 100)] || "";
}

// One item of a conversation; `position` is its place in the whole (a fault's jump finds it).
function conversationRow(item, position, start) {
  const when = el("td", { class: "when", text: `+${((item.at - start) * 1000).toFixed(1)} ms` });
  if (item.kind === "gap") {
    return el("tr", { class: "gap", "data-position": position }, el("td", { colspan: 3, text: `… ${item.lines} lines left out …` }));
  }
  if (item.kind === "fault") {
    return el(
      "tr",
      { class: "fault", "data-position": position },
      when,
      el("td", { class: "dir", text: "⚑" }),
      el(
        "td",
        {},
        el("b", { text: `${item.source} ${item.name}` }),
        el("span", { text: ` at ${item.stage} (command ${item.command}): ${item.action}${item.reply ? ` → ${item.reply}` : ""}` }),
        el("div", { class: "why", text: item.why }),
      ),
    );
  }
  const client = item.direction === ">";
  // A proxy's lines to its upstream: » what it relayed, « what the upstream answered.
  const upstream = item.direction === "»" || item.direction === "«";
  const kind = client ? "client" : item.direction === "»" ? "upstream" : `server ${replyClass(item.code)}`;
  const label = { ">": "C:", "<": "S:", "»": "→U:", "«": "U:" }[item.direction] || "";
  const text = el("td", { class: "mono", text: item.text });
  if (item.carried) {
    // The end of data of an accepted message: to the message it carried.
    text.append(" ", el("a", { href: `#/messages/${item.carried}`, class: "carried", text: `→ message #${item.carried}` }));
  }
  return el(
    "tr",
    { class: upstream ? `upstream ${kind}` : kind, "data-position": position },
    when,
    el("td", { class: "dir", text: label }),
    text,
  );
}

async function openSession(number) {
  state.session = number;
  for (const row of $("sessions").tBodies[0].rows) {
    row.classList.toggle("selected", Number(row.dataset.number) === number);
  }
  $("session").hidden = number === null;
  if (number === null) return;
  let s;
  try {
    s = await getJson(`/api/sessions/${number}`);
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    setText("session-title", error.message);
    return;
  }
  if (state.session !== number) return;
  // A closed session drawn already stays as it is (its middle loaded, where it was scrolled).
  const drawn = `${s.number} ${s.open} ${s.conversation_total} ${s.messages.length}`;
  if (!s.open && $("conversation").dataset.drawn === drawn) return;
  $("conversation").dataset.drawn = drawn;
  setText("session-title", `Session ${s.number} from ${s.peer}`);
  const auth = s.conversation.filter((i) => i.kind === "line" && (i.code === 535 || i.code === 530));
  meta($("session-meta"), [
    ["Opened", new Date(s.opened).toLocaleString()],
    ["TLS", s.tls ? "yes" : "no"],
    ["Logged in as", s.user],
    ["AUTH refused", auth.length ? `${auth.length}× (${auth[0].text})` : null],
    ["Ended", s.open ? "still open" : `closed by ${s.closed_by} (${s.close_reason})`],
    ["Messages", s.accepted],
    ["Commands after a 421", s.commands_after_421 || null],
    ["Faults", faultLinks(s.faults || [], number, (item, at) => conversationRow(item, at, s.opened_at))],
    ["Lines", s.conversation_total > s.conversation.length ? `${s.conversation_total.toLocaleString()} in all` : null],
  ]);
  const start = s.opened_at;
  const draw = (item, position) => conversationRow(item, position, start);
  const rows = [];
  let position = 0;
  for (const item of s.conversation) {
    if (item.kind === "more") {
      rows.push(moreRow(item, number, draw));
      position = item.offset + item.count;
    } else {
      rows.push(draw(item, position));
      position += 1;
    }
  }
  if (!s.open) {
    rows.push(el("tr", { class: "end" }, el("td", { colspan: 3, text: `connection closed by ${s.closed_by}: ${s.close_reason}` })));
  }
  $("conversation").tBodies[0].replaceChildren(...rows);
  $("session-messages").replaceChildren(
    ...(s.messages.length
      ? s.messages.map((m) =>
          el(
            "li",
            {},
            el("a", { href: `#/messages/${m.sequence}`, text: `#${m.sequence} ${m.subject === null ? "(no subject)" : m.subject}` }),
            el("span", { class: "muted", text: ` ${m.message_id || ""}${m.acknowledged ? "" : " (cut before the 250)"}` }),
          ),
        )
      : [el("li", { class: "muted", text: "none" })]),
  );
}

// --- faults --------------------------------------------------------------------------------

async function drawFaults() {
  const faults = (await getJson(`/api/faults?limit=${LAST}`)).reverse();
  $("faults").tBodies[0].replaceChildren(
    ...faults.map((f) =>
      el(
        "tr",
        {},
        el("td", { class: "num", text: f.index }),
        el("td", { class: "num" }, el("a", { href: `#/sessions/${f.session}`, text: f.session })),
        el("td", { text: f.stage }),
        el("td", { text: `${f.source}:${f.name} (${f.action})` }),
        el("td", { class: "mono", text: f.reply }),
      ),
    ),
  );
  $("faults-empty").hidden = faults.length > 0;
}

// --- SES's events ---------------------------------------------------------------------------

function eventDetail(e) {
  const body = e.event;
  if (e.kind === "Bounce") return `${body.bounce.bounceType}/${body.bounce.bounceSubType}`;
  if (e.kind === "Complaint") return body.complaint.complaintFeedbackType || "";
  if (e.kind === "Delivery") return body.delivery.smtpResponse;
  return e.configuration_set ? `configuration set ${e.configuration_set}` : "";
}

async function drawEvents() {
  const listed = await getJson("/api/ses-events");
  setText("count-ses-events", listed.count);
  if (state.view !== "events") return;
  const events = listed.events.slice(-LAST).reverse();
  $("ses-events").tBodies[0].replaceChildren(
    ...events.map((e) =>
      el(
        "tr",
        { class: `event-${e.kind.toLowerCase()}` },
        el("td", { class: "num", text: e.sequence }),
        el("td", { text: clock(e.timestamp) }),
        el("td", { text: e.kind }),
        el("td", { class: "mono", text: e.message_id }),
        el("td", { text: e.recipients.join(", ") }),
        el("td", { text: eventDetail(e) }),
      ),
    ),
  );
  $("ses-events-empty").hidden = events.length > 0;
  const posts = (await getJson("/api/ses-events/deliveries")).deliveries.slice(-LAST).reverse();
  $("ses-deliveries").tBodies[0].replaceChildren(
    ...posts.map((d) =>
      el(
        "tr",
        {},
        el("td", { text: new Date(d.at * 1000).toISOString().slice(11, 23) }),
        el("td", { class: "mono", text: d.url }),
        el("td", { text: d.type }),
        el("td", { text: d.kind || "" }),
        el("td", { class: "num", text: d.attempt }),
        el("td", { text: (d.status === null ? d.error : d.status) + (d.gave_up ? " (gave up)" : "") }),
        el("td", { text: d.fault || "" }),
      ),
    ),
  );
  $("ses-deliveries-empty").hidden = posts.length > 0;
}

// --- the plan panel ------------------------------------------------------------------------

function fieldValue(text, kind) {
  const trimmed = text.trim();
  if (trimmed === "") return undefined;
  if (kind === "int" || kind === "float") {
    const number = Number(trimmed);
    return Number.isFinite(number) ? number : trimmed; // the server words the error
  }
  if (kind === "bool") return trimmed === "true";
  if (kind === "list") return trimmed.split(",").map((s) => s.trim()).filter(Boolean);
  return trimmed;
}

function shown(value) {
  if (value === null || value === undefined) return "off";
  return Array.isArray(value) ? value.join(", ") : String(value);
}

async function drawPlan(force) {
  if (state.dirty && !force) return;
  const panel = await getJson("/api/steering");
  if (state.dirty && !force) return; // typed into while it loaded: what was typed stays
  state.panel = panel;
  state.dirty = false;
  $("plan-error").hidden = true;
  const profile = $("plan-profile");
  profile.replaceChildren(...panel.profiles.map((p) => el("option", { value: p, text: p, selected: p === panel.profile })));
  $("plan-seed").value = panel.seed;
  $("plan-limits").tBodies[0].replaceChildren(
    ...panel.limits.map((limit) => {
      const override = panel.plan.limits ? panel.plan.limits[limit.key] : undefined;
      const input =
        limit.kind === "bool"
          ? el("select", { "data-key": limit.key, class: "limit-value" }, el("option", { value: "", text: "profile" }), el("option", { value: "true", text: "true", selected: override === true }), el("option", { value: "false", text: "false", selected: override === false }))
          : el("input", { type: "text", size: 10, "data-key": limit.key, class: "limit-value", value: override === undefined ? "" : shown(override), placeholder: shown(limit.profile_value) });
      input.addEventListener("input", markDirty);
      const toggle = el("input", { type: "checkbox", "data-key": limit.key, class: "limit-on", checked: limit.on, disabled: !limit.switchable, "aria-label": `${limit.key} on` });
      toggle.addEventListener("change", () => applyPlan());
      return el(
        "tr",
        { "data-key": limit.key, class: limit.on ? null : "off" },
        el("td", {}, toggle),
        el("td", { class: "mono", text: limit.key }),
        el("td", {}, input, limit.on ? null : el("span", { class: "muted", text: " (off)" })),
        el("td", { class: "muted", text: shown(limit.profile_value) }),
        el("td", { class: "num fired", text: limit.fired || "" }),
      );
    }),
  );
  $("plan-rules").tBodies[0].replaceChildren(
    ...panel.rules.map((rule) => {
      const toggle = el("input", { type: "checkbox", class: "rule-on", "data-index": rule.index, checked: rule.on, "aria-label": `rule ${rule.index} on` });
      toggle.addEventListener("change", () => applyPlan());
      const remove = el("button", { type: "button", class: "link", text: "remove", onclick: () => applyPlan({ remove: rule.index }) });
      const edit = el("button", { type: "button", class: "link edit", text: "edit", onclick: () => editRule(rule) });
      return el(
        "tr",
        { "data-index": rule.index, class: rule.on ? null : "off" },
        el("td", {}, toggle),
        el("td", { class: "mono spec", text: rule.spec }),
        el("td", { class: "num fired", text: rule.fired }),
        el("td", { class: "rule-actions" }, edit, " ", remove),
      );
    }),
  );
  $("plan-rules-empty").hidden = panel.rules.length > 0;
  drawRuleForm(panel.form);
}

async function drawPlanCounts() {
  if (state.view !== "plan" || state.dirty) return;
  const panel = await getJson("/api/steering");
  for (const limit of panel.limits) {
    const cell = document.querySelector(`#plan-limits tr[data-key="${limit.key}"] .fired`);
    if (cell) cell.textContent = limit.fired || "";
  }
  for (const rule of panel.rules) {
    const cell = document.querySelector(`#plan-rules tr[data-index="${rule.index}"] .fired`);
    if (cell) cell.textContent = rule.fired;
  }
}

function markDirty() {
  state.dirty = true;
  setText("plan-state", "changed, not applied");
}

let formDrawn = false;
function drawRuleForm(form) {
  if (formDrawn) return;
  formDrawn = true;
  $("rule-stage").replaceChildren(...form.stages.map((s) => el("option", { value: s, text: s, selected: s === "RCPT" })));
  $("rule-action").replaceChildren(...Object.keys(form.actions).map((a) => el("option", { value: a, text: a })));
  $("rule-matcher").append(
    ...form.matcher.map((key) => el("label", {}, `${key} `, el("input", { name: key, type: "text", size: 8, "data-kind": ["sender", "recipient"].includes(key) ? "str" : key === "probability" ? "float" : "int" }))),
  );
  const drawActionFields = () => {
    const fields = form.actions[$("rule-action").value] || [];
    $("rule-action-fields").replaceChildren(
      el("legend", { text: "Action details" }),
      ...fields.map((key) => el("label", {}, `${key} `, el("input", { name: key, type: "text", size: key === "text" ? 30 : 8, "data-kind": key === "code" ? "int" : key.endsWith("_s") ? "float" : key === "close" ? "bool" : "str" }))),
    );
  };
  $("rule-action").addEventListener("change", drawActionFields);
  drawActionFields();
}

// A rule's numbers are changed in the form it was added with: load it there, save in place.
function editRule(rule) {
  const form = $("rule-form");
  form.dataset.replace = rule.index;
  form.elements.stage.value = rule.rule.stage;
  form.elements.action.value = rule.rule.action;
  form.elements.action.dispatchEvent(new Event("change"));
  form.elements.name.value = rule.rule.name || "";
  for (const input of form.querySelectorAll("fieldset input")) {
    const value = rule.rule[input.name];
    input.value = value === undefined || value === null ? "" : String(value);
  }
  setText("rule-submit", `Save rule ${rule.index}`);
  $("rule-cancel").hidden = false;
  form.scrollIntoView({ block: "nearest" });
}

function resetRuleForm() {
  const form = $("rule-form");
  delete form.dataset.replace;
  for (const input of form.querySelectorAll("input")) input.value = "";
  setText("rule-submit", "Add rule");
  $("rule-cancel").hidden = true;
}

function planFromPanel(extra = {}) {
  const panel = state.panel;
  const limits = {};
  for (const input of document.querySelectorAll("#plan-limits .limit-value")) {
    const limit = panel.limits.find((l) => l.key === input.dataset.key);
    const value = fieldValue(input.value, limit.kind);
    if (value !== undefined) limits[limit.key] = value;
  }
  const faults = (panel.plan.faults || []).slice();
  const off = {
    faults: [...document.querySelectorAll("#plan-rules .rule-on")].filter((c) => !c.checked).map((c) => Number(c.dataset.index)),
    limits: [...document.querySelectorAll("#plan-limits .limit-on")].filter((c) => !c.checked && !c.disabled).map((c) => c.dataset.key),
  };
  if (extra.remove !== undefined) {
    faults.splice(extra.remove, 1);
    off.faults = off.faults.filter((i) => i !== extra.remove).map((i) => (i > extra.remove ? i - 1 : i));
  }
  if (extra.add) faults.push(extra.add);
  if (extra.replace) faults[extra.replace.index] = extra.replace.rule;
  const seed = $("plan-seed").value.trim();
  const plan = { profile: $("plan-profile").value, seed: /^-?\d+$/.test(seed) ? Number(seed) : seed, limits, faults };
  return { plan, off };
}

async function applyPlan(extra) {
  const error = $("plan-error");
  try {
    await api("PUT", "/api/steering", planFromPanel(extra));
  } catch (failure) {
    if (!(failure instanceof ApiError)) throw failure;
    error.textContent = failure.message;
    error.hidden = false;
    return false;
  }
  state.dirty = false;
  await drawPlan(true);
  setText("plan-state", `applied at ${new Date().toLocaleTimeString()}`);
  return true;
}

async function addRule(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const rule = { stage: form.elements.stage.value, action: form.elements.action.value };
  if (form.elements.name.value.trim()) rule.name = form.elements.name.value.trim();
  for (const input of form.querySelectorAll("fieldset input")) {
    const value = fieldValue(input.value, input.dataset.kind);
    if (value !== undefined) rule[input.name] = value;
  }
  const index = form.dataset.replace;
  const change = index === undefined ? { add: rule } : { replace: { index: Number(index), rule } };
  if (await applyPlan(change)) resetRuleForm();
}

// --- keyboard ------------------------------------------------------------------------------

function move(step) {
  if (state.view === "messages" && state.messages.length) {
    const at = state.messages.findIndex((m) => m.sequence === state.message);
    const next = state.messages[Math.min(state.messages.length - 1, Math.max(0, at < 0 ? 0 : at + step))];
    location.hash = `#/messages/${next.sequence}`;
  } else if (state.view === "sessions" && state.sessions.length) {
    const at = state.sessions.findIndex((s) => s.number === state.session);
    const next = state.sessions[Math.min(state.sessions.length - 1, Math.max(0, at < 0 ? 0 : at + step))];
    location.hash = `#/sessions/${next.number}`;
  }
}

function onKey(event) {
  const typing = ["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement.tagName);
  if (event.key === "Escape") {
    if (typing) document.activeElement.blur();
    else if (state.view === "messages" || state.view === "sessions") location.hash = `#/${state.view}`;
    return;
  }
  if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.key === "j" || event.key === "ArrowDown") move(1);
  else if (event.key === "k" || event.key === "ArrowUp") move(-1);
  else if (event.key === "/") $("search").focus();
  else return;
  event.preventDefault();
  const selected = document.querySelector(`#view-${state.view} tr.selected`);
  if (selected) selected.scrollIntoView({ block: "nearest" });
}

// --- start ---------------------------------------------------------------------------------

const refresh = {
  stats: debounced(drawStats),
  messages: debounced(drawMessages),
  sessions: debounced(drawSessions),
  faults: debounced(drawFaults),
  events: debounced(drawEvents),
  session: debounced(() => openSession(state.session)),
  plan: debounced(() => (state.view === "plan" ? drawPlan(false) : null)),
  planCounts: debounced(drawPlanCounts, 250),
  all() {
    for (const name of ["stats", "messages", "sessions", "faults", "events", "plan"]) refresh[name]();
    if (state.session !== null) refresh.session();
  },
};

$("search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  state.query = $("search").value.trim();
  state.offset = 0;
  drawMessages();
});
$("page-newer").addEventListener("click", () => {
  state.offset = Math.max(0, state.offset - PAGE);
  drawMessages();
});
$("page-older").addEventListener("click", () => {
  state.offset += PAGE;
  drawMessages();
});
$("delete-all").addEventListener("click", async () => {
  if (!confirm("Delete every message from this list? (The server's ledger keeps them.)")) return;
  await api("DELETE", "/api/messages");
  location.hash = "#/messages";
  drawMessages();
});
$("message-delete").addEventListener("click", () => deleteMessage(state.message));
for (const button of document.querySelectorAll("#message-tabs button")) {
  button.addEventListener("click", () => selectTab(button.dataset.tab));
}
for (const button of document.querySelectorAll("#preview-widths button")) {
  button.addEventListener("click", () => previewWidth(button.dataset.width));
}
tokenLink($("message-raw-link"));
$("plan-apply").addEventListener("click", () => applyPlan());
$("plan-profile").addEventListener("change", markDirty);
$("plan-seed").addEventListener("input", markDirty);
$("rule-form").addEventListener("submit", addRule);
$("rule-cancel").addEventListener("click", resetRuleForm);
document.addEventListener("keydown", onKey);
window.addEventListener("hashchange", route);

route();
listen();
// Events fall due on the server's clock, with nothing written to the ledger: look again.
setInterval(() => refresh.events(), 2000);
