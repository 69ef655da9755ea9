// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace await_tree::http::detail {

// The live page: one self-contained file (no CDN, no network but its own
// /tasks.json). Every text that comes from tasks goes into the DOM through
// textContent, never as markup, so a span named like an HTML tag shows as
// text; the Content-Security-Policy nonce lets only this script run besides.
//
// URL fragment (so that nothing of it reaches the server or a log):
// #q=<search>&grouped=0|1&order=longest_waiting_first&paused=1&token=<bearer>.
inline constexpr std::string_view page_template = R"page(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>await-tree: live tasks</title>
<style nonce="@NONCE@">
body { font: 14px system-ui, sans-serif; margin: 0; color: #1d1d1f; background: #fafafa; }
header { position: sticky; top: 0; display: flex; flex-wrap: wrap; gap: 12px; align-items: center;
  padding: 10px 16px; background: #fff; border-bottom: 1px solid #ddd; z-index: 1; }
h1 { font-size: 16px; margin: 0 8px 0 0; }
#search { width: 280px; padding: 4px 6px; }
#status { color: #555; }
#status.error { color: #b00020; font-weight: bold; }
main { padding: 8px 16px; }
.task { background: #fff; border: 1px solid #e2e2e2; border-radius: 4px; margin: 8px 0;
  padding: 6px 10px; }
.task h2 { font-size: 13px; margin: 0 0 4px; font-family: ui-monospace, monospace; color: #333; }
.task h2 .count { color: #6a1b9a; margin-right: 8px; }
ul.tree, ul.tree ul { list-style: none; margin: 0; padding-left: 18px; }
ul.tree { padding-left: 0; }
.line, .detached { font-family: ui-monospace, monospace; white-space: pre-wrap; }
li.leaf > .line { padding-left: 16px; }
summary { cursor: pointer; }
.elapsed { color: #555; }
.stuck { color: #b00020; font-weight: bold; }
.current { color: #1b7f3b; font-weight: bold; }
.detached { color: #777; font-style: italic; margin-top: 4px; }
.note { color: #555; margin: 8px 0; }
</style>
</head>
<body data-long-running-ns="@THRESHOLD_NS@">
<header>
<h1>await-tree</h1>
<input id="search" type="search" placeholder="search keys and span names" autocomplete="off">
<label><input id="grouped" type="checkbox"> grouped</label>
<label><input id="longest" type="checkbox"> longest waiting first</label>
<button id="pause" type="button">pause</button>
<span id="status">loading…</span>
</header>
<main id="tasks" data-state="loading"></main>
<script nonce="@NONCE@">
"use strict";
// Above this many tasks the page groups by default: ten thousand trees
// would not be read one by one anyway.
const groupAbove = 500;
// The ungrouped view renders at most this many trees (of those matching
// the search: it loads them all, so that the search sees every task).
const renderLimit = 1000;
const refreshMs = 2000;
const threshold = Number(document.body.dataset.longRunningNs);
const fragment = new URLSearchParams(location.hash.slice(1));
const token = fragment.get("token") || "";
const state = {
  search: fragment.get("q") || "",
  grouped: fragment.has("grouped") ? fragment.get("grouped") === "1" : null,  // null: automatic
  autoGrouped: false,
  longest: fragment.get("order") === "longest_waiting_first",
  paused: fragment.get("paused") === "1",
  data: null,
  dataGrouped: false,
  error: "",
  updated: null,
  collapsed: new Set(),
  timer: 0,
};
const $ = (id) => document.getElementById(id);

function element(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function duration(ns) {
  const withUnit = (unit, suffix) => (ns / unit).toFixed(3) + suffix;
  if (ns >= 1e9) return withUnit(1e9, "s");
  if (ns >= 1e6) return withUnit(1e6, "ms");
  if (ns >= 1e3) return withUnit(1e3, "µs");
  return Math.max(0, ns) + "ns";
}

// A tree's nodes have one elapsed time; a group's have min/median/max.
const slowest = (elapsed) => (typeof elapsed === "number" ? elapsed : elapsed.max);
function elapsedText(elapsed) {
  if (typeof elapsed === "number") return duration(elapsed);
  if (elapsed.min === elapsed.max) return duration(elapsed.max);
  return "min " + duration(elapsed.min) + ", median " + duration(elapsed.median) +
         ", max " + duration(elapsed.max);
}

function renderNode(node, current, path) {
  const li = element("li", "node");
  const line = element("span", "line");
  const stuck = !node.span.is_long_running && slowest(node.elapsed_ns) >= threshold;
  line.append(element("span", "name", node.span.name), " ",
              element("span", stuck ? "elapsed stuck" : "elapsed",
                      "[" + (stuck ? "!!! " : "") + elapsedText(node.elapsed_ns) + "]"));
  if (node.is_current || current.has(node.id)) line.append(element("span", "current", "  <== current"));
  if (node.children.length === 0) {
    li.classList.add("leaf");
    li.append(line);
    return li;
  }
  const details = element("details");
  details.open = !state.collapsed.has(path);
  details.addEventListener("toggle", () => {
    if (details.open) state.collapsed.delete(path); else state.collapsed.add(path);
  });
  const summary = element("summary");
  summary.append(line);
  const children = element("ul");
  node.children.forEach((child, i) => children.append(renderNode(child, current, path + "/" + i)));
  details.append(summary, children);
  li.append(details);
  return li;
}

function renderForest(section, forest, current, path) {
  const main = element("ul", "tree");
  if (forest.tree) main.append(renderNode(forest.tree, current, path));
  section.append(main);
  forest.detached.forEach((root, i) => {
    section.append(element("div", "detached", root.id === undefined ? "[Detached]" : "[Detached " + root.id + "]"));
    const ul = element("ul", "tree");
    ul.append(renderNode(root, current, path + "/detached " + i));
    section.append(ul);
  });
}

function namesOf(node, out) {
  if (!node) return out;
  out.push(node.span.name);
  node.children.forEach((child) => namesOf(child, out));
  return out;
}

function matches(keys, forest) {
  const q = state.search.trim().toLowerCase();
  if (!q) return true;
  const texts = keys.concat(namesOf(forest.tree, []));
  forest.detached.forEach((root) => namesOf(root, texts));
  return texts.some((text) => text.toLowerCase().includes(q));
}

// Entries as {title, keys, forest, current, count}, from either dump shape.
function entries(data) {
  if (state.dataGrouped) {
    return data.groups.map((g) => ({
      keys: g.keys, forest: g, current: new Set(), count: g.count,
      title: g.keys.join(", ") + (g.count > g.keys.length ? ", …" : ""),
    }));
  }
  return data.tasks.map((t) => ({
    keys: [t.key], forest: t.tree, current: new Set(t.tree.current_ids), count: 1, title: t.key,
  }));
}

function totalTasks(data) {
  const shown = state.dataGrouped ? data.groups.reduce((sum, g) => sum + g.count, 0) : data.tasks.length;
  return shown + data.omitted_tasks;
}

function render() {
  const main = $("tasks");
  const status = $("status");
  $("grouped").checked = state.grouped ?? state.autoGrouped;
  $("longest").checked = state.longest;
  $("pause").textContent = state.paused ? "resume" : "pause";
  status.className = state.error ? "error" : "";
  if (state.error) status.textContent = state.error;
  if (!state.data) {
    main.dataset.state = state.error ? "error" : "loading";
    return;
  }
  const all = entries(state.data);
  const shown = all.filter((e) => matches(e.keys, e.forest));
  const total = totalTasks(state.data);
  const sections = shown.slice(0, renderLimit).map((e, i) => {
    const section = element("section", "task");
    const heading = element("h2");
    if (state.dataGrouped) heading.append(element("span", "count", e.count + (e.count === 1 ? " task" : " tasks")));
    heading.append(element("span", "key", "[" + e.title + "]"));
    section.append(heading);
    renderForest(section, e.forest, e.current, (state.dataGrouped ? "group " + i : "task " + e.title));
    return section;
  });
  if (sections.length === 0) sections.push(element("p", "note", total === 0 ? "No tasks." : "Nothing matches the search."));
  if (shown.length > renderLimit) {
    sections.push(element("p", "note", "Showing the first " + renderLimit + " of " + shown.length +
                          " tasks; search, or the grouped view, to see the others."));
  }
  main.replaceChildren(...sections);
  main.dataset.state = "ready";
  if (!state.error) {
    status.textContent = total + (total === 1 ? " task" : " tasks") +
        (state.dataGrouped ? " in " + state.data.groups.length + " groups" : "") +
        (state.search ? ", " + shown.length + " shown" : "") +
        " · updated " + state.updated.toLocaleTimeString() + (state.paused ? " · paused" : "");
  }
}

function query(grouped) {
  const q = new URLSearchParams();
  if (grouped) {
    q.set("grouped", "1");
    q.set("mask_digits", "1");
  }
  if (state.longest) q.set("order", "longest_waiting_first");
  return q;
}

async function load(grouped) {
  const headers = token ? { Authorization: "Bearer " + token } : {};
  const response = await fetch("tasks.json?" + query(grouped), { headers, cache: "no-store" });
  if (!response.ok) throw new Error(response.status + " " + (await response.text()).trim());
  const data = await response.json();
  if (data.error) throw new Error(data.error);
  return data;
}

async function refresh() {
  clearTimeout(state.timer);
  try {
    let grouped = state.grouped ?? state.autoGrouped;
    let data = await load(grouped);
    state.dataGrouped = grouped;
    if (state.grouped === null) {
      const autoGrouped = totalTasks(data) > groupAbove;
      if (autoGrouped !== grouped) {
        grouped = autoGrouped;
        data = await load(grouped);
        state.dataGrouped = grouped;
      }
      state.autoGrouped = grouped;
    }
    state.data = data;
    state.error = "";
    state.updated = new Date();
  } catch (e) {
    state.error = "update failed: " + e.message;
  }
  render();
  if (!state.paused) state.timer = setTimeout(refresh, refreshMs);
}

$("search").value = state.search;
$("search").addEventListener("input", (e) => { state.search = e.target.value; render(); });
$("grouped").addEventListener("change", (e) => { state.grouped = e.target.checked; refresh(); });
$("longest").addEventListener("change", (e) => { state.longest = e.target.checked; refresh(); });
$("pause").addEventListener("click", () => {
  state.paused = !state.paused;
  if (state.paused) { clearTimeout(state.timer); render(); } else { refresh(); }
});
refresh();
</script>
</body>
</html>
)page";

inline std::string replace_all(std::string_view text, std::string_view placeholder,
                               std::string_view value) {
  std::string out;
  for (auto pos = text.find(placeholder); pos != std::string_view::npos;
       pos = text.find(placeholder)) {
    out.append(text.substr(0, pos)).append(value);
    text.remove_prefix(pos + placeholder.size());
  }
  return out.append(text);
}

/// The page, with its script's nonce and the registry's threshold for `!!!`.
inline std::string page_html(std::string_view nonce,
                             std::chrono::nanoseconds long_running_threshold) {
  return replace_all(replace_all(page_template, "@NONCE@", nonce), "@THRESHOLD_NS@",
                     std::to_string(long_running_threshold.count()));
}

}  // namespace await_tree::http::detail
