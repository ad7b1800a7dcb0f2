// The message viewer's and the long session's parts, used by app.js (loaded after this file,
// in the same global scope): links in text bodies, headers decoded beside their raw form,
// image thumbnails, the HTML body's preview widths and inline images, the list's columns, and
// the long conversation's middle loaded on demand with a jump to each fault.
// Text still goes in through textContent only; links are made as elements, never as markup.
"use strict";

// --- text bodies: clickable links --------------------------------------------------------

// http(s) and mailto only: a javascript: or data: "link" in a message stays text.
const LINK = /\b(?:https?:\/\/|mailto:)[^\s<>"'`]+/gi;
const TRAILING = /[.,;:!?)\]}'"]+$/; // punctuation that ends a sentence, not the URL

function linkify(text) {
  const fragment = document.createDocumentFragment();
  let at = 0;
  for (const found of text.matchAll(LINK)) {
    const url = found[0].replace(TRAILING, "");
    fragment.append(document.createTextNode(text.slice(at, found.index)));
    // A new tab, no Referer (the page's URL may carry the API token) and no window.opener.
    fragment.append(el("a", { href: url, target: "_blank", rel: "noreferrer noopener", text: url }));
    at = found.index + url.length;
  }
  fragment.append(document.createTextNode(text.slice(at)));
  return fragment;
}

// --- headers: decoded beside raw -----------------------------------------------------------

function headerRows(raw, decodedPairs) {
  return raw.map(([key, value], n) => {
    const decoded = decodedPairs && decodedPairs[n] ? decodedPairs[n][1] : value;
    const cell = el("td", {}, el("span", { class: "decoded", text: decoded }));
    if (decoded !== value) {
      cell.append(el("div", { class: "raw mono muted", text: value, title: "as sent (RFC 2047)" }));
    }
    return el("tr", {}, el("th", { text: key }), cell);
  });
}

// --- parts: thumbnails --------------------------------------------------------------------

const THUMBNAIL_BYTES = 5 * 1024 * 1024; // larger images are not fetched for a thumbnail

// An image part's URL the page can show: the part's own, or with a token (an <img> cannot send
// it) a data: URL of what was fetched with it.
async function imageUrl(url) {
  if (!TOKEN) return url;
  const response = await fetch(url, { headers: AUTH, cache: "no-store" });
  const blob = await response.blob();
  return new Promise((resolve) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.readAsDataURL(blob);
  });
}

function thumbnail(part) {
  if (!part.content_type.startsWith("image/") || part.size > THUMBNAIL_BYTES) return null;
  const img = el("img", { class: "thumb", alt: part.filename || `part ${part.index}`, loading: "lazy" });
  imageUrl(part.url).then((url) => img.setAttribute("src", url));
  return img;
}

// --- the HTML body: inline images and preview widths ----------------------------------------

const WIDTHS = { phone: 375, tablet: 768, desktop: null };

function previewWidth(name) {
  const frame = $("message-html");
  for (const key of Object.keys(WIDTHS)) frame.classList.toggle(`w-${key}`, key === name);
  for (const button of document.querySelectorAll("#preview-widths button")) {
    button.classList.toggle("current", button.dataset.width === name);
  }
  state.width = name;
}

// The frame shows /api/messages/N/html: the body with its cid: images as data: URLs, under the
// policy every part has. With a token the frame cannot send it: the page fetches the body and
// frames it from itself (srcdoc), still in a sandbox that runs no script.
async function showHtmlBody(m, body) {
  const frame = $("message-html");
  frame.removeAttribute("srcdoc");
  frame.removeAttribute("src");
  if (body.html_part === null) return;
  const url = `/api/messages/${m.sequence}/html`;
  if (!TOKEN) {
    frame.src = url;
    return;
  }
  try {
    const { data } = await api("GET", url);
    if (state.message === m.sequence) frame.srcdoc = data;
  } catch (error) {
    if (state.message === m.sequence) frame.srcdoc = "";
  }
}

// --- the list's columns ---------------------------------------------------------------------

function listDate(iso) {
  if (!iso) return "";
  const when = new Date(iso);
  const today = new Date().toDateString() === when.toDateString();
  return today ? when.toLocaleTimeString() : when.toLocaleString();
}

function cameBy(m) {
  if (m.via && m.via !== "smtp") return el("span", { class: "badge", text: m.via.replace("api-", "API ") });
  return el("a", { href: `#/sessions/${m.session}`, class: "muted", text: `SMTP #${m.session}`, onclick: (e) => e.stopPropagation() });
}

