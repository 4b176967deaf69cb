/* diffsvc report UI: plain JavaScript, no build step, no third-party code.
   Pages (hash routes): #/ overview, #/endpoint/<name>, #/exchange/<id>, #/rules.
   Token: ?token=… in the URL or entered once when the API answers 401; kept in localStorage. */
"use strict";

const API = "/api/v1";
const REFRESH_MS = 5000;
const TOKEN_KEY = "diffsvc.token";
const WINDOW_KEY = "diffsvc.window";
let refreshTimer = null;

// ---- small helpers ------------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const fmtInt = (n) => (n || 0).toLocaleString("en-US");
const fmtPct = (x) => (x === null || x === undefined) ? "–" : (x * 100).toFixed(x < 0.1 && x > 0 ? 2 : 1) + "%";
const fmtMs = (x) => (x === null || x === undefined) ? "–" : (x < 10 ? x.toFixed(1) : Math.round(x)) + " ms";
const fmtTime = (t) => t ? new Date(t * 1000).toLocaleString() : "–";

function band(rate, pairs, failure) {
  if (failure) return "high";
  if (!pairs) return "none";
  if (rate === 0) return "ok";
  if (rate < 0.01) return "low";
  if (rate < 0.05) return "mid";
  return "high";
}

function token() { return localStorage.getItem(TOKEN_KEY) || ""; }

function toast(text, kind) {
  const el = document.getElementById("toast");
  el.textContent = text;
  el.className = "toast " + (kind || "");
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, 3500);
}

class AuthError extends Error {}

async function api(path, options) {
  const opts = Object.assign({ headers: {} }, options || {});
  if (token()) opts.headers["Authorization"] = "Bearer " + token();
  if (opts.json !== undefined) {
    opts.body = JSON.stringify(opts.json);
    opts.headers["Content-Type"] = "application/json";
  }
  const resp = await fetch(API + path, opts);
  if (resp.status === 401) throw new AuthError("token required");
  const body = await resp.json();
  if (!resp.ok) throw new Error(body.error || resp.statusText);
  return body;
}

function windowParam() {
  const build = document.getElementById("build").value;
  return "window=" + encodeURIComponent(document.getElementById("window").value) +
    (build ? "&build=" + encodeURIComponent(build) : "");
}

// The build selector lists every candidate build compared (newest first); "" is the newest.
function showBuilds(builds, shown) {
  const sel = document.getElementById("build");
  const chosen = sel.value;
  sel.replaceChildren(h("option", { value: "" }, "newest" + (builds.length && !chosen ? ` (${builds[0]})` : "")),
    ...builds.map((b) => h("option", { value: b }, b)));
  sel.value = builds.includes(chosen) ? chosen : "";
  sel.title = shown ? "judging build " + shown : "no build stamped (set version_header or candidate_version)";
}

function setStatus(text) { document.getElementById("status").textContent = text; }

function render(...nodes) {
  const app = document.getElementById("app");
  app.replaceChildren(...nodes.filter((n) => n !== null && n !== undefined && n !== false));
}

function card(label, value, cls) {
  return h("div", { class: "card " + (cls || "") }, h("div", { class: "card-value" }, value),
           h("div", { class: "card-label" }, label));
}

function rateBadge(rate, pairs, failure) {
  return h("span", { class: "badge band-" + band(rate, pairs, failure), title: failure || null },
           pairs ? fmtPct(rate) : failure ? "FAIL" : "no data");
}

const LABELS = { regression: "regression", not_significant: "not significant", noise: "noise", clean: "clean" };
const ERROR_KINDS = { connect: "connection refused", timeout: "timeout", reset: "connection reset", tls: "TLS failure",
                      protocol: "protocol error", too_large: "response too large", undecodable: "undecodable body", other: "error" };
const kindsText = (kinds) => Object.entries(kinds || {}).map(([k, n]) => `${ERROR_KINDS[k] || k} ${fmtInt(n)}`).join(", ");
const absentOr = (value, absent) => absent ? h("em", { class: "absent" }, "(absent)") : JSON.stringify(value);

