// The liveness API from a browser: its calls (sessions, frames, the light step) and typed errors. No dependencies, no DOM:
// lift this file into a React or Vue app as it is. The UI in app.js is one user of it.

/**
 * @typedef {Object} Step
 * @property {number} index
 * @property {string} code         e.g. "LOOK_STRAIGHT", "TURN_LEFT", "SMILE"; unknown codes may appear
 * @property {string} instruction  what to tell the person, in plain words
 */

/**
 * @typedef {Object} CreatedSession
 * @property {string} sessionId
 * @property {"IN_PROGRESS"} status
 * @property {Step[]} steps
 * @property {number} currentStep
 * @property {string} expiresAt              ISO 8601, server clock
 * @property {number} stepTimeLimitSeconds   each step's limit; its timer starts with its first frame
 * @property {number} maxFrames              analysed frames allowed in the whole session
 * @property {number} [stepMaxFrames]        frames allowed per step, when the server sets one
 * @property {boolean} mirrored
 * @property {{formats: string[], maxBytes: number, recommendedWidth: number, recommendedHeight: number}} frameConstraints
 */

/**
 * @typedef {"IN_PROGRESS"|"PASSED"|"FAILED"|"EXPIRED"} SessionStatus
 */

/**
 * @typedef {Object} FrameAnswer
 * @property {"ACCEPTED"|"REJECTED"} verdict
 * @property {string|null} reasonCode     why the frame missed the step (coach the person with it)
 * @property {string|null} message        the server's coaching sentence
 * @property {number} stepIndex           the step this frame was judged against
 * @property {number} currentStep         the step to show now
 * @property {Object<string, number|null>} measured
 * @property {SessionStatus} status
 * @property {string|null} failureReason  STEP_TIMEOUT, ATTEMPT_LIMIT, FACE_MISMATCH, SESSION_EXPIRED, LIGHT_NOT_FOLLOWED, LIGHT_UNVERIFIED...
 * @property {Object|null} sessionVerdict
 */

/**
 * @typedef {Object} SessionState
 * @property {string} sessionId
 * @property {SessionStatus} status
 * @property {string|null} failureReason
 * @property {number} currentStep
 * @property {{base64: string, contentType: string, key: string}|null} referenceFace  set when PASSED
 */

/**
 * @typedef {Object} LightChallenge
 * @property {string} challengeId
 * @property {{color: string, durationMs: number}[]} colors  "#rrggbb", shown in order, the first at once
 * @property {number[]} captureOffsetsMs  within each colour: >= 0 from its start, < 0 from its end
 * @property {number} frameWidth
 * @property {number} frameHeight
 * @property {string} submitBy            ISO 8601, server clock
 * @property {number} attempt
 * @property {number} maxAttempts
 */

/**
 * @typedef {Object} LightFrame
 * @property {string} image       a data URL (data:image/jpeg;base64,...), frameWidth x frameHeight
 * @property {number} colorIndex
 * @property {number} offsetMs    one of captureOffsetsMs
 */

/** The API answered with its error shape `{code, message, requestId}`. */
export class ApiError extends Error {
  /**
   * @param {number} status HTTP status
   * @param {string} code   stable machine code, e.g. "SESSION_CLOSED", "THROTTLED", "UNAUTHORIZED"
   * @param {string} message
   * @param {number|null} retryAfterSeconds from Retry-After, when the server sent one
   */
  constructor(status, code, message, retryAfterSeconds = null) {
    super(message || code);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.retryAfterSeconds = retryAfterSeconds;
  }

  /**
   * True for answers worth repeating after a pause: 429, 502, 503, 504 and a 409 CONFLICT. Not a user locked
   * after too many failed checks (429 TOO_MANY_ATTEMPTS): its Retry-After is hours, no pause to wait out.
   */
  get retryable() {
    if (this.code === "TOO_MANY_ATTEMPTS") return false;
    return this.status === 429 || this.unavailable || (this.status === 409 && this.code === "CONFLICT");
  }

  /** The service (or the gateway in front of it) is down or failing for now: 502, 503, 504. */
  get unavailable() {
    return this.status === 502 || this.status === 503 || this.status === 504;
  }
}

/** The request never got an answer: offline, DNS, CORS refusal, server down. Safe to retry later. */
export class NetworkError extends Error {
  /** @param {unknown} cause */
  constructor(cause) {
    super("The liveness service could not be reached.");
    this.name = "NetworkError";
    this.cause = cause;
  }
}

export class LivenessClient {
  /**
   * @param {Object} options
   * @param {string} [options.baseUrl]  the API's URL ("" = same origin, as in `make run`)
   * @param {() => (string|null|Promise<string|null>)} [options.getToken]  the Cognito ID token, if any
   * @param {typeof fetch} [options.fetch]
   */
  constructor({ baseUrl = "", getToken = () => null, fetch: fetchImpl } = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.getToken = getToken;
    this.fetch = fetchImpl || globalThis.fetch.bind(globalThis);
  }

  /**
   * Start a session; the server draws the steps.
   * @param {{excludeExpressions?: boolean, mirrored?: boolean, steps?: number}} [options]
   * @returns {Promise<CreatedSession>}
   */
  createSession(options = {}) {
    return this.request("POST", "/sessions", options);
  }

  /**
   * Send one frame for the session's current step.
   * @param {string} sessionId
   * @param {string} image  a data URL (data:image/jpeg;base64,...)
   * @returns {Promise<FrameAnswer>}
   */
  sendFrame(sessionId, image) {
    return this.request("POST", `/sessions/${encodeURIComponent(sessionId)}/frames`, { image });
  }

  /**
   * Start the light challenge (only while the current step is FOLLOW_LIGHT). The server draws the colours and
   * restarts the step's clock; show them at once, from the first, each for its durationMs.
   * @param {string} sessionId
   * @returns {Promise<LightChallenge>}
   */
  startLight(sessionId) {
    return this.request("POST", `/sessions/${encodeURIComponent(sessionId)}/light`, {});
  }

  /**
   * Send the light challenge's frames as one batch: one per colour and capture offset, before `submitBy`.
   * @param {string} sessionId
   * @param {{challengeId: string, frames: LightFrame[]}} batch
   * @returns {Promise<FrameAnswer>}  judged as one frame of the FOLLOW_LIGHT step
   */
  sendLightFrames(sessionId, { challengeId, frames }) {
    return this.request("POST", `/sessions/${encodeURIComponent(sessionId)}/light/frames`, { challengeId, frames });
  }

  /**
   * @param {string} sessionId
   * @returns {Promise<SessionState>}
   */
  getSession(sessionId) {
    return this.request("GET", `/sessions/${encodeURIComponent(sessionId)}`);
  }

  /**
   * @param {string} method
   * @param {string} path
   * @param {Object} [body]
   */
  async request(method, path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const token = await this.getToken();
    if (token) headers.Authorization = token;
    let response;
    try {
      response = await this.fetch(this.baseUrl + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "omit",
        cache: "no-store",
      });
    } catch (error) {
      throw new NetworkError(error);
    }
    let payload = null;
    try {
      payload = await response.json();
    } catch {
      payload = null;
    }
    if (!response.ok) {
      const retryAfter = Number.parseInt(response.headers.get("Retry-After") || "", 10);
      throw new ApiError(
        response.status,
        (payload && payload.code) || `HTTP_${response.status}`,
        (payload && payload.message) || response.statusText,
        Number.isFinite(retryAfter) ? retryAfter : null,
      );
    }
    return payload;
  }
}
