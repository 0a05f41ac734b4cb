// ghreplay's dashboard: local times, and releases pushed as they arrive.
"use strict";

function localize(el) {
  const t = new Date(el.getAttribute("datetime"));
  if (!isNaN(t)) {
    el.textContent = t.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("time[datetime]").forEach(localize);

  // The Releases table: rows rendered (and escaped) by the server, pushed
  // over server-sent events, newest on top.
  const table = document.querySelector("tbody[data-live]");
  if (table && window.EventSource) {
    const status = document.getElementById("live-status");
    const feed = new EventSource(table.dataset.live);
    feed.addEventListener("release", (ev) => {
      const empty = document.getElementById("empty");
      if (empty) empty.remove();
      table.insertAdjacentHTML("afterbegin", ev.data);
      const row = table.firstElementChild;
      row.classList.add("fresh");
      row.querySelectorAll("time[datetime]").forEach(localize);
      const count = document.getElementById("count");
      if (count) count.textContent = String(table.rows.length);
    });
    feed.addEventListener("reload", () => location.reload());
    // data-state says whether the feed is connected (tests wait on it).
    feed.onopen = () => {
      table.dataset.state = "open";
      if (status) { status.classList.remove("down"); status.textContent = "New releases appear here as they arrive."; }
    };
    feed.onerror = () => {
      table.dataset.state = "down";
      if (status) { status.classList.add("down"); status.textContent = "Live updates interrupted; reconnecting."; }
    };
  }

  // The Activity page's figures are live counters: refresh them.
  if (document.getElementById("freshness")) {
    setTimeout(() => location.reload(), 15000);
  }
});
