/* Incident page: location map, one-click state changes with shortcuts, feedback, verification. */
"use strict";
(function () {
  const { t, api, toast, failure, typingTarget } = window.ouie;
  const M = window.ouieMap;
  const page = document.querySelector(".incident");
  const id = page.dataset.incident;

  /* location map */
  const mapEl = document.getElementById("incident-map");
  if (mapEl && window.L) {
    const incident = JSON.parse(mapEl.dataset.incident);
    const plan = JSON.parse(mapEl.dataset.plan);
    const view = M.createMap(mapEl, plan, { maxZoom: 19 });
    M.lastMap = view.map;
    const shape = M.uncertainty(incident).addTo(view.map);
    L.marker([incident.lat, incident.lon], { icon: M.classIcon(incident.label, incident.state) }).addTo(view.map);
    M.rounds(incident).addTo(view.map);
    const heard = [];
    incident.timeline.forEach((row) => {
      if (!row.position) return;
      heard.push(row.position);
      L.circleMarker(row.position, { radius: 5, color: "#fff", weight: 2, fillColor: "#1f5fa8", fillOpacity: 1 })
        .bindTooltip(row.sensor_id + " +" + row.detections[0].offset_ms.toFixed(1) + " ms").addTo(view.map);
    });
    const b = shape.getBounds();
    view.map.fitBounds(b.extend(L.latLngBounds(heard.length ? heard : [[incident.lat, incident.lon]])), { padding: [20, 20], maxZoom: 19 });
  }

  /* state changes */
  const buttons = Array.from(document.querySelectorAll("#transition-buttons button[data-to]"));
  const comment = document.getElementById("comment");
  async function move(to) {
    const button = buttons.find((b) => b.dataset.to === to);
    if (!button || button.disabled) return;
    buttons.forEach((b) => { b.disabled = true; });
    const result = await api("POST", "/api/v1/incidents/" + encodeURIComponent(id) + "/transitions", {
      to, comment: comment ? comment.value.trim() : "",
    });
    if (result.ok) {
      toast(t("action.done"));
      location.reload();
    } else {
      toast(failure(result), "error");
      buttons.forEach((b) => { b.disabled = false; });
    }
  }
  buttons.forEach((b) => b.addEventListener("click", () => move(b.dataset.to)));
  document.addEventListener("keydown", (event) => {
    if (typingTarget(event) || event.altKey || event.ctrlKey || event.metaKey) return;
    const button = buttons.find((b) => b.dataset.key === event.key.toLowerCase());
    if (button) { event.preventDefault(); move(button.dataset.to); }
  });

  /* feedback */
  const form = document.getElementById("feedback-form");
  if (form) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const verdict = form.querySelector("input[name=verdict]:checked");
      if (!verdict) return;
      const result = await api("POST", "/api/v1/incidents/" + encodeURIComponent(id) + "/feedback", {
        verdict: verdict.value, cause: form.cause.value.trim(), comment: form.comment.value.trim(),
      });
      if (result.ok) { toast(t("feedback.saved")); location.reload(); }
      else toast(failure(result), "error");
    });
  }

  /* verification: camera cue (ONVIF), drone plan → supervisor approval → flight on the map */
  const out = document.getElementById("verify-result");
  function esc(value) {
    return String(value == null ? "" : value).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }
  function showCue(cue) {
    const how = cue.method === "preset" ? "preset " + esc(cue.preset_token)
      : "pan " + Number(cue.pan).toFixed(3) + " · tilt " + Number(cue.tilt).toFixed(3) + " · zoom " + Number(cue.zoom).toFixed(2);
    let html = "<p><strong>" + esc(cue.camera_id) + "</strong> → " + Number(cue.bearing_deg).toFixed(0) + "°, " +
      Number(cue.distance_m).toFixed(0) + " m · " + how + " · " + Number(cue.command_ms).toFixed(0) + " ms</p>";
    if (cue.snapshot_uri) html += '<p>JPEG: <a href="' + esc(cue.snapshot_uri) + '" target="_blank" rel="noopener" data-testid="snapshot-link">' + esc(cue.snapshot_uri) + "</a></p>";
    if (cue.stream_uri) html += '<p>RTSP: <code data-testid="stream-uri">' + esc(cue.stream_uri) + "</code></p>";
    out.innerHTML = html;
  }
  document.querySelectorAll("button[data-verify]").forEach((button) => {
    button.addEventListener("click", async () => {
      button.disabled = true;
      const result = await api("POST", button.dataset.verify, { camera_id: button.dataset.camera || null });
      button.disabled = false;
      if (result.ok) { toast(t("action.done")); showCue(result.data); }
      else toast(failure(result), "error");
    });
  });

  const panel = document.getElementById("drone-panel");
  if (panel) {
    const checklist = document.getElementById("drone-checklist");
    const stateEl = document.getElementById("drone-state");
    const planButton = document.getElementById("drone-plan");
    let droneMarker = null, missionId = null, polling = null;

    function drawDrone(run) {
      const v = run.vehicle || {};
      const alt = v.relative_alt_m == null ? "—" : Number(v.relative_alt_m).toFixed(0) + " m";
      stateEl.innerHTML = "<p>" + esc(run.dock_id) + " · <strong data-testid=\"drone-run-state\">" + esc(run.state) + "</strong> · " + alt +
        (run.error ? " · " + esc(run.error) : "") + "</p>";
      if (v.lat == null || !window.L || !M.lastMap) return;
      if (!droneMarker) {
        droneMarker = M.droneMarker([v.lat, v.lon], run.dock_id).addTo(M.lastMap);
      } else droneMarker.setLatLng([v.lat, v.lon]);
      droneMarker.setTooltipContent(run.dock_id + " · " + alt + " · " + run.state);
    }
    async function poll() {
      const result = await api("GET", panel.dataset.status);
      if (!result.ok) return;
      const runs = result.data.missions.filter((r) => r.incident_id === id && (!missionId || r.mission_id === missionId));
      if (!runs.length) return;
      const run = runs[runs.length - 1];
      missionId = run.mission_id;
      drawDrone(run);
      showAbort(run);
    }
    function startPolling() { if (!polling) { poll(); polling = setInterval(poll, 1000); } }
    function showAbort(run) {
      if (!panel.dataset.canAbort || document.getElementById("drone-abort")) return;
      if (!["uploading", "launching", "in_flight"].includes(run.state)) return;
      const abort = document.createElement("button");
      abort.type = "button"; abort.id = "drone-abort"; abort.className = "btn btn-danger";
      abort.dataset.testid = "drone-abort"; abort.setAttribute("data-testid", "drone-abort");
      abort.textContent = panel.dataset.abortLabel;
      abort.addEventListener("click", async () => {
        const result = await api("POST", panel.dataset.abort.replace("{mission_id}", encodeURIComponent(run.mission_id)), { reason: "operator" });
        if (result.ok) { toast(t("action.done")); abort.remove(); poll(); } else toast(failure(result), "error");
      });
      stateEl.after(abort);
    }
    function showPlan(plan) {
      let html = "<p>" + esc(plan.dock_id) + " · " + Number(plan.distance_to_incident_m).toFixed(0) + " m · " +
        Number(plan.transit_altitude_m).toFixed(0) + " m AGL · ~" + Math.round(plan.estimated_duration_s / 60) + " min</p><ul class=\"checklist\" style=\"text-align:left;padding-left:1.2em\">";
      plan.checklist.forEach((c) => {
        if (c.kind === "declared") {
          html += '<li><label class="radio"><input type="checkbox" name="confirm" value="' + esc(c.id) + '" data-testid="confirm-' + esc(c.id) + '"> ' + esc(c.text) + "</label></li>";
        } else {
          html += '<li class="check-' + esc(c.status) + '"><strong>' + (c.status === "pass" ? "✓" : "✗") + "</strong> " + esc(c.text) + (c.detail ? " — " + esc(c.detail) : "") + "</li>";
        }
      });
      html += "</ul>";
      if (!plan.sendable) html += '<p class="error" data-testid="drone-blocked">✗ ' + esc(plan.failed_checks.join(", ")) + "</p>";
      checklist.innerHTML = html;
      if (panel.dataset.canApprove && plan.sendable) {
        const approve = document.createElement("button");
        approve.type = "button"; approve.className = "btn btn-primary";
        approve.setAttribute("data-testid", "drone-approve");
        approve.textContent = panel.dataset.approveLabel;
        approve.addEventListener("click", async () => {
          const confirmed = Array.from(checklist.querySelectorAll("input[name=confirm]:checked")).map((i) => i.value);
          approve.disabled = true;
          const result = await api("POST", panel.dataset.approve.replace("{mission_id}", encodeURIComponent(plan.mission_id)), {
            mission_hash: plan.digest, confirmed_items: confirmed, comment: comment ? comment.value.trim() : "",
          });
          if (result.ok) {
            toast(t("action.done")); approve.remove(); missionId = plan.mission_id;
            if (result.data.run) drawDrone(result.data.run);
            startPolling();
          } else { approve.disabled = false; toast(failure(result), "error"); }
        });
        checklist.appendChild(approve);
      }
    }
    if (planButton) {
      planButton.addEventListener("click", async () => {
        planButton.disabled = true;
        const result = await api("POST", planButton.dataset.plan, {});
        planButton.disabled = false;
        if (result.ok) showPlan(result.data); else toast(failure(result), "error");
      });
    }
    startPolling();
  }
})();
