// wirewatch console: every string from an article or a feed goes into the page as text (textContent),
// never as markup, and a link is made only for an http(s) URL.
"use strict";

const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function link(url, text) {
  let safe = null;
  try {
    const parsed = new URL(url);
    if (parsed.protocol === "http:" || parsed.protocol === "https:") safe = parsed.href;
  } catch (e) { safe = null; }
  if (!safe) return el("span", text);
  const a = el("a", text);
  a.href = safe;
  a.rel = "noopener noreferrer";
  a.target = "_blank";
  return a;
}

async function getJSON(path, options) {
  const response = await fetch(path, options);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

// -- tabs ---------------------------------------------------------------------------------------------
const loaders = {};
for (const button of document.querySelectorAll("nav button")) {
  button.addEventListener("click", () => {
    for (const b of document.querySelectorAll("nav button")) b.classList.toggle("active", b === button);
    for (const s of document.querySelectorAll(".tab")) s.classList.toggle("active", s.id === button.dataset.tab);
    const load = loaders[button.dataset.tab];
    if (load) load().catch((e) => console.warn(e.message));
  });
}

// -- alerts -------------------------------------------------------------------------------------------
const stories = new Map(); // story id -> the list its later alerts go in
const seen = new Set();
const choices = { watch: new Set(), language: new Set(), source: new Set() };

// The snippet with each matched name marked, built from text nodes only.
function snippet(alert) {
  const p = el("p", null, "snippet");
  const text = alert.snippet || "";
  const names = [...new Set((alert.matches || []).map((m) => m.text).filter(Boolean))]
    .sort((a, b) => b.length - a.length);
  let i = 0;
  while (i < text.length) {
    let best = -1, name = "";
    for (const n of names) {
      const at = text.indexOf(n, i);
      if (at !== -1 && (best === -1 || at < best)) { best = at; name = n; }
    }
    if (best === -1) { p.append(document.createTextNode(text.slice(i))); break; }
    p.append(document.createTextNode(text.slice(i, best)), el("mark", name));
    i = best + name.length;
  }
  return p;
}

function addChoice(kind, value) {
  if (!value || choices[kind].has(value)) return;
  choices[kind].add(value);
  const option = el("option", value);
  option.value = value;
  $("f-" + kind).append(option);
}

function visible(alert) {
  const w = $("f-watch").value, l = $("f-language").value, s = $("f-source").value;
  return (!w || (alert.watches || []).includes(w)) && (!l || alert.language === l) && (!s || alert.source === s);
}

function showAlert(alert) {
  if (!alert || seen.has(alert.alert_id)) return;
  seen.add(alert.alert_id);
  for (const w of alert.watches || []) addChoice("watch", w);
  addChoice("language", alert.language);
  addChoice("source", alert.source);
  const item = el("li", null, "alert");
  item.dataset.alertId = alert.alert_id;
  item.alert = alert;
  const title = el("h3");
  title.append(link(alert.url, alert.title || alert.url));
  const meta = el("div", null, "meta");
  for (const w of alert.watches || []) meta.append(el("span", w, "watch"));
  meta.append(document.createTextNode(
    [alert.source, alert.language, alert.published || alert.created_at].filter(Boolean).join(" · ")));
  const why = el("button", "why?");
  const reasons = el("div", null, "why");
  why.addEventListener("click", async () => {
    reasons.textContent = "";
    try {
      const found = await getJSON("/api/explain?alert_id=" + encodeURIComponent(alert.alert_id));
      for (const r of found) reasons.append(el("div", `${r.watch} '${r.text}' [${r.how}]: ${r.why}`));
    } catch (e) { reasons.textContent = e.message; }
  });
  item.append(title, meta, snippet(alert), why, reasons);
  item.classList.toggle("hidden", !visible(alert));
  const story = alert.story_id;
  if (story && stories.has(story)) {
    stories.get(story).prepend(item);
    return;
  }
  if (story) {
    const later = el("ol", null, "later");
    item.append(later);
    stories.set(story, later);
  }
  $("alert-list").prepend(item);
}

function refilter() {
  for (const item of document.querySelectorAll(".alert")) item.classList.toggle("hidden", !visible(item.alert));
}
for (const kind of ["watch", "language", "source"]) $("f-" + kind).addEventListener("change", refilter);

function listen() {
  const source = new EventSource("/events");
  source.onopen = () => { $("live").className = "on"; $("live").textContent = "live"; };
  source.onerror = () => { $("live").className = "off"; $("live").textContent = "reconnecting"; };
  source.onmessage = (event) => showAlert(JSON.parse(event.data));
}

// -- feeds, dead letters, watchlist, pipeline ---------------------------------------------------------
function row(cells) {
  const tr = el("tr");
  for (const cell of cells) tr.append(cell instanceof Node ? cell : el("td", cell));
  return tr;
}

function cell(text, cls) { return el("td", text, cls); }

function gap(seconds) {
  if (seconds === null || seconds === undefined) return "";
  return seconds >= 3600 ? `${(seconds / 3600).toFixed(1)} h` : `${Math.round(seconds / 60)} min`;
}

function perDay(seconds) {
  return seconds ? (86400 / seconds).toFixed(1) : "";
}

loaders.feeds = async () => {
  const feeds = await getJSON("/api/feeds");
  $("feed-rows").replaceChildren(...feeds.map((f) => {
    const failing = f.consecutive_failures > 0;
    const state = failing ? "failing" : (f.alerted === "feed_silent" ? "silent" : "ok");
    const name = el("td");
    name.append(link(f.feed_url, f.source || f.feed_url));
    return row([name, cell(state, state === "ok" ? "ok" : "bad"), cell(f.last_success || "never"),
      cell(f.consecutive_failures), cell(f.last_error ? `${f.last_error_class}: ${f.last_error}` : ""),
      cell(f.items_seen), cell(perDay(f.median_interval_seconds)), cell(gap(f.median_interval_seconds)),
      cell(f.last_item_at ? gap((Date.now() - Date.parse(f.last_item_at)) / 1000) : "")]);
  }));
};

loaders.deadletters = async () => {
  const letters = await getJSON("/api/deadletters");
  $("dead-rows").replaceChildren(...letters.reverse().map((d) =>
    row([cell(d.failed_at), cell(d.stage), cell(d.error_class), cell(d.key), cell(d.reason)])));
};

loaders.watchlist = async () => {
  const watches = await getJSON("/api/watchlist");
  $("watch-rows").replaceChildren(...watches.map((w) =>
    row([cell(w.id), cell(w.kind), cell(w.name), cell((w.aliases || []).join(", "))])));
};

loaders.pipeline = async () => {
  const stages = await getJSON("/api/pipeline");
  $("stage-rows").replaceChildren(...stages.map((s) => {
    const handled = Object.entries(s.handled).map(([k, v]) => `${k} ${v}`).join(", ");
    return row([cell(s.input), cell(`${s.stage}: ${s.does}`), cell(s.outputs.join(", ")), cell(handled), cell(s.lag)]);
  }));
};

$("try").addEventListener("submit", async (event) => {
  event.preventDefault();
  const out = $("try-result");
  out.replaceChildren(el("p", "matching..."));
  const url = $("try-url").value.trim();
  const body = url ? { url } : { text: $("try-text").value };
  try {
    const result = await getJSON("/api/try", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    const list = el("ul", null, "matches");
    for (const m of result.matches) list.append(el("li", `${m.watch} '${m.text}' [${m.how}]: ${m.why}`));
    out.replaceChildren(...(result.title ? [el("p", result.title)] : []),
      result.matches.length ? list : el("p", "no watch named"));
  } catch (e) { out.replaceChildren(el("p", e.message, "bad")); }
});

// -- start --------------------------------------------------------------------------------------------
getJSON("/api/alerts").then((alerts) => { for (const a of alerts) showAlert(a); }).catch((e) => console.warn(e.message));
listen();