function messageRow(m) {
  const files = m.attachments ? `${m.attachments} file${m.attachments === 1 ? "" : "s"}` : "";
  return el(
    "tr",
    {
      "data-sequence": m.sequence,
      class: [m.acknowledged ? "" : "warn", m.sequence === state.message ? "selected" : ""].join(" ").trim() || null,
      onclick: () => (location.hash = `#/messages/${m.sequence}`),
    },
    el("td", { class: "num", text: m.sequence }),
    el(
      "td",
      { class: "who" },
      el("div", { class: "from", text: m.mail_from }),
      el("div", { class: "to muted", text: `→ ${m.rcpt_tos.join(", ")}` }),
    ),
    el(
      "td",
      { class: "subject" },
      el("span", { class: "title", text: m.subject === null ? "(no subject)" : m.subject }),
      m.acknowledged ? null : el("span", { class: "badge bad", text: "cut before the answer" }),
      m.snippet ? el("div", { class: "snippet muted", text: m.snippet }) : null,
    ),
    el(
      "td",
      { class: "when" },
      el("div", { class: "date", text: listDate(m.received) }),
      el("div", { class: "size", text: size(m.size) }),
    ),
    el(
      "td",
      { class: "how" },
      el("div", { class: "came" }, cameBy(m)),
      el("div", { class: "clip", title: files ? "attachments" : null, text: files }),
    ),
  );
}

// --- long sessions: the middle on demand, and a jump to each fault ---------------------------

const MORE_PAGE = 500; // lines a "Show more" adds
const PAGE_MOST = 1000; // the most the server sends at once

function moreRow(item, number, draw) {
  const row = el("tr", { class: "gap more", "data-offset": item.offset, "data-count": item.count });
  const load = (all) => loadMore(row, number, draw, all);
  row.append(
    el(
      "td",
      { colspan: 3 },
      el("span", { text: `… ${item.count.toLocaleString()} more lines … ` }),
      el("button", { type: "button", class: "load-more", text: `Show ${Math.min(MORE_PAGE, item.count)} more`, onclick: () => load(false) }),
      " ",
      el("button", { type: "button", class: "load-all", text: "Show all", onclick: () => load(true) }),
    ),
  );
  return row;
}

// Load the next page of the middle (or all of it) in front of the `more` row; one load at a
// time per row (a second click, or a jump, waits for the one under way).
const loading = new WeakMap();

function loadMore(row, number, draw, all, wanted = MORE_PAGE) {
  const busy = loading.get(row);
  if (busy) return busy;
  const done = loadPages(row, number, draw, all, wanted).finally(() => loading.delete(row));
  loading.set(row, done);
  return done;
}

async function loadPages(row, number, draw, all, wanted) {
  for (;;) {
    const offset = Number(row.dataset.offset);
    const count = Number(row.dataset.count);
    if (count <= 0 || !row.isConnected) return;
    const limit = Math.min(all ? PAGE_MOST : Math.min(wanted, PAGE_MOST), count);
    const page = await getJson(`/api/sessions/${number}/conversation?offset=${offset}&limit=${limit}`);
    if (state.session !== number || !row.isConnected) return;
    const rows = page.items.map((item, n) => draw(item, offset + n));
    row.before(...rows);
    row.dataset.offset = offset + page.items.length;
    row.dataset.count = count - page.items.length;
    if (count - page.items.length <= 0 || !page.items.length) {
      row.remove();
      return;
    }
    row.querySelector(".load-more").textContent = `Show ${Math.min(MORE_PAGE, count - page.items.length)} more`;
    row.querySelector("span").textContent = `… ${(count - page.items.length).toLocaleString()} more lines … `;
    if (!all) return;
  }
}

// Scroll to the conversation's item `position`, loading the middle up to it first.
async function jumpTo(position, number, draw) {
  const find = () => document.querySelector(`#conversation tr[data-position="${position}"]`);
  let row = find();
  for (let tries = 0; !row && tries < 1000 && state.session === number; tries += 1) {
    const more = document.querySelector("#conversation tr.more"); // a redraw may replace it
    if (!more || Number(more.dataset.offset) > position) break;
    // Up to the fault in as few requests as the server allows.
    await loadMore(more, number, draw, false, position - Number(more.dataset.offset) + 1);
    row = find();
  }
  if (!row) return;
  for (const old of document.querySelectorAll("#conversation tr.target")) old.classList.remove("target");
  row.classList.add("target");
  row.scrollIntoView({ block: "center" });
}

function faultLinks(faults, number, draw) {
  if (!faults.length) return null;
  const links = el("span", { class: "fault-links" });
  for (const fault of faults) {
    links.append(
      el("button", {
        type: "button",
        class: "linkish",
        "data-position": fault.position,
        text: `⚑ ${fault.name} at ${fault.stage}`,
        onclick: () => jumpTo(fault.position, number, draw),
      }),
      " ",
    );
  }
  return links;
}

// --- stored templates (the plan panel) -------------------------------------------------------

async function drawTemplates() {
  const templates = await getJson("/api/templates");
  $("plan-templates").tBodies[0].replaceChildren(
    ...templates.map((t) =>
      el(
        "tr",
        { "data-name": t.name },
        el("td", { class: "mono", text: t.name }),
        el("td", { text: t.Subject === undefined ? "" : t.Subject }),
        el("td", { text: ["Text", "Html"].filter((part) => t[part] !== undefined).join(", ") || "none" }),
        el("td", { class: "when", text: new Date(t.created * 1000).toLocaleString() }),
      ),
    ),
  );
  $("plan-templates-empty").hidden = templates.length > 0;
}