function sparkline(points) {
  const w = 120, hgt = 28, pad = 2;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${hgt}`);
  svg.setAttribute("width", w); svg.setAttribute("height", hgt);
  svg.setAttribute("class", "spark");
  const vals = points.map((p) => (p === null ? null : p));
  const max = Math.max(0.05, ...vals.filter((v) => v !== null));
  const step = vals.length > 1 ? (w - 2 * pad) / (vals.length - 1) : 0;
  let d = "", pen = false;
  const dots = [];
  vals.forEach((v, i) => {
    if (v === null) { pen = false; return; }
    const x = pad + i * step, y = hgt - pad - (v / max) * (hgt - 2 * pad);
    d += (pen ? "L" : "M") + x.toFixed(1) + " " + y.toFixed(1) + " ";
    const alone = (i === 0 || vals[i - 1] === null) && (i === vals.length - 1 || vals[i + 1] === null);
    if (alone || i === vals.length - 1) dots.push([x, y]);
    pen = true;
  });
  const base = document.createElementNS(svg.namespaceURI, "line");
  Object.entries({ x1: pad, x2: w - pad, y1: hgt - pad, y2: hgt - pad, class: "spark-base" })
    .forEach(([k, v]) => base.setAttribute(k, v));
  svg.append(base);
  if (d) {
    const path = document.createElementNS(svg.namespaceURI, "path");
    path.setAttribute("d", d.trim());
    path.setAttribute("class", "spark-line");
    svg.append(path);
  }
  for (const [x, y] of dots) {
    const dot = document.createElementNS(svg.namespaceURI, "circle");
    dot.setAttribute("cx", x.toFixed(1)); dot.setAttribute("cy", y.toFixed(1)); dot.setAttribute("r", "2.2");
    dot.setAttribute("class", "spark-dot");
    svg.append(dot);
  }
  const title = document.createElementNS(svg.namespaceURI, "title");
  title.textContent = "mismatch rate over the window (oldest left)";
  svg.append(title);
  return svg;
}

// Paths an ignore rule can take: body fields (JSONPath) and headers; not status or a body's type.
const ignorable = (path) => path.startsWith("$") || path.startsWith("header.");

async function addRule(path, endpoint) {
  const rule = await api("/rules", { method: "POST", json: { path, endpoint } });
  toast(`Ignoring ${rule.path} on ${rule.endpoint === "*" ? "every endpoint" : rule.endpoint} from the workers' next batch`, "ok");
  return rule;
}

// ---- pages --------------------------------------------------------------------------------

function clearButton(id, endpoint, label, after) {
  // DELETE /data or /endpoints/<name>, as `diffsvc data clear [--endpoint NAME]`; rules stay
  return h("button", { class: "btn small ghost danger", id, onclick: async () => {
    const what = endpoint ? `the data of ${endpoint}` : "all stored data (exchanges, comparisons, counters)";
    if (!confirm(`Delete ${what}? Ignore rules are kept.`)) return;
    const done = await api(endpoint ? "/endpoints/" + encodeURIComponent(endpoint) : "/data", { method: "DELETE" });
    toast(`Cleared: ${fmtInt(done.keys_deleted)} keys deleted`, "ok");
    after();
  } }, label);
}

