// sessionward: the optional device signal (docs/risk.md, "Device signal").
//
// Include it on your pages, from your own origin (no inline script, CSP 'self' is enough):
//   <script src="/sessionward/device.js" defer></script>
// It reads four coarse attributes of the browser's machine (operating system family, logical
// processors and memory in broad buckets, touch screen or not), hashes them with SHA-256
// together with this site's origin, and keeps the first 128 bits of the digest in the cookie
// __Host-sw-dev, which the browser sends back to this site only. Nothing else is read, stored
// or sent anywhere; the server keys the value with its own secret before using it.
(() => {
  "use strict";
  if (!window.isSecureContext || !window.crypto || !crypto.subtle) return;
  const NAME = "__Host-sw-dev";
  const MAX_AGE = 400 * 86400; // the longest lifetime browsers keep

  function system() {
    const hint = navigator.userAgentData && navigator.userAgentData.platform;
    const text = String(hint || navigator.platform || "").toLowerCase();
    const families = [
      ["android", /android/], ["ios", /iphone|ipad|ipod|ios/], ["mac", /mac/],
      ["windows", /win/], ["chromeos", /cros|chrome os/], ["linux", /linux|x11|bsd/],
    ];
    for (const [family, pattern] of families) if (pattern.test(text)) return family;
    return "other";
  }

  function bucket(value, edges) { // the smallest edge at or above value; "+" above the last
    if (typeof value !== "number" || !(value > 0)) return "?";
    for (const edge of edges) if (value <= edge) return String(edge);
    return "+";
  }

  const attributes = [
    "sessionward-device/1",
    location.origin,
    system(),
    bucket(navigator.hardwareConcurrency, [2, 4, 8, 16]),
    bucket(navigator.deviceMemory, [2, 4, 8]),
    navigator.maxTouchPoints > 0 ? "touch" : "no-touch",
  ];

  const b64 = (bytes) =>
    btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

  crypto.subtle.digest("SHA-256", new TextEncoder().encode(attributes.join("\n"))).then(
    (digest) => {
      const value = b64(new Uint8Array(digest).slice(0, 16));
      const current = document.cookie.split("; ").find((c) => c.startsWith(NAME + "="));
      if (current === NAME + "=" + value) return;
      document.cookie = `${NAME}=${value}; Path=/; Secure; SameSite=Lax; Max-Age=${MAX_AGE}`;
    },
    () => {},
  );
})();
