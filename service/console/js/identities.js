// Identities: enroll several photos at once (each rejected photo with its reason beside it), list, search, delete.

import { api } from "./api.js";
import { byId, h, replace, showError } from "./dom.js";
import { num, pct, when } from "./format.js";
import { PhotoUrls, wireDropZone } from "./photos.js";

const thumbs = new PhotoUrls();
const list = { q: "", cursors: [null], page: 0 };

function renderChosen(files) {
  thumbs.release();
  replace(
    byId("enroll-files"),
    [...files].map((file, i) =>
      h(
        "li",
        { "data-testid": "enroll-file", "data-index": i, "data-filename": file.name },
        h("img", { class: "thumb", src: thumbs.of(file), alt: "" }),
        h("span", { class: "filename" }, file.name),
        h("span", { class: "status", "data-testid": "enroll-file-status" }, "to enroll"),
      ),
    ),
  );
}

function markFile(index, ok, text) {
  const item = byId("enroll-files").querySelector(`li[data-index="${index}"]`);
  if (!item) return;
  item.dataset.outcome = ok ? "accepted" : "rejected";
  item.querySelector(".status").textContent = text;
}

function markOutcome(accepted, rejected) {
  for (const a of accepted) {
    const quality = a.quality_pct === null ? "" : ` · quality ${pct(a.quality_pct / 100, 0)}`;
    markFile(a.index, true, `enrolled as face ${a.face_id} · κ ${num(a.kappa, 2)}${quality}`);
  }
  for (const r of rejected) markFile(r.index, false, `${r.code}: ${r.message}`);
}

async function enroll(event) {
  event.preventDefault();
  const error = byId("enroll-error");
  const result = byId("enroll-result");
  showError(error, null);
  result.textContent = "";
  const name = byId("enroll-name").value.trim();
  const files = [...byId("enroll-images").files];
  const body = new FormData();
  body.append("name", name);
  for (const file of files) body.append("images", file, file.name);
  const submit = event.target.querySelector("button[type=submit]");
  submit.disabled = true;
  try {
    const r = await api.enroll(body);
    markOutcome(r.accepted, r.rejected);
    result.textContent =
      `Enrolled ${r.identity.name} with ${r.accepted.length} of ${files.length} photo(s)` +
      (r.rejected.length ? `; ${r.rejected.length} rejected (reason beside each).` : ".");
    result.dataset.identityId = r.identity.id;
    byId("enroll-form").reset();
    await loadList();
  } catch (err) {
    if (err.code === "no_usable_faces") {
      markOutcome([], err.details.rejected || []);
      result.textContent = "Nothing was enrolled: none of the photos gave a usable face (reason beside each).";
    } else {
      showError(error, err);
    }
  } finally {
    submit.disabled = false;
  }
}

function confirmDelete(identity) {
  const dialog = byId("confirm-dialog");
  byId("confirm-text").textContent =
    `Delete “${identity.name}” and its ${identity.faces.length} face(s)? This cannot be undone.`;
  return new Promise((resolve) => {
    const yes = byId("confirm-yes");
    const no = byId("confirm-no");
    const done = (ok) => {
      yes.removeEventListener("click", onYes);
      no.removeEventListener("click", onNo);
      dialog.close();
      resolve(ok);
    };
    const onYes = () => done(true);
    const onNo = () => done(false);
    yes.addEventListener("click", onYes);
    no.addEventListener("click", onNo);
    dialog.showModal();
  });
}

function identityRow(session, identity) {
  const remove = h(
    "button",
    { type: "button", class: "danger", "data-testid": "identity-delete", "data-role": "admin" },
    "Delete",
  );
  remove.hidden = session.role !== "admin";
  remove.addEventListener("click", async () => {
    if (!(await confirmDelete(identity))) return;
    try {
      await api.deleteIdentity(identity.id);
      await loadList();
    } catch (err) {
      showError(byId("identities-error"), err);
    }
  });
  return h(
    "tr",
    { "data-testid": "identity-row", "data-identity-id": identity.id },
    h("td", { "data-testid": "identity-name" }, identity.name),
    h("td", {}, identity.faces.length),
    h("td", {}, when(identity.created)),
    h("td", { class: "mono" }, identity.id),
    h("td", {}, remove),
  );
}

let currentSession = null;

async function loadList() {
  const error = byId("identities-error");
  showError(error, null);
  try {
    const limit = byId("identity-limit").value;
    const page = await api.identities({ limit, cursor: list.cursors[list.page], q: list.q });
    if (!page.items.length && list.page > 0) {
      list.page -= 1; // the last row of this page was deleted: show the one before
      return loadList();
    }
    const rows = page.items.map((it) => identityRow(currentSession, it));
    replace(
      byId("identity-list"),
      rows.length ? rows : h("tr", {}, h("td", { colspan: 5, class: "hint" }, list.q ? "no name matches" : "none yet")),
    );
    list.cursors.length = list.page + 1;
    if (page.next_cursor) list.cursors.push(page.next_cursor);
    byId("identity-prev").disabled = list.page === 0;
    byId("identity-next").disabled = !page.next_cursor;
    byId("identity-page").textContent = `page ${list.page + 1}`;
  } catch (err) {
    showError(error, err);
  }
}

function restart() {
  list.q = byId("identity-search").value.trim();
  list.cursors = [null];
  list.page = 0;
  return loadList();
}

export function initIdentities(session) {
  currentSession = session;
  const input = byId("enroll-images");
  wireDropZone(byId("enroll-drop"), input, { several: true });
  input.addEventListener("change", () => renderChosen(input.files));
  byId("enroll-form").addEventListener("submit", enroll);
  byId("identity-search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    restart();
  });
  byId("identity-limit").addEventListener("change", restart);
  byId("identity-next").addEventListener("click", () => {
    list.page += 1;
    loadList();
  });
  byId("identity-prev").addEventListener("click", () => {
    list.page = Math.max(0, list.page - 1);
    loadList();
  });
}

export function showIdentities() {
  return loadList();
}
