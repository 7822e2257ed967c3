/* Live progress of running jobs (job list and job page): every POLL_MS, one GET of the
   admin's progress view for the jobs still running on the page updates their text and bar.
   A job page ([data-reload]) reloads once when its job finishes, to show the result; the
   list says "finished" and links to a reload. Stops when nothing runs; backs off on errors.
   No inline script: works under a strict Content-Security-Policy. */
(function () {
  "use strict";
  var POLL_MS = 2000;
  var MAX_POLL_MS = 30000;

  function running() {
    return Array.prototype.slice.call(
      document.querySelectorAll("[data-mod-progress]:not([data-finished])"));
  }

  function show(node, job) {
    var text = node.querySelector(".mod-progress-text");
    var bar = node.querySelector("progress");
    if (text) { text.textContent = job.text; }
    if (bar) {
      if (job.percent === null || job.percent === undefined) {
        bar.removeAttribute("value");
      } else {
        bar.value = job.percent;
        bar.textContent = job.percent + " %";
      }
    }
    if (!job.finished) { return; }
    node.setAttribute("data-finished", "");
    if (node.hasAttribute("data-reload")) {
      window.location.reload();
      return;
    }
    if (bar) { bar.remove(); }
    var link = document.createElement("a");
    link.href = window.location.href;
    link.textContent = " ↻";
    link.title = job.status_display;
    node.appendChild(link);
  }

  function poll(delay) {
    var nodes = running();
    if (!nodes.length) { return; }
    window.setTimeout(function () {
      var query = nodes.map(function (node) {
        return "id=" + encodeURIComponent(node.getAttribute("data-job"));
      }).join("&");
      fetch(nodes[0].getAttribute("data-url") + "?" + query, {
        credentials: "same-origin", headers: {"Accept": "application/json"}
      }).then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      }).then(function (data) {
        var byId = {};
        data.jobs.forEach(function (job) { byId[String(job.id)] = job; });
        nodes.forEach(function (node) {
          var job = byId[node.getAttribute("data-job")];
          if (job) { show(node, job); }
        });
        poll(POLL_MS);
      }).catch(function () {
        poll(Math.min(delay * 2, MAX_POLL_MS));
      });
    }, delay);
  }

  function start() { poll(POLL_MS); }
  // Loaded in <head> by the admin's {{ media }}: start once the page is parsed.
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
