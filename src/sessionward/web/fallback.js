// sessionward: the WebCrypto fallback of Device Bound Session Credentials.
//
// For browsers without native DBSC. Include it on signed-in pages:
//   <script src="/sessionward/dbsc/fallback.js" defer></script>
// It keeps a non-extractable ECDSA P-256 key in IndexedDB and follows the DBSC protocol
// against the same endpoints: it registers the key with a signed dbsc+jwt, then refreshes the
// short-lived bound cookie before it expires, answering each challenge with a signature.
//
// Weaker than native DBSC: the key cannot be copied out of the browser, but any script
// running in this origin (an XSS) can use it while the page is open. Native DBSC keeps the
// key out of the page's reach. If the browser registers natively first, this script finds
// the session bound and does nothing.
(() => {
  "use strict";
  const me = document.currentScript;
  if (!me || !window.crypto || !crypto.subtle || !window.indexedDB) return;
  const base = new URL(me.src, location.href).pathname.replace(/\/fallback\.js$/, "");
  const delay = Number(me.dataset.delay || "1500"); // leave native DBSC time to register first
  const DB = "sessionward-binding";
  const RELOADED = "sessionward-binding-reloaded";
  const encoder = new TextEncoder();

  const b64 = (buffer) =>
    btoa(String.fromCharCode(...new Uint8Array(buffer)))
      .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const part = (value) => b64(encoder.encode(JSON.stringify(value)));
  const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

  function open() {
    return new Promise((done, fail) => {
      const request = indexedDB.open(DB, 1);
      request.onupgradeneeded = () => request.result.createObjectStore("state");
      request.onsuccess = () => done(request.result);
      request.onerror = () => fail(request.error);
    });
  }

  async function storage(mode, action) {
    const db = await open();
    return new Promise((done, fail) => {
      const request = action(db.transaction("state", mode).objectStore("state"));
      request.onsuccess = () => done(request.result);
      request.onerror = () => fail(request.error);
    });
  }
  const load = () => storage("readonly", (s) => s.get("session"));
  const save = (state) => storage("readwrite", (s) => s.put(state, "session"));
  const forget = () => storage("readwrite", (s) => s.delete("session"));

  async function sign(key, header, claims) {
    const input = part(header) + "." + part(claims);
    const algorithm = { name: "ECDSA", hash: "SHA-256" };
    const signature = await crypto.subtle.sign(algorithm, key, encoder.encode(input));
    return input + "." + b64(signature); // WebCrypto's ECDSA signature is raw r || s
  }

  function quoted(header, name) {
    // a Structured Field string: the item itself (name null) or a parameter
    const pattern = name === null ? /^\s*"((?:[^"\\]|\\.)*)"/ : new RegExp(";\\s*" + name + '="((?:[^"\\\\]|\\\\.)*)"');
    const match = header && header.match(pattern);
    return match ? match[1].replace(/\\(.)/g, "$1") : null;
  }

  function lifetime(response, fallback) {
    const seconds = Number(response.headers.get("Sessionward-Bound-Lifetime"));
    return seconds > 0 ? seconds : fallback;
  }

  async function register() {
    const ask = { method: "POST", credentials: "same-origin", headers: { "Sessionward-Binding": "webcrypto" } };
    let response = await fetch(base + "/register", ask);
    const offer = response.status === 403 ? response.headers.get("Sessionward-Registration") : null;
    if (!offer) return null; // bound natively already, or not signed in
    const pair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
    const jwk = await crypto.subtle.exportKey("jwk", pair.publicKey); // public half only
    const header = { alg: "ES256", typ: "dbsc+jwt", jwk: { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y } };
    const claims = { jti: quoted(offer, "challenge"), authorization: quoted(offer, "authorization") };
    const jwt = await sign(pair.privateKey, header, claims);
    response = await fetch(base + "/register", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Sessionward-Binding": "webcrypto", "Secure-Session-Response": jwt },
    });
    if (!response.ok) return null;
    const config = await response.json();
    const state = {
      key: pair.privateKey, // a non-extractable CryptoKey: IndexedDB stores it as such
      sid: config.session_identifier,
      refresh: config.refresh_url,
      challenge: null,
      at: Date.now(),
      lifetime: lifetime(response, 300),
    };
    await save(state);
    return state;
  }

  async function refresh(state) {
    for (let attempt = 0; attempt < 4; attempt += 1) {
      const headers = { "Sessionward-Session-Id": state.sid }; // fetch() cannot send Sec- headers
      if (state.challenge) {
        headers["Secure-Session-Response"] = await sign(state.key, { alg: "ES256", typ: "dbsc+jwt" }, { jti: state.challenge });
      }
      const response = await fetch(state.refresh, { method: "POST", credentials: "same-origin", headers });
      state.challenge = quoted(response.headers.get("Secure-Session-Challenge"), null);
      if (response.status === 403 && state.challenge) continue; // sign the new challenge
      if (response.status >= 500 || response.status === 429) return state; // keep; retry later
      const body = response.ok ? await response.json().catch(() => ({})) : { continue: false };
      if (body.continue === false) {
        await forget();
        return null;
      }
      state.at = Date.now();
      state.lifetime = lifetime(response, state.lifetime);
      await save(state);
      return state;
    }
    return state;
  }

  const margin = (state) => Math.min(60, state.lifetime / 4);

  function schedule(state) {
    const due = state.at + (state.lifetime - margin(state)) * 1000 - Date.now();
    setTimeout(async () => {
      const fresh = await refresh(state).catch(() => state);
      if (fresh) schedule(fresh);
    }, Math.max(1000, due));
  }

  async function start() {
    let state = await load();
    if (state) {
      const age = (Date.now() - state.at) / 1000;
      if (age >= state.lifetime - margin(state)) {
        state = await refresh(state);
        // The bound cookie had expired before this page was served: show it signed in.
        if (state && age >= state.lifetime && !sessionStorage.getItem(RELOADED)) {
          sessionStorage.setItem(RELOADED, "1");
          location.reload();
          return;
        }
      }
    }
    sessionStorage.removeItem(RELOADED);
    if (!state) {
      await sleep(delay);
      state = await register();
    }
    if (state) schedule(state);
  }

  start().catch(() => {});
})();
