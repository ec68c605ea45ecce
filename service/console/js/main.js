// The console's shell: sign-in, the pages, and which controls the key's role may see.

import { api, forgetKey, storedKey, storeKey } from "./api.js";
import { initCalibration, showCalibration } from "./calibration.js";
import { byId, showError } from "./dom.js";
import { initIdentify } from "./identify.js";
import { initIdentities, showIdentities } from "./identities.js";
import { initModels, showModels } from "./models.js";
import { initVerify, showVerify } from "./verify.js";

const PAGES = {
  verify: { show: showVerify },
  identify: {},
  identities: { show: showIdentities },
  models: { show: showModels, admin: true },
  calibration: { show: showCalibration, admin: true },
};

/** What every page shares: the key's role and the serving model (fetched once, refetched after a change). */
const session = {
  role: null,
  model: null,
  async activeModel(fresh = false) {
    if (fresh || !this.model) this.model = await api.activeModel();
    return this.model;
  },
  forgetModel() {
    this.model = null;
  },
};

function applyRole(role) {
  document.body.dataset.role = role || "";
  for (const el of document.querySelectorAll("[data-role=admin]")) el.hidden = role !== "admin";
}

function pageFromHash() {
  const name = location.hash.replace(/^#/, "");
  const page = PAGES[name];
  return page && (!page.admin || session.role === "admin") ? name : "verify";
}

async function show(name) {
  for (const section of document.querySelectorAll("main > .page")) section.hidden = section.id !== `page-${name}`;
  for (const link of document.querySelectorAll("#nav a")) link.classList.toggle("current", link.dataset.page === name);
  document.body.dataset.page = name;
  const page = PAGES[name];
  if (page && page.show) await page.show(session);
}

function signedOut(message) {
  session.role = null;
  session.model = null;
  applyRole(null);
  byId("nav").hidden = true;
  byId("logout").hidden = true;
  byId("whoami").textContent = "";
  for (const section of document.querySelectorAll("main > .page")) section.hidden = section.id !== "page-login";
  document.body.dataset.page = "login";
  showError(byId("login-error"), message ? { message } : null);
}

async function signIn(key) {
  const me = await api.me(key);
  storeKey(key);
  session.role = me.role;
  applyRole(me.role);
  byId("nav").hidden = false;
  byId("logout").hidden = false;
  byId("whoami").textContent = me.source === "stored" ? `${me.name} (${me.role})` : `bootstrap key (${me.role})`;
  await show(pageFromHash());
}

async function boot() {
  initVerify(session);
  initIdentify(session);
  initIdentities(session);
  initModels(session);
  initCalibration(session);
  byId("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = byId("login-key");
    try {
      await signIn(input.value.trim());
      input.value = "";
    } catch (err) {
      signedOut(err.code === "unauthorized" ? "That key is unknown or revoked." : `${err.code}: ${err.message}`);
    }
  });
  byId("logout").addEventListener("click", () => {
    forgetKey();
    signedOut(null);
  });
  window.addEventListener("hashchange", () => {
    if (session.role) show(pageFromHash());
  });
  const key = storedKey();
  if (!key) {
    signedOut(null);
    return;
  }
  try {
    await signIn(key);
  } catch (err) {
    forgetKey();
    signedOut(err.code === "unauthorized" ? "The stored key is no longer valid; sign in again." : err.message);
  }
}

boot();
