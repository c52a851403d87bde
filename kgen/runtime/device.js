// @ts-check
// The device a backend runs on, as the tuner names it: a record's device class (kgen.records.store.device_class,
// from each backend's device_parts) and the fingerprint a record keeps. The page computes both the same way, so
// a descriptor's records of this class are used here and what the page measures imports as records of it.

/** The WebGL renderer, unmasked where the browser allows. @param {WebGL2RenderingContext} gl */
function renderer(gl) {
  const dbg = gl.getExtension("WEBGL_debug_renderer_info");
  return String(gl.getParameter(dbg ? dbg.UNMASKED_RENDERER_WEBGL : gl.RENDERER) ?? "");
}

/** @param {string} backend @param {any} launcher @returns {string[]} */
function parts(backend, launcher) {
  if (backend === "webgpu") {
    const info = launcher.adapter?.info ?? {};
    return [info.vendor || "unknown", info.architecture || info.device || "unknown"];
  }
  if (backend === "webgl") {
    const name = renderer(launcher.gl).toLowerCase() || "unknown";
    return ["webgl", name.includes("swiftshader") ? "swiftshader" : name.replace(/[^a-z0-9]+/g, "_").slice(0, 48)];
  }
  // wasm: the threads this page may run (1 without cross-origin isolation, whatever the cores)
  return [backend, `${backend === "wasm" ? launcher.maxThreads : (navigator.hardwareConcurrency ?? 0)}threads`];
}

/** This page's device class for `backend`, e.g. `google-swiftshader` or `wasm-8threads`. @param {string} backend @param {any} launcher */
export function deviceClass(backend, launcher) {
  return parts(backend, launcher)
    .map((p) => p.trim().toLowerCase().replaceAll(" ", "_"))
    .join("-");
}

/** The part of the browser's fingerprint a record keeps (kgen.records.store.FINGERPRINT_KEYS). @param {string} backend @param {any} launcher */
export function fingerprint(backend, launcher) {
  /** @type {Record<string, any>} */
  const fp = {
    browser: navigator.userAgent,
    hardwareConcurrency: navigator.hardwareConcurrency,
    crossOriginIsolated: self.crossOriginIsolated,
    software: false,
  };
  if (backend === "webgpu") {
    const info = launcher.adapter?.info ?? {};
    fp.webgpu = { vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description };
    fp.software = info.architecture === "swiftshader" || Boolean(info.isFallbackAdapter);
  } else if (backend === "webgl") {
    fp.webgl2 = { renderer: renderer(launcher.gl) };
    fp.software = /swiftshader/i.test(fp.webgl2.renderer);
  } else if (backend === "wasm") {
    fp.wasm = { maxThreads: launcher.maxThreads, relaxedSimd: launcher.relaxedSimd };
  }
  return fp;
}