async function overviewPage() {
  const data = await api("/summary?" + windowParam());
  showBuilds(data.builds || [], data.build);
  const t = data.totals;
  const failing = data.endpoints.filter((e) => e.failure).length;
  const rows = data.endpoints.map((e) => {
    const href = "#/endpoint/" + encodeURIComponent(e.endpoint);
    return h("tr", { class: "row-link band-row-" + band(e.mismatch_rate, e.pairs, e.failure), "data-endpoint": e.endpoint,
                     onclick: () => { location.hash = href; } },
      h("td", { class: "endpoint" }, h("a", { href }, e.endpoint),
        e.failure ? h("div", { class: "error-text small failure" }, e.failure) : null),
      h("td", { class: "num" }, fmtInt(e.pairs)),
      h("td", { class: "num" }, fmtInt(e.matches)),
      h("td", { class: "num" }, fmtInt(e.mismatches)),
      h("td", { class: "num", title: kindsText(e.error_kinds) }, fmtInt(e.errors)),
      h("td", { class: "num" }, fmtInt(e.noise)),
      h("td", { class: "num rate" }, rateBadge(e.mismatch_rate, e.matches + e.mismatches, e.failure)),
      h("td", {}, sparkline(e.spark)),
      h("td", { class: "num lat" }, fmtMs(e.latency_ms.primary.p50), h("small", {}, " / " + fmtMs(e.latency_ms.primary.p99))),
      h("td", { class: "num lat" }, fmtMs(e.latency_ms.candidate.p50), h("small", {}, " / " + fmtMs(e.latency_ms.candidate.p99))));
  });
  const table = rows.length ? h("table", { class: "grid", id: "endpoints" },
    h("thead", {}, h("tr", {},
      h("th", {}, "Endpoint"), h("th", { class: "num" }, "Pairs"), h("th", { class: "num" }, "Matches"),
      h("th", { class: "num" }, "Mismatches"), h("th", { class: "num" }, "Errors"),
      h("th", { class: "num", title: "mismatches also seen between two production instances" }, "Noise"),
      h("th", { class: "num" }, "Mismatch rate"), h("th", {}, "Trend"),
      h("th", { class: "num" }, "Primary p50 / p99"), h("th", { class: "num" }, "Candidate p50 / p99"))),
    h("tbody", {}, rows))
    : h("div", { class: "empty" }, "No comparisons in this window yet. Send traffic through the gateway and run a worker.");
  render(
    h("div", { class: "page-head" }, h("h1", {}, "Endpoints"),
      h("p", { class: "muted" }, "Failing endpoints first, then by mismatch rate. Refreshes every 5 seconds."),
      clearButton("clear-data", null, "Clear all data", () => route())),
    h("section", { class: "cards" },
      card("pairs compared", fmtInt(t.pairs)),
      card("mismatch rate", t.matches + t.mismatches ? fmtPct(t.mismatch_rate) : "–", "band-text-" + band(t.mismatch_rate, t.pairs)),
      card("mismatches", fmtInt(t.mismatches)),
      card("errors", fmtInt(t.errors)),
      card("failing endpoints", fmtInt(failing), failing ? "band-text-high" : "band-text-ok"),
      card("endpoints", fmtInt(data.endpoints.length))),
    h("section", { class: "panel" }, table),
    h("p", { class: "legend" }, "Bands: ",
      h("span", { class: "badge band-ok" }, "0%"), h("span", { class: "badge band-low" }, "< 1%"),
      h("span", { class: "badge band-mid" }, "1–5%"), h("span", { class: "badge band-high" }, "≥ 5%"),
      h("span", { class: "badge band-high" }, "FAIL"), " the candidate's errors or a regression decide it"));
  return true;
}

function rulesPanel(rules, refresh) {
  if (!rules.length) return h("p", { class: "muted" }, "No ignore rules added from the UI yet.");
  return h("table", { class: "grid compact", id: "rules" },
    h("thead", {}, h("tr", {}, h("th", {}, "Field"), h("th", {}, "Endpoint"), h("th", {}, "Added"), h("th", {}, ""))),
    h("tbody", {}, rules.map((r) => h("tr", { "data-rule": r.id },
      h("td", {}, h("code", {}, r.path)),
      h("td", {}, r.endpoint === "*" ? h("em", {}, "all endpoints") : r.endpoint),
      h("td", {}, fmtTime(r.created_at)),
      h("td", { class: "actions" }, h("button", { class: "btn small ghost", onclick: async () => {
        await api("/rules/" + encodeURIComponent(r.id), { method: "DELETE" });
        toast("Rule removed", "ok"); refresh();
      } }, "Remove"))))));
}

