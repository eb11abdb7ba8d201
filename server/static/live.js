// Keeps a workspace view current without a reload: every few seconds it
// fetches the same address (so the coordinator's filters stay as they
// are) and replaces the element marked data-live with the fresh one.
// Nothing else on the page is touched, so a half-filled form survives.
(function () {
  "use strict";
  var live = document.querySelector("[data-live]");
  if (!live || !window.fetch || !window.DOMParser) return;
  var every = Number(live.getAttribute("data-live")) * 1000 || 10000;
  var status = document.getElementById("live-status");
  function refresh() {
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (!r.ok) throw new Error(String(r.status));
        return r.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("[data-live]");
        if (fresh) {
          live.replaceChildren.apply(live, Array.prototype.slice.call(fresh.childNodes));
          if (status) status.textContent = status.getAttribute("data-ok");
        }
      })
      .catch(function () {
        if (status) status.textContent = status.getAttribute("data-stale");
      })
      .then(function () { window.setTimeout(refresh, every); });
  }
  window.setTimeout(refresh, every);
})();
