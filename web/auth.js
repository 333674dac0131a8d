// Sign-in with Cognito's managed login: the OAuth 2.0 authorization-code flow with PKCE, no library.
// Tokens live in sessionStorage (this tab only, gone when it closes), never in localStorage or cookies.

const TOKENS_KEY = "liveness.tokens";
const PKCE_KEY = "liveness.pkce";

/**
 * @typedef {Object} AuthConfig
 * @property {string} cognitoDomain     e.g. https://my-prefix.auth.eu-west-1.amazoncognito.com
 * @property {string} userPoolClientId
 * @property {string} [redirectUri]     defaults to this page's URL without its query
 */

function base64Url(bytes) {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString(size = 32) {
  return base64Url(crypto.getRandomValues(new Uint8Array(size)));
}

async function challengeOf(verifier) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64Url(new Uint8Array(digest));
}

function pageUrl() {
  return `${location.origin}${location.pathname}`;
}

export class CognitoAuth {
  /** @param {AuthConfig} config */
  constructor(config) {
    this.domain = config.cognitoDomain.replace(/\/+$/, "");
    this.clientId = config.userPoolClientId;
    this.redirectUri = config.redirectUri || pageUrl();
  }

  /** @returns {string|null} the ID token, while it is valid */
  idToken() {
    const raw = sessionStorage.getItem(TOKENS_KEY);
    if (!raw) return null;
    try {
      const tokens = JSON.parse(raw);
      if (Date.now() < tokens.expiresAt - 30000) return tokens.idToken;
    } catch {
      // fall through: a damaged entry is dropped
    }
    sessionStorage.removeItem(TOKENS_KEY);
    return null;
  }

  /** Go to the managed login page; the page comes back with ?code=...&state=... */
  async signIn() {
    const verifier = randomString(48);
    const state = randomString(16);
    // The URL's query (e.g. ?headMovementsOnly=1) is restored after sign-in.
    sessionStorage.setItem(PKCE_KEY, JSON.stringify({ verifier, state, search: location.search }));
    const query = new URLSearchParams({
      response_type: "code",
      client_id: this.clientId,
      redirect_uri: this.redirectUri,
      scope: "openid email",
      state,
      code_challenge_method: "S256",
      code_challenge: await challengeOf(verifier),
    });
    location.assign(`${this.domain}/oauth2/authorize?${query}`);
  }

  /**
   * On the way back from the login page: trade the code for tokens, then clean the URL.
   * @returns {Promise<boolean>} true when this page load was a sign-in callback
   */
  async handleRedirect() {
    const params = new URLSearchParams(location.search);
    const code = params.get("code");
    if (!code && !params.get("error")) return false;
    const saved = JSON.parse(sessionStorage.getItem(PKCE_KEY) || "{}");
    sessionStorage.removeItem(PKCE_KEY);
    history.replaceState(null, "", pageUrl() + (saved.search || ""));
    if (!code || !saved.verifier || params.get("state") !== saved.state) {
      throw new Error("The sign-in did not complete. Please sign in again.");
    }
    const response = await fetch(`${this.domain}/oauth2/token`, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "authorization_code",
        client_id: this.clientId,
        code,
        redirect_uri: this.redirectUri,
        code_verifier: saved.verifier,
      }),
    });
    if (!response.ok) throw new Error("The sign-in could not be completed. Please sign in again.");
    const tokens = await response.json();
    sessionStorage.setItem(
      TOKENS_KEY,
      JSON.stringify({ idToken: tokens.id_token, expiresAt: Date.now() + tokens.expires_in * 1000 }),
    );
    return true;
  }

  /** Forget the tokens here and end the managed-login session too. */
  signOut() {
    sessionStorage.removeItem(TOKENS_KEY);
    const query = new URLSearchParams({ client_id: this.clientId, logout_uri: this.redirectUri });
    location.assign(`${this.domain}/logout?${query}`);
  }
}
