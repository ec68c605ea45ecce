// Every call goes through the public API with the key in the X-API-Key header; the key lives in this tab only.

const KEY_ITEM = "dprime.apiKey";

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

export function storedKey() {
  return sessionStorage.getItem(KEY_ITEM);
}

export function storeKey(key) {
  sessionStorage.setItem(KEY_ITEM, key);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY_ITEM);
}

/** Call the API; resolves to the parsed JSON (or a Blob for images), rejects with an ApiError. */
export async function call(method, path, { form, query, key, blob } = {}) {
  const url = new URL(path, document.baseURI);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== null && value !== undefined && value !== "") url.searchParams.set(name, value);
  }
  const headers = { "X-API-Key": key || storedKey() || "" };
  let response;
  try {
    response = await fetch(url, { method, headers, body: form, credentials: "omit", cache: "no-store" });
  } catch (err) {
    throw new ApiError(0, "network_error", `the service did not answer: ${err.message}`);
  }
  if (!response.ok) {
    let body = null;
    try {
      body = await response.json();
    } catch {
      // not the API's error envelope (a proxy's page, say): report the status alone
    }
    const e = body && body.error;
    throw new ApiError(
      response.status,
      e ? e.code : "http_" + response.status,
      e ? e.message : response.statusText,
      e ? e.details : {},
    );
  }
  return blob ? response.blob() : response.json();
}

export const api = {
  me: (key) => call("GET", "v1/keys/me", { key }),
  activeModel: () => call("GET", "v1/models/active"),
  models: () => call("GET", "v1/models"),
  report: (id) => call("GET", `v1/models/${encodeURIComponent(id)}/report`),
  reportPlot: (id, name) =>
    call("GET", `v1/models/${encodeURIComponent(id)}/report/${encodeURIComponent(name)}`, { blob: true }),
  verify: (form) => call("POST", "v1/verify", { form }),
  search: (form) => call("POST", "v1/search", { form }),
  enroll: (form) => call("POST", "v1/identities", { form }),
  identities: (query) => call("GET", "v1/identities", { query }),
  deleteIdentity: (id) => call("DELETE", `v1/identities/${encodeURIComponent(id)}`),
  activate: (id) => call("POST", `v1/admin/models/${encodeURIComponent(id)}/activate`),
  rollback: () => call("POST", "v1/admin/models/rollback"),
  job: (id) => call("GET", `v1/admin/jobs/${encodeURIComponent(id)}`),
  galleryReport: () => call("GET", "v1/admin/calibration"),
  adoptCalibration: () => call("POST", "v1/admin/calibration"),
  revertCalibration: () => call("DELETE", "v1/admin/calibration"),
};
