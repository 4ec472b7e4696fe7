// Progressive enhancement only: every page works without this file.
// A pending order's status updates in place until it is final.
(function () {
  var live = document.querySelector("[data-live-order]");
  if (!live) return;
  var url = "/orders/" + encodeURIComponent(live.getAttribute("data-live-order")) + "/status";
  function poll() {
    fetch(url, { headers: { accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (order) {
        if (order && order.status !== "pending") {
          live.textContent = order.label;
          live.className = "status-" + order.status;
          live.removeAttribute("data-live-order");
          var hint = document.getElementById("pending-hint");
          if (hint) hint.remove();
          return;
        }
        setTimeout(poll, 1500);
      })
      .catch(function () { setTimeout(poll, 3000); });
  }
  setTimeout(poll, 1000);
})();
