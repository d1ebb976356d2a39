/* Sensor page: live score sparklines, level meter and counters (polling); thresholds form. */
"use strict";
(function () {
  const { t, api, toast, failure, formatTime } = window.ouie;
  const root = document.getElementById("sensor");

  function spark(values, colour) {
    const w = 160, h = 32;
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 " + w + " " + h);
    svg.setAttribute("width", w); svg.setAttribute("height", h);
    svg.setAttribute("class", "spark");
    const bg = document.createElementNS(ns, "rect");
    bg.setAttribute("width", w); bg.setAttribute("height", h); bg.setAttribute("fill", "#f4f6f8"); bg.setAttribute("rx", 3);
    svg.appendChild(bg);
    if (values.length) {
      const step = w / Math.max(values.length - 1, 1);
      const pts = values.map((v, i) => (values.length === 1 ? [0, w] : [i * step]).map((x) => x.toFixed(1) + "," + (h - 2 - (h - 4) * Math.max(0, Math.min(1, v))).toFixed(1)).join(" "));
      const line = document.createElementNS(ns, "polyline");
      line.setAttribute("points", pts.join(" "));
      line.setAttribute("fill", "none"); line.setAttribute("stroke", colour); line.setAttribute("stroke-width", "1.8");
      svg.appendChild(line);
    }
    return svg;
  }

  async function refresh() {
    const result = await api("GET", root.dataset.live);
    if (!result.ok || !result.data || result.data.error) return;
    const s = result.data;
    document.querySelectorAll("tr[data-label]").forEach((row) => {
      const series = (s.scores[row.dataset.label] || []).map((p) => p[1]);
      const cell = row.querySelector(".spark-cell");
      cell.replaceChildren(spark(series, cell.dataset.colour));
      row.querySelector(".last-score").textContent = series.length ? series[series.length - 1].toFixed(2) : "—";
    });
    const meter = document.getElementById("level-meter");
    if (s.level_mean_dbfs != null) {
      meter.querySelector(".meter-fill").style.width = Math.max(0, (90 + s.level_mean_dbfs) / 90 * 100) + "%";
      meter.querySelector(".meter-peak").style.left = Math.max(0, (90 + s.level_max_dbfs) / 90 * 100) + "%";
      meter.setAttribute("aria-valuenow", s.level_mean_dbfs.toFixed(1));
    }
    if (s.speech_suppressions != null) document.getElementById("suppressions").textContent = s.speech_suppressions;
    if (s.events_emitted != null) document.getElementById("events").textContent = s.events_emitted;
    if (s.last_seen) document.getElementById("last-seen").textContent = formatTime(s.last_seen);
    const health = document.querySelector("#health .badge");
    if (health) { health.className = "badge health health-" + s.health; health.textContent = t("health." + s.health); }
  }
  setInterval(refresh, 5000);

  const form = document.getElementById("thresholds-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const thresholds = {};
    form.querySelectorAll("input[type=number]").forEach((input) => {
      if (input.value !== "") thresholds[input.name] = parseFloat(input.value);
    });
    const result = await api("PUT", root.dataset.thresholdsUrl, { thresholds });
    if (result.ok) toast(t("common.saved"));
    else toast(failure(result), "error");
  });
})();
