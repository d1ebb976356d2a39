/* Drawing shared by the console map, the incident page and the public page (Leaflet). */
"use strict";
(function () {
  const COLOURS = {
    gunshot: "#c0392b", explosion: "#7f3b08", scream: "#8e44ad", glass_breaking: "#138d90",
    vehicle_crash: "#d35400", siren: "#1f5fa8", car_alarm: "#8a7d00", spray_can: "#2e8b3a",
  };
  const HEALTH = { ok: "#1e8449", clock: "#b9770e", offline: "#c0392b", unknown: "#7b8794", degraded: "#b9770e" };
  /* 24×24 white glyphs, one per class (drawn in code: no icon files, no fonts). */
  const GLYPHS = {
    gunshot: '<circle cx="12" cy="12" r="6" fill="none" stroke="#fff" stroke-width="2"/><path d="M12 2v6M12 16v6M2 12h6M16 12h6" stroke="#fff" stroke-width="2"/>',
    explosion: '<path d="M12 2l2.2 5.5L20 5l-2.5 5.6L23 12l-5.5 1.6L20 19l-5.8-2.4L12 22l-2.2-5.4L4 19l2.5-5.4L1 12l5.5-1.4L4 5l5.8 2.5z" fill="#fff"/>',
    scream: '<path d="M10.5 3h3l-.6 12h-1.8z" fill="#fff"/><circle cx="12" cy="19" r="1.8" fill="#fff"/>',
    glass_breaking: '<path d="M5 3h14l-3 7 3 3-6 8 1-7-4-2 2-4z" fill="none" stroke="#fff" stroke-width="1.8" stroke-linejoin="round"/>',
    vehicle_crash: '<path d="M3 15l2-6h10l3 4h3v4H3z" fill="#fff"/><circle cx="7" cy="18" r="2" fill="#333"/><circle cx="17" cy="18" r="2" fill="#333"/><path d="M17 4l2 3M21 6l-2 2" stroke="#fff" stroke-width="1.6"/>',
    siren: '<path d="M6 17a6 6 0 0 1 12 0z" fill="#fff"/><rect x="4" y="17" width="16" height="3" fill="#fff"/><path d="M12 3v3M4.5 6l2 2M19.5 6l-2 2" stroke="#fff" stroke-width="1.8"/>',
    car_alarm: '<path d="M12 3a5 5 0 0 1 5 5v5l2 3H5l2-3V8a5 5 0 0 1 5-5z" fill="#fff"/><circle cx="12" cy="19" r="2" fill="#fff"/>',
    spray_can: '<rect x="8" y="8" width="8" height="13" rx="1.5" fill="#fff"/><rect x="10" y="5" width="4" height="3" fill="#fff"/><circle cx="18" cy="4" r="1" fill="#fff"/><circle cx="20.5" cy="6" r="1" fill="#fff"/><circle cx="18" cy="7.5" r="1" fill="#fff"/>',
  };

  function classIcon(label, state, selected) {
    const colour = COLOURS[label] || "#444";
    const cls = "incident-icon state-" + state + (selected ? " selected" : "");
    return L.divIcon({
      className: cls,
      html: '<div class="glyph" style="background:' + colour + '"><svg viewBox="0 0 24 24" width="22" height="22" aria-hidden="true">' +
        (GLYPHS[label] || "") + "</svg></div>",
      iconSize: [34, 34], iconAnchor: [17, 17],
    });
  }

  /* Points of the 95 % ellipse: semi-axes in metres, major axis clockwise from north. */
  function ellipse(lat, lon, major, minor, angleDeg, n) {
    const pts = [];
    const th = (angleDeg || 0) * Math.PI / 180;
    const mLat = 111320, mLon = 111320 * Math.cos(lat * Math.PI / 180);
    n = n || 48;
    for (let i = 0; i < n; i++) {
      const tt = 2 * Math.PI * i / n;
      const a = major * Math.cos(tt), b = minor * Math.sin(tt);
      const east = a * Math.sin(th) + b * Math.cos(th);
      const north = a * Math.cos(th) - b * Math.sin(th);
      pts.push([lat + north / mLat, lon + east / mLon]);
    }
    return pts;
  }

  /* The 95 % ellipse of a fix, or — dashed, lightly filled — the approximate area of a sound
     no point could be fixed for (the hub never makes one up). Works for incidents and shots. */
  function uncertainty(incident, colourOf) {
    const colour = colourOf || COLOURS[incident.label] || "#444";
    const area = incident.approximate || (incident.method && incident.method !== "tdoa");
    if (incident.ellipse_major_m != null && incident.ellipse_minor_m != null) {
      return L.polygon(ellipse(incident.lat, incident.lon, Math.max(incident.ellipse_major_m, 1),
        Math.max(incident.ellipse_minor_m, 1), incident.ellipse_angle_deg), {
        color: colour, weight: 2, fillColor: colour, fillOpacity: area ? 0.06 : 0.18,
        dashArray: area ? "6 6" : null, className: area ? "ellipse area" : "ellipse", interactive: false,
      });
    }
    return L.circle([incident.lat, incident.lon], {
      radius: incident.radius_m || 50, color: colour, weight: 2, dashArray: "6 6",
      fillColor: colour, fillOpacity: 0.06, className: "ellipse radius area", interactive: false,
    });
  }

  /* The rounds of a burst: each located round a numbered dot, the shooter's track through
     them, approximate rounds as thin dashed areas. Empty for a single sound. */
  function rounds(incident) {
    const group = L.layerGroup();
    const shots = incident.shots || [];
    if (shots.length < 2) return group;
    const colour = COLOURS[incident.label] || "#444";
    const located = shots.filter((s) => !s.approximate);
    if (located.length > 1) {
      L.polyline(located.map((s) => [s.lat, s.lon]), {
        color: colour, weight: 2, opacity: 0.8, dashArray: "2 6", className: "round-track", interactive: false,
      }).addTo(group);
    }
    shots.forEach((s) => {
      const tip = "#" + s.number + " · " + (s.approximate ? window.ouie.t("incident.approximate") + " ±" : "±") +
        Math.round(s.radius_m) + " m · " + s.sensor_count + " " + window.ouie.t("col.sensors").toLowerCase();
      if (s.approximate) {
        uncertainty(s, colour).setStyle({ weight: 1, fillOpacity: 0.03 }).addTo(group);
        return;
      }
      L.marker([s.lat, s.lon], {
        icon: L.divIcon({ className: "round-icon", html: '<span style="border-color:' + colour + '">' + s.number + "</span>", iconSize: [18, 18], iconAnchor: [9, 9] }),
        keyboard: false, title: "#" + s.number,
      }).bindTooltip(tip).addTo(group);
    });
    return group;
  }

  function featureStyle(feature) {
    const kind = (feature.properties || {}).kind;
    if (kind === "building") return { color: "#8c96a3", weight: 1, fillColor: "#c9d0d8", fillOpacity: 0.9 };
    if (kind === "square") return { color: "#b7c4b0", weight: 1, fillColor: "#e4eedd", fillOpacity: 1 };
    if (kind === "zone") return { color: "#1f5fa8", weight: 2, dashArray: "8 6", fill: false };
    const width = (feature.properties || {}).width_m || 10;
    return { color: "#ffffff", weight: Math.max(4, width * 0.9), opacity: 1, lineCap: "round" };
  }

  /* A map with the site plan; returns {map, fit(latlngs)}. */
  function createMap(el, plan, options) {
    options = options || {};
    const map = L.map(el, {
      zoomControl: true, attributionControl: !!(plan && plan.tile_url), keyboard: true,
      zoomSnap: 0.25, maxZoom: 21, minZoom: 12,
    });
    el.classList.add("plan-bg");
    // a view first: Leaflet cannot place layers on a map without a centre and zoom
    map.setView((plan && plan.origin) || [45.44, 4.387], 17);
    if (plan && plan.tile_url) {
      L.tileLayer(plan.tile_url, { maxZoom: 21, attribution: plan.tile_attribution || "" }).addTo(map);
    }
    const layers = [];
    if (plan && plan.features && plan.features.features && plan.features.features.length) {
      const outline = L.geoJSON(plan.features, {
        style: (f) => {
          const s = featureStyle(f);
          if ((f.properties || {}).kind === "street") return { color: "#aab4bf", weight: s.weight + 2, lineCap: "round" };
          return { stroke: false, fill: false };
        },
        interactive: false,
      }).addTo(map);
      const main = L.geoJSON(plan.features, {
        style: featureStyle,
        onEachFeature: (f, layer) => {
          const name = (f.properties || {}).name;
          if (name && (f.properties.kind === "street" || f.properties.kind === "square")) {
            layer.bindTooltip(name, { sticky: true });
          }
        },
      }).addTo(map);
      layers.push(outline, main);
    }
    (plan && plan.zones || []).forEach((z) => {
      layers.push(L.polygon(z.polygon, { color: "#1f5fa8", weight: 2, dashArray: "8 6", fill: false, interactive: false }).addTo(map));
    });
    function fit(extra) {
      let bounds = null;
      layers.forEach((l) => { const b = l.getBounds && l.getBounds(); if (b && b.isValid()) bounds = bounds ? bounds.extend(b) : L.latLngBounds(b.getSouthWest(), b.getNorthEast()); });
      (extra || []).forEach((p) => { bounds = bounds ? bounds.extend(p) : L.latLngBounds([p, p]); });
      if (bounds && bounds.isValid()) map.fitBounds(bounds, { padding: [16, 16], maxZoom: options.maxZoom || 19 });
      else if (plan && plan.origin) map.setView(plan.origin, 17);
      else map.setView([45.44, 4.387], 16);
    }
    return { map, fit };
  }

  function sensorMarker(sensor, options) {
    options = options || {};
    const colour = options.neutral ? "#1f5fa8" : (HEALTH[sensor.health] || HEALTH.unknown);
    const marker = L.circleMarker([sensor.lat, sensor.lon], {
      radius: options.radius || 6, color: "#ffffff", weight: 2, fillColor: colour, fillOpacity: 1,
      className: "sensor-marker health-" + (options.neutral ? "public" : sensor.health),
    });
    marker.bindTooltip(sensor.id + (options.neutral ? "" : " · " + window.ouie.t("health." + sensor.health)));
    return marker;
  }

  function equipmentMarker(item, kind) {
    const html = kind === "camera"
      ? '<svg viewBox="0 0 16 16" width="14" height="14"><rect x="1" y="4" width="10" height="8" rx="1" fill="#2d3640"/><path d="M11 7l4-2v6l-4-2z" fill="#2d3640"/></svg>'
      : '<svg viewBox="0 0 16 16" width="14" height="14"><path d="M8 1l7 4v6l-7 4-7-4V5z" fill="#2d3640"/><text x="8" y="11" font-size="7" text-anchor="middle" fill="#fff">D</text></svg>';
    return L.marker([item.lat, item.lon], {
      icon: L.divIcon({ className: "equip-icon", html, iconSize: [18, 18], iconAnchor: [9, 9] }),
      keyboard: false, title: item.id,
    }).bindTooltip(item.id);
  }

  /* A drone in flight (issue 8): position from the hub's /api/v1/drone-missions. */
  function droneMarker(latlng, label) {
    const html = '<svg viewBox="0 0 24 24" width="26" height="26" aria-hidden="true"><circle cx="12" cy="12" r="11" fill="#0b6e4f" stroke="#fff" stroke-width="2"/>' +
      '<path d="M6 6l12 12M18 6L6 18" stroke="#fff" stroke-width="2"/><circle cx="6" cy="6" r="2.4" fill="#fff"/><circle cx="18" cy="6" r="2.4" fill="#fff"/>' +
      '<circle cx="6" cy="18" r="2.4" fill="#fff"/><circle cx="18" cy="18" r="2.4" fill="#fff"/></svg>';
    return L.marker(latlng, {
      icon: L.divIcon({ className: "drone-marker", html, iconSize: [26, 26], iconAnchor: [13, 13] }),
      keyboard: false, title: label, zIndexOffset: 1000,
    }).bindTooltip(label);
  }

  window.ouieMap = { COLOURS, HEALTH, classIcon, ellipse, uncertainty, rounds, createMap, sensorMarker, equipmentMarker, droneMarker, lastMap: null };
})();
