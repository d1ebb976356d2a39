/* Public page map: the site plan and sensor positions only (never incidents). */
"use strict";
(function () {
  const M = window.ouieMap;
  const el = document.getElementById("public-map");
  fetch(el.dataset.src, { credentials: "omit" }).then((r) => r.json()).then((data) => {
    const view = M.createMap(el, data.plan);
    data.sensors.forEach((s) => M.sensorMarker(s, { neutral: true, radius: 6 }).addTo(view.map));
    view.fit(data.sensors.map((s) => [s.lat, s.lon]));
    el.dataset.ready = "1";
  });
})();
