// Handing a passed check back to the app that opened or framed this page: a postMessage to window.opener or
// window.parent, addressed only to the origins config.json allows (never "*"), and an optional ?returnUrl=
// followed only when its origin is on the same allow-list. The receiving app confirms the result with the API
// (GET /sessions/{id}): the page's word is a hint, the server's record is the verdict.

/** The allow-listed origins from config.json's `returnOrigins`. */
export function allowedOrigins(config) {
  return (config.returnOrigins || []).filter((origin) => typeof origin === "string" && origin.startsWith("http"));
}

/** The returnUrl as a URL when it is absolute http(s) on an allowed origin, else null. */
export function safeReturnUrl(raw, origins) {
  if (!raw) return null;
  let url;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  if (!["https:", "http:"].includes(url.protocol) || !origins.includes(url.origin)) return null;
  return url;
}

export function returnUrlOf(config) {
  return safeReturnUrl(new URLSearchParams(location.search).get("returnUrl"), allowedOrigins(config));
}

/** Tell the embedding app, then go back to it when asked to. True when the page is leaving. */
export function handBack(config, sessionId, status) {
  const message = { type: "liveness-result", sessionId, status };
  const target = window.opener || (window.parent !== window ? window.parent : null);
  // A message to an origin the target does not have is dropped by the browser, so each allowed one is tried.
  if (target) for (const origin of allowedOrigins(config)) target.postMessage(message, origin);
  const url = returnUrlOf(config);
  if (!url) return false;
  url.searchParams.set("sessionId", sessionId);
  url.searchParams.set("status", status);
  location.assign(url.href);
  return true;
}
