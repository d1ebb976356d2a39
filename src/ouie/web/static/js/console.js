/* ouie console: shared helpers (API calls with CSRF, toasts, session expiry, local times). */
"use strict";
(function () {
  const body = document.body;
  const strings = JSON.parse(document.getElementById("i18n").textContent || "{}");
  const lang = body.dataset.lang || "fr";

  function t(key) { return strings[key] || key; }

  function loginUrl() {
    const here = location.pathname + location.search;
    return "/login?next=" + encodeURIComponent(here);
  }

  /* JSON call to the hub's API with the session cookie and the CSRF header. */
  async function api(method, url, payload) {
    const headers = { "Accept": "application/json" };
    if (payload !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && body.dataset.csrf) headers[body.dataset.csrfHeader || "X-CSRF-Token"] = body.dataset.csrf;
    let response;
    try {
      response = await fetch(url, {
        method, headers, credentials: "same-origin",
        body: payload === undefined ? undefined : JSON.stringify(payload),
      });
    } catch (err) {
      return { ok: false, status: 0, data: { detail: String(err) } };
    }
    let data = null;
    try { data = await response.json(); } catch (_) { data = null; }
    if (response.status === 401 && body.dataset.csrf) { location.href = loginUrl(); }
    return { ok: response.ok, status: response.status, data };
  }

  function toast(message, kind) {
    const el = document.getElementById("toast");
    if (!el) return;
    el.textContent = message;
    el.className = "toast show " + (kind || "");
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { el.className = "toast"; }, 3500);
  }

  function failure(result) {
    if (result.status === 403) return t("action.forbidden");
    const detail = result.data && result.data.detail;
    return t("action.failed") + (detail ? " — " + (typeof detail === "string" ? detail : JSON.stringify(detail)) : "");
  }

  function formatTime(iso, withDate) {
    const d = new Date(iso);
    if (isNaN(d)) return iso;
    const opts = withDate === false
      ? { hour: "2-digit", minute: "2-digit", second: "2-digit" }
      : { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" };
    return new Intl.DateTimeFormat(lang === "fr" ? "fr-FR" : "en-GB", opts).format(d);
  }

  function localTimes(root) {
    (root || document).querySelectorAll("time[datetime]").forEach((el) => {
      if (el.dataset.local) return;
      el.title = el.textContent;
      el.textContent = formatTime(el.getAttribute("datetime"));
      el.dataset.local = "1";
    });
  }

  /* Session expiry: warn a little before, then send to the login page. */
  function sessionTimers() {
    const expires = Date.parse(body.dataset.expires || "");
    if (!expires) return;
    const warnMs = (parseInt(body.dataset.warn, 10) || 60) * 1000;
    const banner = document.getElementById("session-banner");
    const now = Date.now();
    const warnAt = expires - warnMs - now;
    if (warnAt > 0) {
      setTimeout(() => { banner.textContent = t("session.expiring"); banner.hidden = false; }, Math.min(warnAt, 2 ** 31 - 1));
    }
    setTimeout(() => {
      banner.textContent = t("session.expired"); banner.hidden = false;
      setTimeout(() => { location.href = loginUrl(); }, 1500);
    }, Math.min(Math.max(expires - now, 0), 2 ** 31 - 1));
  }

  function escapeHtml(value) {
    return String(value).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }

  function typingTarget(event) {
    const el = event.target;
    return el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }

  document.addEventListener("DOMContentLoaded", () => {
    localTimes();
    sessionTimers();
    const logout = document.getElementById("logout");
    if (logout) {
      logout.addEventListener("click", async () => {
        await api("POST", "/api/v1/auth/logout");
        location.href = "/login?out=1";
      });
    }
    document.querySelectorAll("select[data-autosubmit]").forEach((el) => {
      el.addEventListener("change", () => el.form.submit());
    });
  });

  window.ouie = { t, api, toast, failure, formatTime, localTimes, escapeHtml, typingTarget, lang };
})();