async function endpointPage(name) {
  const d = await api("/endpoints/" + encodeURIComponent(name) + "?" + windowParam());
  const s = d.summary, t = d.totals, ce = d.candidate_errors;
  const rerender = () => route();
  const fieldRows = d.fields.map((f) => h("tr", { "data-path": f.path, class: (f.ignored ? "ignored " : "") + "label-" + f.classification },
    h("td", {}, h("code", {}, f.path)),
    h("td", {}, h("span", { class: "kind" }, f.kind)),
    h("td", { class: "verdict", title: `p = ${f.p_value}; rate difference ${fmtPct(f.effect.difference)} [${fmtPct(f.effect.low)}, ${fmtPct(f.effect.high)}]` },
      LABELS[f.classification], h("small", { class: "muted" }, ` +${fmtPct(f.effect.difference)} [${fmtPct(f.effect.low)}, ${fmtPct(f.effect.high)}]`)),
    h("td", { class: "num" }, fmtInt(f.raw)),
    h("td", { class: "num" }, fmtInt(f.noise)),
    h("td", { class: "num strong" }, fmtInt(f.effective)),
    h("td", { class: "bar-cell" }, h("div", { class: "bar" }, h("span", { style: `width:${Math.min(100, (f.rate || 0) * 100)}%` })),
      h("small", {}, fmtPct(f.rate))),
    h("td", { class: "actions" }, f.ignored ? h("span", { class: "tag" }, "ignored")
      : ignorable(f.path) ? h("button", { class: "btn small ignore-field", onclick: async () => {
          await addRule(f.path, name); rerender(); } }, "Ignore this field")
      : h("span", { class: "muted small" }, "not ignorable"))));
  const groups = d.groups || [];
  const groupRows = groups.map((g) => {
    const paths = g.paths || [];
    const kinds = (g.signature || []).map((x) => x.kind);
    return h("tr", { class: g.noise ? "ignored" : "" },
      h("td", {}, paths.map((p, i) => h("code", { class: "chip", title: kinds[i] || "" }, p)),
        g.noise ? h("span", { class: "tag" }, "noise") : null),
      h("td", { class: "num" }, fmtInt(g.count)),
      h("td", { class: "num" }, g.share !== undefined ? fmtPct(g.share) : ""),
      h("td", {}, g.sample ? h("a", { href: "#/exchange/" + encodeURIComponent(g.sample) }, "example") : ""),
      h("td", { class: "actions" }, paths.some(ignorable) ? h("button", { class: "btn small ghost ignore-group", onclick: async () => {
        for (const p of paths.filter(ignorable)) await addRule(p, name);
        rerender(); } }, "Ignore group") : null));
  });
  const samples = d.samples.map((x) => h("li", {},
    h("a", { href: "#/exchange/" + encodeURIComponent(x.id), class: "sample" }, h("code", {}, x.id.slice(0, 12))),
    h("span", { class: "badge verdict-" + x.verdict }, x.verdict),
    h("span", { class: "paths" }, x.paths.slice(0, 4).join(", ") + (x.paths.length > 4 ? ` +${x.paths.length - 4}` : "")),
    h("span", { class: "muted small" }, fmtTime(x.compared_at))));
  render(
    h("nav", { class: "crumbs" }, h("a", { href: "#/" }, "Endpoints"), " / ", h("span", {}, name)),
    h("div", { class: "page-head" }, h("h1", {}, name), rateBadge(s.mismatch_rate, s.matches + s.mismatches, d.failure),
      clearButton("clear-endpoint", name, "Clear this endpoint", () => { location.hash = "#/"; })),
    d.examples && d.examples.length ? h("p", { class: "muted small", id: "examples" }, "e.g. ",
      d.examples.map((x, i) => [i ? ", " : "", h("code", {}, x)])) : null,
    d.failure ? h("p", { class: "error-text failure", id: "failure" }, "FAIL: " + d.failure) : null,
    h("h2", { class: "section-title" }, "In the window"),
    h("section", { class: "cards", id: "in-window" },
      card("pairs in window", fmtInt(s.pairs)), card("mismatch rate", s.matches + s.mismatches ? fmtPct(s.mismatch_rate) : "–", "band-text-" + band(s.mismatch_rate, s.pairs, s.failure)),
      card("errors", fmtInt(s.errors)),
      card("candidate errors", fmtInt(s.candidate_errors), s.candidate_errors ? "band-text-high" : ""),
      card("noise (prod vs prod)", s.noise_pairs ? fmtPct(s.noise_rate) : "not measured", s.noise_pairs ? "" : "small-value"),
      card("primary p50 / p99", fmtMs(s.latency_ms.primary.p50) + " / " + fmtMs(s.latency_ms.primary.p99), "small-value"),
      card("candidate p50 / p99", fmtMs(s.latency_ms.candidate.p50) + " / " + fmtMs(s.latency_ms.candidate.p99), "small-value")),
    h("h2", { class: "section-title" }, "Since the data was cleared"),
    h("section", { class: "cards", id: "since-cleared" },
      card("pairs", fmtInt(t.pairs)), card("mismatch rate", t.matches + t.mismatches ? fmtPct(t.mismatch_rate) : "–"),
      card("verdict", d.failure ? "FAIL" : LABELS[d.classification] || d.classification,
           d.failure || d.classification === "regression" ? "band-text-high small-value" : "small-value"),
      card("candidate errors", `${fmtInt(ce.candidate)} / ${fmtInt(ce.attempts)}`, ce.failing ? "band-text-high small-value" : "small-value"),
      card("score (" + d.outcome + ")", d.score.toFixed(1), d.outcome === "fail" ? "band-text-high small-value" : "small-value")),
    errorsPanel(ce),
    h("section", { class: "panel" }, h("h2", {}, "Differing fields ", h("small", { class: "muted" },
      `since data was cleared: ${fmtInt(t.pairs)} pairs, ${fmtInt(t.raw_mismatches)} mismatches` +
      (t.suppressed_as_noise ? `, ${fmtInt(t.suppressed_as_noise)} explained by noise` : ""))),
      fieldRows.length ? h("table", { class: "grid", id: "fields" },
        h("thead", {}, h("tr", {}, h("th", {}, "Field (JSONPath)"), h("th", {}, "Kind"), h("th", {}, "Verdict (effect, 95% interval)"), h("th", { class: "num" }, "Raw"),
          h("th", { class: "num" }, "Noise"), h("th", { class: "num" }, "Effective"), h("th", {}, "Share of pairs"), h("th", {}, ""))),
        h("tbody", {}, fieldRows)) : h("p", { class: "muted" }, "No differing fields.")),
    h("section", { class: "panel" }, h("h2", {}, "Mismatch groups"),
      groupRows.length ? h("table", { class: "grid", id: "groups" },
        h("thead", {}, h("tr", {}, h("th", {}, "Fields that differ together"), h("th", { class: "num" }, "Count"),
          h("th", { class: "num" }, "Share"), h("th", {}, ""), h("th", {}, ""))), h("tbody", {}, groupRows))
        : h("p", { class: "muted" }, "No groups recorded for this endpoint.")),
    suggestionsPanel(d.suspected_noise),
    d.systematic && d.systematic.length ? h("section", { class: "panel", id: "systematic" },
      h("h2", {}, "Systematic differences ", h("small", { class: "muted" }, "the candidate's value follows from primary's: a regression with a cause, never noise")),
      h("ul", {}, d.systematic.map((x) => h("li", {}, h("code", {}, x.path), " ", x.relation, h("span", { class: "muted small" }, ` (${x.seen} samples)`))))) : null,
    h("div", { class: "two-col" },
      h("section", { class: "panel" }, h("h2", {}, "Sample exchanges"),
        samples.length ? h("ul", { class: "samples", id: "samples" }, samples) : h("p", { class: "muted" }, "No mismatching samples kept.")),
      h("section", { class: "panel" }, h("h2", {}, "Active ignore rules"), rulesPanel(d.rules, rerender),
        h("p", { class: "muted small" }, "Export: ", h("code", {}, "diffsvc rules export")))));
  return false;
}

