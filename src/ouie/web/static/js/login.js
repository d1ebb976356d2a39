/* Login form: POST /api/v1/auth/login, then go where the user was heading. */
"use strict";
(function () {
  const form = document.getElementById("login-form");
  const error = document.getElementById("login-error");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    const payload = { username: form.username.value.trim(), password: form.password.value };
    const result = await window.ouie.api("POST", "/api/v1/auth/login", payload);
    if (result.ok) {
      location.href = form.dataset.next || "/console/";
      return;
    }
    error.textContent = result.status === 429 ? error.dataset.limited : error.dataset.failed;
    error.hidden = false;
    form.password.value = "";
    form.password.focus();
  });
})();
