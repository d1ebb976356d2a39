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
    const shape = M.uncertainty(incident).addTo(view.map);
    L.marker([incident.lat, incident.lon], { icon: M.classIcon(incident.label, incident.state) }).addTo(view.map);
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

  /* verification actions (camera cue, drone plan) where the hub offers them */
  const out = document.getElementById("verify-result");
  document.querySelectorAll("button[data-verify]").forEach((button) => {
    button.addEventListener("click", async () => {
      button.disabled = true;
      const payload = button.dataset.camera ? { camera_id: button.dataset.camera } : {};
      const result = await api("POST", button.dataset.verify, payload);
      button.disabled = false;
      if (result.ok) {
        toast(t("action.done"));
        out.textContent = JSON.stringify(result.data);
      } else toast(failure(result), "error");
    });
  });
})();
