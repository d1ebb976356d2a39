/* Live map: site plan, sensors by health, open incidents from SSE with their 95 % ellipse. */
"use strict";
(function () {
  const { t, api, toast, failure, formatTime, escapeHtml, typingTarget } = window.ouie;
  const M = window.ouieMap;
  const el = document.getElementById("map");
  const list = document.getElementById("open-list");
  const countEl = document.getElementById("open-count");
  const noneEl = document.getElementById("none-open");
  const liveEl = document.getElementById("live");
  const soundBtn = document.getElementById("sound");
  const high = new Set((el.dataset.high || "").split(",").filter(Boolean));
  const canAct = el.dataset.canAct === "true";
  const OPEN = new Set(["new", "acknowledged", "verifying", "confirmed"]);
  const incidents = new Map(); // id → {data, marker, shape, li}
  const sensorLayer = L.layerGroup();
  let view = null;
  let selected = null;

  /* --- sound cue: a short two-tone beep made with WebAudio (no audio file) --- */
  const sound = { enabled: localStorage.getItem("ouie.sound") !== "off", ctx: null, played: 0 };
  function audioCtx() {
    if (!sound.ctx) {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) return null;
      sound.ctx = new Ctx();
    }
    if (sound.ctx.state === "suspended") sound.ctx.resume();
    return sound.ctx;
  }
  function beep() {
    if (!sound.enabled) return;
    sound.played += 1;
    const ctx = audioCtx();
    if (!ctx) return;
    const start = ctx.currentTime + 0.01;
    [[880, 0], [660, 0.18], [880, 0.36]].forEach(([freq, offset]) => {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.type = "sine";
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, start + offset);
      gain.gain.exponentialRampToValueAtTime(0.3, start + offset + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + offset + 0.16);
      osc.connect(gain).connect(ctx.destination);
      osc.start(start + offset);
      osc.stop(start + offset + 0.17);
    });
  }
  function renderSound() {
    soundBtn.setAttribute("aria-pressed", String(sound.enabled));
    soundBtn.textContent = sound.enabled ? t("sound.on") : t("sound.off");
  }
  soundBtn.addEventListener("click", () => {
    sound.enabled = !sound.enabled;
    localStorage.setItem("ouie.sound", sound.enabled ? "on" : "off");
    renderSound();
    if (sound.enabled) audioCtx();
  });
  ["click", "keydown"].forEach((type) => document.addEventListener(type, () => { if (sound.enabled) audioCtx(); }, { once: true }));
  renderSound();

  /* --- incidents --- */
  function popupHtml(d) {
    return '<strong>' + escapeHtml(t("label." + d.label)) + "</strong><br>" + escapeHtml(t("state." + d.state)) +
      " · " + escapeHtml(formatTime(d.first_onset, false)) + "<br>" + d.sensor_count + " " + escapeHtml(t("col.sensors").toLowerCase()) + " · " +
      (d.approximate ? escapeHtml(t("incident.approximate")) + " " : "") + "±" +
      Math.round(d.ellipse_major_m != null ? d.ellipse_major_m : d.radius_m) + " m" +
      ((d.rounds || 0) > 1 ? "<br>" + d.rounds + " " + escapeHtml(t("incident.rounds").toLowerCase()) : "") + "<br>" +
      '<a href="/console/incidents/' + encodeURIComponent(d.id) + '">' + escapeHtml(t("common.open")) + "</a>";
  }

  function itemHtml(d) {
    const colour = M.COLOURS[d.label] || "#444";
    return '<div class="feed-main"><span class="dot" style="background:' + colour + '" aria-hidden="true"></span>' +
      '<button type="button" class="linklike feed-select">' + escapeHtml(t("label." + d.label)) + "</button>" +
      ' <span class="badge state state-' + d.state + '" data-state="' + d.state + '">' + escapeHtml(t("state." + d.state)) + "</span></div>" +
      '<div class="feed-meta"><time datetime="' + d.first_onset + '">' + escapeHtml(formatTime(d.first_onset, false)) + "</time> · " +
      d.sensor_count + " " + escapeHtml(t("col.sensors").toLowerCase()) + " · " +
      escapeHtml(d.approximate ? t("incident.approximate") : d.method) +
      ((d.rounds || 0) > 1 ? ' · <span class="rounds" data-testid="rounds-' + d.id + '">' + d.rounds + " " + escapeHtml(t("incident.rounds").toLowerCase()) + "</span>" : "") + "</div>" +
      '<div class="feed-actions"><a class="btn btn-small" href="/console/incidents/' + encodeURIComponent(d.id) + '">' + escapeHtml(t("common.open")) + "</a>" +
      (canAct && d.state === "new" ? ' <button type="button" class="btn btn-small btn-primary feed-ack" data-testid="ack-' + d.id + '">' + escapeHtml(t("incident.acknowledge")) + " <kbd>A</kbd></button>" : "") +
      "</div>";
  }

  function select(id, pan) {
    selected = id;
    incidents.forEach((item, key) => {
      item.li.classList.toggle("selected", key === id);
      item.li.setAttribute("aria-selected", String(key === id));
    });
    const item = incidents.get(id);
    if (item && pan) {
      view.map.panTo([item.data.lat, item.data.lon]);
      item.marker.openPopup();
    }
    if (item) item.li.scrollIntoView({ block: "nearest" });
  }

  async function acknowledge(id) {
    const result = await api("POST", "/api/v1/incidents/" + encodeURIComponent(id) + "/transitions", { to: "acknowledged", comment: "" });
    if (result.ok) { upsert(result.data, false); toast(t("action.done")); }
    else toast(failure(result), "error");
  }

  function updateCount() {
    countEl.textContent = String(incidents.size);
    noneEl.hidden = incidents.size > 0;
  }

  function remove(id) {
    const item = incidents.get(id);
    if (!item) return;
    item.marker.remove();
    item.shape.remove();
    item.rounds.remove();
    item.li.remove();
    incidents.delete(id);
    if (selected === id) selected = null;
    updateCount();
  }

  function upsert(d, fresh) {
    if (!OPEN.has(d.state)) { remove(d.id); return; }
    let item = incidents.get(d.id);
    if (!item) {
      const li = document.createElement("li");
      li.dataset.id = d.id;
      li.dataset.label = d.label;
      li.setAttribute("role", "option");
      li.addEventListener("click", (event) => {
        if (event.target.closest(".feed-ack")) { acknowledge(d.id); return; }
        if (event.target.closest("a")) return;
        select(d.id, true);
      });
      const marker = L.marker([d.lat, d.lon], { icon: M.classIcon(d.label, d.state), keyboard: true, title: t("label." + d.label), riseOnHover: true });
      marker.on("click", () => select(d.id, false));
      item = { data: d, marker, shape: M.uncertainty(d), rounds: M.rounds(d), li };
      incidents.set(d.id, item);
      item.shape.addTo(view.map);
      item.rounds.addTo(view.map);
      marker.addTo(view.map);
      list.prepend(li);
      if (fresh) {
        li.classList.add("flash");
        setTimeout(() => li.classList.remove("flash"), 4000);
        if (high.has(d.label)) beep();
      }
    } else {
      item.shape.remove();
      item.shape = M.uncertainty(d).addTo(view.map);
      item.rounds.remove();
      item.rounds = M.rounds(d).addTo(view.map);
      item.marker.setLatLng([d.lat, d.lon]);
      item.marker.setIcon(M.classIcon(d.label, d.state, selected === d.id));
      item.data = d;
    }
    item.li.className = item.li.className.replace(/\bstate-\S+/g, "").trim() + " state-" + d.state;
    item.li.innerHTML = itemHtml(d);
    item.marker.bindPopup(popupHtml(d));
    el.dataset.incidents = String(incidents.size);
    updateCount();
  }

  /* --- sensors --- */
  function drawSensors(sensors) {
    sensorLayer.clearLayers();
    sensors.forEach((s) => {
      const m = M.sensorMarker(s);
      m.on("click", () => { location.href = "/console/sensors/" + encodeURIComponent(s.site) + "/" + encodeURIComponent(s.id); });
      sensorLayer.addLayer(m);
    });
  }
  async function refreshSensors() {
    const result = await api("GET", "/console/sensors.json");
    if (result.ok) drawSensors(result.data.sensors);
  }

  /* --- live stream --- */
  function setLive(on) {
    liveEl.classList.toggle("off", !on);
    liveEl.textContent = on ? t("live.connected") : t("live.disconnected");
    el.dataset.live = on ? "1" : "0";
  }
  function connect() {
    const source = new EventSource(el.dataset.stream);
    let hadError = false;
    source.addEventListener("open", () => { setLive(true); if (hadError) resync(); });
    source.addEventListener("error", () => { hadError = true; setLive(false); });
    source.addEventListener("incident.created", (e) => upsert(JSON.parse(e.data), true));
    source.addEventListener("incident.updated", (e) => {
      const d = JSON.parse(e.data);
      upsert(d, !incidents.has(d.id));
    });
    // an incident merged into another (its rounds moved there) is closed
    source.addEventListener("incident.closed", (e) => upsert(JSON.parse(e.data), false));
  }
  async function resync() {
    const result = await api("GET", el.dataset.src);
    if (!result.ok) return;
    const seen = new Set();
    result.data.incidents.slice().reverse().forEach((d) => { seen.add(d.id); upsert(d, false); });
    Array.from(incidents.keys()).forEach((id) => { if (!seen.has(id)) remove(id); });
    drawSensors(result.data.sensors);
  }

  /* --- keyboard: ↑/↓ select, Enter open, A acknowledge --- */
  document.addEventListener("keydown", (event) => {
    if (typingTarget(event) || event.altKey || event.ctrlKey || event.metaKey) return;
    const ids = Array.from(list.children).map((li) => li.dataset.id);
    if (!ids.length) return;
    const index = ids.indexOf(selected);
    if (event.key === "ArrowDown" || event.key === "j") {
      select(ids[Math.min(index + 1, ids.length - 1)], true); event.preventDefault();
    } else if (event.key === "ArrowUp" || event.key === "k") {
      select(ids[Math.max(index - 1, 0)], true); event.preventDefault();
    } else if (event.key === "Enter" && selected && !event.target.closest("a,button")) {
      location.href = "/console/incidents/" + encodeURIComponent(selected);
    } else if ((event.key === "a" || event.key === "A") && selected && canAct) {
      const item = incidents.get(selected);
      if (item && item.data.state === "new") acknowledge(selected);
    }
  });

  /* --- drones in flight (verification, issue 8): polled while the hub offers them --- */
  const droneMarkers = new Map();
  async function drones() {
    const result = await api("GET", "/api/v1/drone-missions");
    if (!result.ok) return;  // 503: verification not configured; 403: not allowed
    const seen = new Set();
    result.data.vehicles.forEach((d) => {
      const v = d.vehicle;
      if (!v || v.lat == null || !v.armed) return;
      seen.add(d.dock_id);
      const label = d.dock_id + " · " + (v.relative_alt_m == null ? "—" : Number(v.relative_alt_m).toFixed(0) + " m");
      const marker = droneMarkers.get(d.dock_id);
      if (marker) { marker.setLatLng([v.lat, v.lon]); marker.setTooltipContent(label); }
      else droneMarkers.set(d.dock_id, M.droneMarker([v.lat, v.lon], label).addTo(view.map));
    });
    Array.from(droneMarkers.keys()).forEach((k) => { if (!seen.has(k)) { droneMarkers.get(k).remove(); droneMarkers.delete(k); } });
    setTimeout(drones, 1000);
  }

  async function start() {
    const result = await api("GET", el.dataset.src);
    if (!result.ok) { toast(failure(result), "error"); return; }
    const data = result.data;
    view = M.createMap(el, data.plan);
    sensorLayer.addTo(view.map);
    drawSensors(data.sensors);
    (data.plan.cameras || []).forEach((c) => M.equipmentMarker(c, "camera").addTo(view.map));
    (data.plan.docks || []).forEach((d) => M.equipmentMarker(d, "dock").addTo(view.map));
    view.fit(data.sensors.map((s) => [s.lat, s.lon]));
    data.incidents.slice().reverse().forEach((d) => upsert(d, false));
    updateCount();
    connect();
    setInterval(refreshSensors, 10000);
    drones();
    el.dataset.ready = "1";
  }

  window.ouieLive = { sound, incidents, beep };
  start();
})();
