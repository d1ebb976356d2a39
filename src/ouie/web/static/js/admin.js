/* Administration: users and roles (PATCH/POST /api/v1/users; a 202 is a change that waits
   for a second admin, confirmed or refused below), retention run. */
"use strict";
(function () {
  const { t, api, toast, failure } = window.ouie;
  document.querySelectorAll("tr[data-user]").forEach((row) => {
    row.querySelector(".user-save").addEventListener("click", async () => {
      const result = await api("PATCH", "/api/v1/users/" + encodeURIComponent(row.dataset.user), {
        role: row.querySelector(".user-role").value,
        active: row.querySelector(".user-active").checked,
      });
      if (result.status === 202) { toast(t("admin.pending")); setTimeout(() => location.reload(), 1200); return; }
      toast(result.ok ? t("common.saved") : failure(result), result.ok ? "" : "error");
    });
  });
  document.querySelectorAll("tr[data-change]").forEach((row) => {
    const decide = async (verb) => {
      const result = await api("POST", "/api/v1/users/changes/" + row.dataset.change + "/" + verb);
      if (result.ok) { toast(t("common.saved")); location.reload(); }
      else toast(failure(result), "error");
    };
    const confirmButton = row.querySelector(".change-confirm");
    if (confirmButton) confirmButton.addEventListener("click", () => decide("confirm"));
    row.querySelector(".change-refuse").addEventListener("click", () => decide("cancel"));
  });
  const add = document.getElementById("add-user");
  add.addEventListener("submit", async (event) => {
    event.preventDefault();
    const result = await api("POST", "/api/v1/users", {
      username: add.username.value.trim(), password: add.password.value, role: add.role.value,
    });
    if (result.status === 202) { toast(t("admin.pending")); setTimeout(() => location.reload(), 1200); }
    else if (result.ok) { toast(t("common.saved")); location.reload(); }
    else toast(failure(result), "error");
  });
  const retention = document.getElementById("run-retention");
  retention.addEventListener("click", async () => {
    const result = await api("POST", "/api/v1/admin/retention");
    toast(result.ok ? t("action.done") + " " + JSON.stringify(result.data.sites) : failure(result), result.ok ? "" : "error");
  });
})();
