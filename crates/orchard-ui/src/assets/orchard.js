// Orchard's web UI works without this file; it adds what only a script can.
"use strict";

// MLflow's links (`…/#/experiments/1`, `…/#/experiments/1/runs/<id>`, printed by `mlflow.start_run`) open the
// same page here.
(function followMlflowLinks() {
  if (location.pathname !== "/") return;
  const m = location.hash.match(/^#\/experiments\/(\d+)(?:\/runs\/([0-9a-f]+))?/);
  if (m) location.replace(m[2] ? "/runs/" + m[2] : "/experiments/" + m[1]);
  // `#/models/<name>` (and `…/versions/<n>`), printed by mlflow.register_model.
  const model = location.hash.match(/^#\/models\/([^/]+)/);
  if (model) location.replace("/registry/" + model[1]);
})();

// Keyboard: in a table of runs, j/k (or ↓/↑ once a row has focus) move between rows, Enter opens the run, and
// / jumps to the filter.
document.addEventListener("keydown", (event) => {
  const typing = event.target.closest("input, select, textarea");
  if (event.key === "/" && !typing) {
    const filter = document.querySelector("input[name=filter], input[name=q]");
    if (filter) { event.preventDefault(); filter.focus(); }
    return;
  }
  if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
  const links = Array.from(document.querySelectorAll("table.data tbody td.first a"));
  if (!links.length) return;
  const at = links.indexOf(document.activeElement);
  let next = null;
  if (event.key === "j" || (event.key === "ArrowDown" && at >= 0)) next = links[Math.min(at + 1, links.length - 1)];
  if (event.key === "k" || (event.key === "ArrowUp" && at >= 0)) next = links[Math.max(at - 1, 0)];
  if (next) { event.preventDefault(); next.focus(); next.scrollIntoView({ block: "nearest" }); }
});
