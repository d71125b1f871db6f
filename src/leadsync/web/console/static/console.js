// leadsync console: live refresh of the overview (the only script; every page works without it).
// Every `[data-refresh-seconds]` element is replaced by its fresh copy from the same URL.
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  function start() {
    var live = document.querySelector("[data-refresh-seconds]");
    if (!live || !window.fetch || !window.DOMParser) { return; }
    var seconds = Math.max(2, parseInt(live.getAttribute("data-refresh-seconds"), 10) || 10);
    function refresh() {
      if (document.hidden) { return; }
      fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) {
          if (!response.ok || response.redirected) { throw new Error("stale session"); }
          return response.text();
        })
        .then(function (html) {
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(live.id);
          var current = document.getElementById(live.id);
          if (fresh && current) { current.replaceWith(fresh); }
        })
        .catch(function () { /* keep the page as it is; the Refresh link still works */ });
    }
    window.setInterval(refresh, seconds * 1000);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