function errorsPanel(ce) {
  if (!ce.candidate) return null;
  return h("section", { class: "panel errors" + (ce.failing ? " failing" : ""), id: "errors" },
    h("h2", {}, `Candidate errors: ${fmtInt(ce.candidate)} of ${fmtInt(ce.attempts)} calls production answered (${fmtPct(ce.rate)})`),
    h("p", {}, kindsText(ce.kinds)),
    h("ul", { class: "reasons" }, ce.reasons.map((r) => h("li", { class: "error-text" }, r))),
    h("ul", { class: "samples", id: "error-samples" }, ce.exchanges.map((x) => h("li", {},
      h("a", { href: "#/exchange/" + encodeURIComponent(x.id), class: "sample" }, h("code", {}, x.id.slice(0, 12))),
      h("span", { class: "badge verdict-error" }, "error"), h("span", { class: "paths" }, x.error || ""),
      h("span", { class: "muted small" }, fmtTime(x.compared_at))))));
}

function suggestionsPanel(found) {
  if (!found || !found.length) return null;
  return h("section", { class: "panel", id: "suggestions" }, h("h2", {}, "Suspected noise"),
    h("table", { class: "grid compact" },
      h("thead", {}, h("tr", {}, h("th", {}, "Field"), h("th", {}, "Evidence"), h("th", {}, "Rule"))),
      h("tbody", {}, found.map((x) => h("tr", {},
        h("td", {}, h("code", {}, x.path)),
        h("td", {}, x.evidence || `looks like a ${x.reason} in ${x.seen} of ${x.of} differences`),
        h("td", {}, h("code", {}, JSON.stringify(x.rule))))))));
}

function locationOf(parent, key) {
  if (typeof key === "number") return `${parent}[${key}]`;
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `${parent}.${key}` : `${parent}['${key.replace(/'/g, "\\'")}']`;
}

function jsonLines(value, marks) {
  // one element per line; a line whose location differs gets class "diff"
  const out = [];
  const line = (depth, loc, parts) => {
    const el = h("div", { class: "ln" + (marks.has(loc) ? " diff" : ""), "data-loc": loc },
      "  ".repeat(depth), parts);
    out.push(el);
  };
  const scalar = (v) => h("span", { class: "j-" + (v === null ? "null" : typeof v) }, JSON.stringify(v));
  const walk = (v, loc, depth, prefix, comma) => {
    const tail = comma ? "," : "";
    if (Array.isArray(v) || (v && typeof v === "object")) {
      const isArr = Array.isArray(v);
      const entries = isArr ? v.map((x, i) => [i, x]) : Object.entries(v);
      if (!entries.length) { line(depth, loc, [prefix, isArr ? "[]" : "{}", tail]); return; }
      line(depth, loc, [prefix, isArr ? "[" : "{"]);
      entries.forEach(([k, x], i) => {
        const p = isArr ? [] : [h("span", { class: "j-key" }, JSON.stringify(k)), ": "];
        walk(x, locationOf(loc, k), depth + 1, p, i < entries.length - 1);
      });
      line(depth, loc + "#end", [isArr ? "]" : "}", tail]);
    } else {
      line(depth, loc, [prefix, scalar(v), tail]);
    }
  };
  walk(value, "$", 0, [], false);
  return out;
}

// HTML: one line per element, located as the workers locate it ($.html[0].body[0].p[1]);
// an element is marked when a difference lies on it, its text (['#text']), an attribute, or
// the list of its tag among its siblings (`head[0].meta` added: every meta is new).
function htmlLines(text, marks) {
  const at = new Set([...marks].map((m) => m.replace(/\['[#@][^']*'\]$/, "")));
  const out = [];
  const walk = (node, loc, depth) => {
    const seen = {};
    for (const el of node.children) {
      const tag = el.tagName.toLowerCase();
      seen[tag] = (seen[tag] ?? -1) + 1;
      const here = `${locationOf(loc, tag)}[${seen[tag]}]`;
      const attrs = [...el.attributes].map((a) => ` ${a.name}="${a.value}"`).join("");
      const own = [...el.childNodes].filter((n) => n.nodeType === Node.TEXT_NODE)
        .map((n) => n.textContent).join(" ").replace(/\s+/g, " ").trim();
      const marked = at.has(here) || at.has(locationOf(loc, tag));
      out.push(h("div", { class: "ln" + (marked ? " diff" : ""), "data-loc": here },
        "  ".repeat(depth), h("span", { class: "j-key" }, `<${tag}${attrs}>`), own ? " " + own : ""));
      walk(el, here, depth + 1);
    }
  };
  walk(new DOMParser().parseFromString(text, "text/html"), "$", 0);
  return out;
}

// Text, CSS, JS: one line each; a difference at $.line[n] or over $.line[n:m] marks them.
function textLines(text, marks) {
  const runs = [...marks].map((m) => /^\$\.line\[(\d+)(?::(\d+))?\]$/.exec(m)).filter(Boolean)
    .map((r) => [+r[1], r[2] ? +r[2] : +r[1] + 1]);
  return text.split("\n").map((t, i) => h("div", {
    class: "ln" + (runs.some(([a, b]) => i + 1 >= a && i + 1 < b) ? " diff" : ""),
    "data-loc": `$.line[${i + 1}]` }, t.replace(/\r$/, "")));
}

function bodyView(body, marks, contentType) {
  if (!body) return h("pre", { class: "code" }, "");
  if (body.encoding === "json") return h("div", { class: "code json" }, jsonLines(body.json, marks));
  if (body.encoding === "text" && /html/i.test(contentType || "")) return h("div", { class: "code html" }, htmlLines(body.text, marks));
  if (body.encoding === "text" && [...marks].some((m) => m.startsWith("$.line["))) return h("div", { class: "code text" }, textLines(body.text, marks));
  return h("pre", { class: "code" + ((marks.has("body") || [...marks].some((m) => m.startsWith("body:"))) ? " diff-all" : "") },
    body.text === null ? body.error : body.text);
}

function headersTable(headers, marks) {
  return h("table", { class: "headers" }, h("tbody", {}, headers.map(([k, v]) =>
    h("tr", { class: marks.has("header." + k.toLowerCase()) ? "diff" : "" }, h("th", {}, k), h("td", {}, v)))));
}

function responseColumn(label, resp, marks) {
  return h("section", { class: "panel response", "data-side": label.toLowerCase() },
    h("div", { class: "resp-head" }, h("h2", {}, label),
      h("span", { class: "badge http-status" + (marks.has("status") ? " diff" : "") }, resp.error ? "error" : "HTTP " + resp.status),
      h("span", { class: "latency" }, fmtMs(resp.elapsed_ms))),
    resp.error ? h("p", { class: "error-text" }, resp.error) : null,
    h("details", {}, h("summary", {}, `Headers (${resp.headers.length})`), headersTable(resp.headers, marks)),
    bodyView(resp.body, marks, (resp.headers.find(([k]) => k.toLowerCase() === "content-type") || [])[1]));
}

async function copyText(text) {
  try {
    if (navigator.clipboard && window.isSecureContext) { await navigator.clipboard.writeText(text); return true; }
  } catch (_e) { /* fall back below */ }
  const ta = h("textarea", { class: "offscreen" }); ta.value = text; document.body.append(ta); ta.select();
  let ok = false;
  try { ok = document.execCommand("copy"); } catch (_e) { ok = false; }
  ta.remove();
  return ok;
}

async function exchangePage(id) {
  const x = await api("/exchanges/" + encodeURIComponent(id));
  const c = x.comparison;
  const diffs = c ? c.diffs : [];
  const marks = new Set(diffs.map((d) => d.location || d.path));
  const req = x.request;
  const diffRows = diffs.map((d) => h("tr", {},
    h("td", {}, h("code", {}, d.location || d.path)), h("td", {}, h("span", { class: "kind" }, d.kind)),
    h("td", { class: "val" }, absentOr(d.primary, d.kind === "added")),
    h("td", { class: "val" }, absentOr(d.candidate, d.kind === "removed")),
    h("td", { class: "actions" }, x.endpoint && ignorable(d.path) ? h("button", { class: "btn small ghost", onclick: async () => {
      await addRule(d.path, x.endpoint); } }, "Ignore this field") : null)));
  const columns = [responseColumn("Primary", x.responses.primary, marks), responseColumn("Candidate", x.responses.candidate, marks)];
  if (x.responses.secondary) columns.push(responseColumn("Secondary", x.responses.secondary, new Set()));
  render(
    h("nav", { class: "crumbs" }, h("a", { href: "#/" }, "Endpoints"), " / ",
      x.endpoint ? h("a", { href: "#/endpoint/" + encodeURIComponent(x.endpoint) }, x.endpoint) : "unknown endpoint",
      " / ", h("span", {}, id.slice(0, 12))),
    h("div", { class: "page-head" }, h("h1", {}, h("span", { class: "method" }, req.method), " ", req.target),
      c ? h("span", { class: "badge verdict-" + c.verdict }, c.verdict) : h("span", { class: "badge" }, "not compared yet")),
    c && c.error ? h("p", { class: "error-text" }, c.error) : null,
    h("section", { class: "panel" }, h("h2", {}, `Differences (${diffs.length})`),
      diffRows.length ? h("table", { class: "grid compact", id: "diffs" },
        h("thead", {}, h("tr", {}, h("th", {}, "Path"), h("th", {}, "Kind"), h("th", {}, "Primary"), h("th", {}, "Candidate"), h("th", {}, ""))),
        h("tbody", {}, diffRows)) : h("p", { class: "muted" }, "None: the responses are equal once ignored fields are removed.")),
    h("div", { class: "side-by-side cols-" + columns.length }, columns),
    h("section", { class: "panel" }, h("div", { class: "resp-head" }, h("h2", {}, "Request"),
      h("span", { class: "muted small" }, "captured " + fmtTime(x.captured_at)),
      h("button", { class: "btn small", id: "copy-curl", onclick: async () => {
        toast(await copyText(req.curl) ? "curl command copied" : "Copy failed: select the command below", "ok"); } }, "Copy as curl")),
      h("pre", { class: "code curl", id: "curl" }, req.curl),
      h("details", {}, h("summary", {}, `Headers (${req.headers.length})`), headersTable(req.headers, new Set())),
      req.body && req.body.size ? bodyView(req.body, new Set()) : null));
  return false;
}

async function rulesPage() {
  const d = await api("/rules");
  render(
    h("div", { class: "page-head" }, h("h1", {}, "Ignore rules added from the UI")),
    h("section", { class: "panel" }, rulesPanel(d.rules, () => route()),
      h("p", { class: "muted small" }, "Workers apply these from their next batch (rules version " + d.version + "). ",
        "Export them as config YAML with ", h("code", {}, "diffsvc rules export"), " or ",
        h("a", { href: API + "/rules?format=yaml", id: "rules-yaml" }, "download the YAML"), ".")));
  return false;
}

function tokenPage() {
  const input = h("input", { type: "password", id: "token-input", placeholder: "report.token", autocomplete: "off" });
  render(h("section", { class: "panel narrow" }, h("h1", {}, "Token required"),
    h("p", {}, "This report server requires a bearer token (report.token). It is kept in this browser's local storage."),
    h("form", { onsubmit: (ev) => { ev.preventDefault(); localStorage.setItem(TOKEN_KEY, input.value.trim()); route(); } },
      input, h("button", { class: "btn", type: "submit" }, "Continue"))));
}

// ---- routing ------------------------------------------------------------------------------

async function route() {
  clearTimeout(refreshTimer);
  const hash = location.hash.replace(/^#/, "") || "/";
  document.querySelectorAll("[data-nav]").forEach((a) => a.classList.toggle("active",
    (a.dataset.nav === "overview" && (hash === "/" || hash.startsWith("/endpoint") || hash.startsWith("/exchange"))) ||
    (a.dataset.nav === "rules" && hash === "/rules")));
  let refresh = false;
  try {
    if (hash.startsWith("/endpoint/")) refresh = await endpointPage(decodeURIComponent(hash.slice(10)));
    else if (hash.startsWith("/exchange/")) refresh = await exchangePage(decodeURIComponent(hash.slice(10)));
    else if (hash === "/rules") refresh = await rulesPage();
    else refresh = await overviewPage();
    setStatus("updated " + new Date().toLocaleTimeString());
  } catch (err) {
    if (err instanceof AuthError) { tokenPage(); setStatus(""); return; }
    render(h("section", { class: "panel" }, h("h1", {}, "Could not load this page"), h("p", { class: "error-text" }, err.message),
      h("p", {}, h("a", { href: "#/" }, "Back to the overview"))));
    setStatus("error");
  }
  if (refresh) refreshTimer = setTimeout(route, REFRESH_MS);
}

function init() {
  const params = new URLSearchParams(location.search);
  if (params.has("token")) {
    localStorage.setItem(TOKEN_KEY, params.get("token"));
    params.delete("token");
    history.replaceState(null, "", location.pathname + (params.toString() ? "?" + params : "") + location.hash);
  }
  const sel = document.getElementById("window");
  sel.value = localStorage.getItem(WINDOW_KEY) || sel.value;
  sel.addEventListener("change", () => { localStorage.setItem(WINDOW_KEY, sel.value); route(); });
  document.getElementById("build").addEventListener("change", () => route());
  window.addEventListener("hashchange", route);
  route();
}

init();
