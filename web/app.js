// The liveness page: start screen -> camera -> get ready -> the server's steps, one frame at a time -> verdict.
// Everything the API says is decided on the server; this page only shows it and sends camera frames.
// Words: i18n.js + i18n/*.json (messages.js maps codes to keys); camera.js; pacing.js (frame pace and retry
// waits); coaching.js (when the coaching line may change); feedback.js (tone, vibration); embed.js (handing
// a passed check back); light.js (the light step, FOLLOW_LIGHT); screens.js.

import { ApiError, LivenessClient, NetworkError } from "./liveness-client.js";
import { CognitoAuth } from "./auth.js";
import { cameraProblemOf, captureFrame, openCamera, stopCamera } from "./camera.js";
import { CoachingLine } from "./coaching.js";
import { handBack, returnUrlOf } from "./embed.js";
import { prepareSound, setSound, soundOn, stepAccepted } from "./feedback.js";
import { fillStrong, language, onLanguageChange, preferredLanguage, setLanguage, t } from "./i18n.js";
import { hideLight, lightAttempt } from "./light.js";
import { CUES, coachingFor, failureFor, instructionFor } from "./messages.js";
import { MIN_INTERVAL_MS, networkBackoffMs, nextInterval, retryAfterMs, secondsLeft } from "./pacing.js";
import { renderProblem, setStatus, show } from "./screens.js";

const TERMINAL = new Set(["PASSED", "FAILED", "EXPIRED"]);
const GET_READY_MS = 1500; // the camera's exposure settles and the person reads the first instruction
const SUCCESS_MS = 600; // the oval shows a step done before the next instruction
// Failures a lost connection can cause: the server's clock ran on while the page could not reach it.
const CLOCK_FAILURES = new Set(["STEP_TIMEOUT", "SESSION_EXPIRED", undefined, null]);
const LIGHT_STEP = "FOLLOW_LIGHT";

const $ = (id) => document.getElementById(id);

const state = {
  client: null,
  auth: null,
  config: {},
  run: null, // the current attempt: {cancelled, session, ...}; a new object for each attempt
  timer: null,
  coaching: null,
  redraw: () => {}, // rewrites the current screen's words after a language switch
};

function sleep(ms, run) {
  return new Promise((resolve) => {
    const handle = setTimeout(resolve, ms);
    if (run) run.wake = () => { clearTimeout(handle); resolve(); };
  });
}

function problem(key, { code = null, lead = null, retry = () => start(), status = "PROBLEM" } = {}) {
  stopRun();
  const draw = () => renderProblem({ key, code, lead });
  draw();
  state.redraw = draw;
  $("problem-retry").onclick = retry;
  setStatus(status);
  show("problem");
}

// ---------------------------------------------------------------------------------------------------------
// The challenge

function renderSteps(run) {
  const { steps } = run.session;
  $("steps").replaceChildren(
    ...steps.map((step, index) => {
      const item = document.createElement("li");
      item.textContent = instructionFor(step);
      if (index < run.current) item.className = "done";
      if (index === run.current) {
        item.className = "current";
        item.setAttribute("aria-current", "step");
      }
      return item;
    }),
  );
  const step = steps[Math.min(run.current, steps.length - 1)];
  $("progress").textContent = t("ui.stepOf", { i: Math.min(run.current + 1, steps.length), n: steps.length });
  $("instruction").textContent = instructionFor(step);
  const cue = CUES[step.code];
  $("cue").className = `cue ${cue ? cue.cls : ""}`;
  $("cue").textContent = cue ? cue.glyph : "";
  document.body.dataset.stepCode = step.code;
}

function tick(run) {
  if (run.offline) {
    $("time-left").textContent = t("ui.timePaused");
    return;
  }
  if (!run.stepStartedAt && run.gettingReady) return;
  const left = Math.max(0, Math.ceil(secondsLeft(run, Date.now())));
  $("time-left").textContent = t("ui.timeLeft", { s: left });
}

/** The retry wait, counted down on screen each second; announced once, not at every second. */
async function countdown(run, waitMs, key) {
  const until = Date.now() + waitMs;
  $("connection-live").textContent = t(key, { s: Math.ceil(waitMs / 1000) });
  for (let left = waitMs; left > 0 && !run.cancelled; left = until - Date.now()) {
    $("connection").textContent = t(key, { s: Math.ceil(left / 1000) });
    await sleep(Math.min(1000, left), run);
  }
}

/** While the page cannot reach the service: the countdown pauses, the coaching stops; this step is marked. */
function connectionLost(run) {
  run.offline = true;
  run.outageInStep = true;
  state.coaching.stop();
  tick(run);
}

/**
 * One call with the page's retry rules: network errors and 502/503/504 with back-off (or the Retry-After the
 * server named), 429 and 409 CONFLICT after Retry-After. Other errors go to the caller.
 */
async function withRetry(run, call, { retryConflict = true } = {}) {
  let failures = 0;
  for (;;) {
    try {
      const result = await call();
      run.offline = false;
      $("connection").textContent = "";
      $("connection-live").textContent = "";
      return result;
    } catch (error) {
      if (run.cancelled) throw error;
      const outage = error instanceof NetworkError || (error instanceof ApiError && error.unavailable);
      let waitMs;
      let key;
      if (outage) {
        const backoff = networkBackoffMs(failures++);
        if (backoff === null) throw error;
        waitMs = error.retryAfterSeconds != null ? retryAfterMs(error.retryAfterSeconds) : backoff;
        key = error instanceof NetworkError ? "ui.connectionLost" : "ui.serviceDown";
      } else if (error instanceof ApiError && error.retryable && (retryConflict || error.status !== 409)) {
        waitMs = retryAfterMs(error.retryAfterSeconds);
        key = "ui.serverBusy";
      } else {
        throw error;
      }
      connectionLost(run);
      await countdown(run, waitMs, key);
      if (run.cancelled) throw error;
    }
  }
}

function stopRun() {
  if (state.run) {
    state.run.cancelled = true;
    if (state.run.wake) state.run.wake();
  }
  state.run = null;
  clearInterval(state.timer);
  state.timer = null;
  if (state.coaching) state.coaching.stop();
  hideLight();
  stopCamera();
}

function clearChallenge() {
  for (const id of ["instruction", "connection", "connection-live", "time-left", "cue"]) $(id).textContent = "";
  $("steps").replaceChildren();
  $("cue").className = "cue";
  $("preview").classList.remove("success");
  state.coaching.stop();
}

async function start({ headOnly = $("head-only").checked } = {}) {
  stopRun();
  prepareSound(); // inside the click: browsers allow audio only after a gesture
  setStatus(null);
  const run = { cancelled: false, session: null, current: 0, framesSent: 0, stepFrames: 0, stepStartedAt: 0, headOnly };
  state.run = run;

  if (!window.isSecureContext) return problem("camera.insecure");
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return problem("camera.unsupported");

  clearChallenge();
  $("progress").textContent = t("ui.startingCamera");
  state.redraw = () => (run.session ? renderSteps(run) : null);
  show("challenge");
  try {
    await openCamera();
  } catch (error) {
    if (run.cancelled) return;
    return problem(`camera.${cameraProblemOf(error)}`);
  }
  if (run.cancelled) return;

  $("progress").textContent = t("ui.startingCheck");
  try {
    run.session = await withRetry(run, () => state.client.createSession({ excludeExpressions: headOnly, mirrored: false }));
  } catch (error) {
    if (!run.cancelled) apiProblem(error);
    return;
  }
  if (run.cancelled) return;
  run.current = run.session.currentStep || 0;
  run.deadline = Date.parse(run.session.expiresAt) || Date.now() + 120000;
  setStatus("IN_PROGRESS");
  renderSteps(run);
  // Get ready: the first step's clock starts on the server with the first frame, so this wait costs nothing.
  run.gettingReady = true;
  $("time-left").textContent = t("ui.getReady");
  await sleep(GET_READY_MS, run);
  if (run.cancelled) return;
  run.gettingReady = false;
  state.coaching.newStep();
  tick(run);
  state.timer = setInterval(() => tick(run), 250);
  await frameLoop(run);
}

async function digest(text) {
  const bytes = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A step was accepted: the oval turns to its done state, a tone and a vibration, then a short pause. */
async function celebrate(run) {
  $("preview").classList.add("success");
  state.coaching.show(t("ui.stepDone"));
  stepAccepted();
  await sleep(SUCCESS_MS, run);
  $("preview").classList.remove("success");
}

async function frameLoop(run) {
  const { session } = run;
  const sent = new Set(); // the server refuses the same bytes twice (REPEATED_FRAME): do not spend a frame on them
  while (!run.cancelled) {
    const started = Date.now();
    if (session.steps[run.current]?.code === LIGHT_STEP) {
      const answer = await lightStep(run);
      if (answer === undefined) return; // the step ended the run (a problem or the server's verdict)
      if (answer && (await handleAnswer(run, answer))) return;
      continue;
    }
    const image = captureFrame(session.frameConstraints || {});
    const hash = image ? await digest(image) : null;
    if (!image || sent.has(hash)) {
      // No new camera picture (a stalled or ended camera): nothing is sent, so the server cannot say the time
      // ran out. Once it has, ask the server for the verdict instead of waiting here forever.
      if (secondsLeft(run, Date.now()) <= 0) return finishFromServer(run);
      if (image) state.coaching.say(t("coaching.REPEATED_FRAME"));
      await sleep(image ? MIN_INTERVAL_MS : 200, run);
      continue;
    }
    sent.add(hash);
    let answer;
    try {
      answer = await withRetry(run, () => {
        if (!run.stepStartedAt) run.stepStartedAt = Date.now();
        run.framesSent += 1;
        run.stepFrames += 1;
        return state.client.sendFrame(session.sessionId, image);
      });
    } catch (error) {
      if (run.cancelled) return;
      if (error instanceof ApiError && error.code === "SESSION_CLOSED") return finishFromServer(run);
      return apiProblem(error, run);
    }
    if (run.cancelled) return;
    if (await handleAnswer(run, answer)) return;
    const now = Date.now();
    await sleep(Math.max(0, nextInterval(run, now) - (now - started)), run);
  }
}

/** A frame answer (or a light batch's): celebrate, finish, move on or coach. True when the run is over. */
async function handleAnswer(run, answer) {
  const step = run.session.steps[answer.stepIndex];
  const accepted = answer.verdict === "ACCEPTED" && (answer.currentStep !== run.current || answer.status === "PASSED");
  if (accepted) {
    run.stepStartedAt = Date.now(); // the server starts the next step's clock when it accepts the previous one
    await celebrate(run);
    if (run.cancelled) return true;
  }
  if (TERMINAL.has(answer.status)) {
    finish(run, answer.status, answer.failureReason, answer.currentStep);
    return true;
  }
  if (answer.currentStep !== run.current) {
    run.current = answer.currentStep;
    run.stepFrames = 0;
    run.outageInStep = false;
    run.lightCoaching = "";
    renderSteps(run);
    state.coaching.newStep();
  } else if (!accepted) {
    const words = coachingFor(answer, step);
    if (step && step.code === LIGHT_STEP) run.lightCoaching = words; // shown before the next attempt's countdown
    state.coaching.say(words);
  }
  return false;
}

/**
 * One attempt at the light step: its answer; null to look again (the server refused the attempt as out of
 * turn, and the session was re-read); undefined when the run ended here.
 */
async function lightStep(run) {
  const { sessionId } = run.session;
  try {
    return await lightAttempt({
      client: state.client,
      sessionId,
      call: (fn) => withRetry(run, fn, { retryConflict: false }),
      isCancelled: () => run.cancelled,
      onRevealed: () => { run.stepStartedAt = Date.now(); run.framesSent += 1; },
      coaching: run.lightCoaching || "",
    });
  } catch (error) {
    if (run.cancelled) return undefined;
    // A challenge already open, expired or not this step's: the session says where it stands now.
    const conflict = error instanceof ApiError && (error.code === "CONFLICT" || error.code === "SESSION_CLOSED");
    if (!conflict || (run.lightConflicts = (run.lightConflicts || 0) + 1) > 3) {
      apiProblem(error, run);
      return undefined;
    }
    const view = await withRetry(run, () => state.client.getSession(sessionId)).catch(() => null);
    if (!view || TERMINAL.has(view.status) || error.code === "SESSION_CLOSED") {
      await finishFromServer(run);
      return undefined;
    }
    if (view.currentStep !== run.current) {
      run.current = view.currentStep;
      renderSteps(run);
    }
    return null;
  }
}

async function finishFromServer(run) {
  try {
    let view = await withRetry(run, () => state.client.getSession(run.session.sessionId));
    // Closed for new frames but not final yet (its last frames are still being judged, or a deadline is about
    // to pass): ask again until the server gives its verdict, which it does by the session's expiry at most.
    while (!TERMINAL.has(view.status) && !run.cancelled) {
      state.coaching.say(t("ui.finishing"));
      await sleep(1000, run);
      view = await withRetry(run, () => state.client.getSession(run.session.sessionId));
    }
    if (!run.cancelled) return finish(run, view.status, view.failureReason, view.currentStep, view);
  } catch (error) {
    if (!run.cancelled) apiProblem(error, run);
  }
}

function renderResult(run, status, failureReason, failedStep) {
  const passed = status === "PASSED";
  const title = $("result-title");
  title.className = passed ? "result-passed" : "result-failed";
  title.textContent = t(passed ? "ui.passedTitle" : status === "EXPIRED" ? "ui.expiredTitle" : "ui.failedTitle");
  $("result-reason").textContent = passed
    ? t("ui.passedText")
    : `${failureFor(failureReason, failedStep)} ${t("ui.failedAdvice")}`;
  $("done").textContent = t(returnUrlOf(state.config) ? "ui.continue" : "ui.done");
  $("done").hidden = !passed;
  $("try-again").hidden = passed;
  $("head-only-again").hidden = passed || run.headOnly;
  $("result-back").hidden = passed;
  $("result-sent").hidden = true;
}

async function finish(run, status, failureReason, failedIndex, view = null) {
  const outage = run.outageInStep && status !== "PASSED" && CLOCK_FAILURES.has(failureReason);
  clearInterval(state.timer);
  state.timer = null;
  stopCamera();
  if (outage) {
    // The server's clock ran on while the page could not reach it: not the person's doing.
    return problem("problems.connectionEnded", { code: failureReason, status });
  }
  const { steps } = run.session;
  const failedStep = steps[Math.min(failedIndex ?? run.current, steps.length - 1)];
  run.current = steps.length;
  const draw = () => renderResult(run, status, failureReason, failedStep);
  draw();
  state.redraw = draw;
  $("reference").hidden = true;
  $("done").onclick = () => {
    if (!handBack(state.config, run.session.sessionId, status)) $("result-sent").hidden = false;
  };
  setStatus(status);
  show("result");
  if (status === "PASSED") {
    try {
      const full = view || (await withRetry(run, () => state.client.getSession(run.session.sessionId)));
      if (full.referenceFace && full.referenceFace.base64 && !run.cancelled) {
        $("reference-img").src = `data:${full.referenceFace.contentType || "image/jpeg"};base64,${full.referenceFace.base64}`;
        $("reference").hidden = false;
      }
    } catch {
      // the verdict stands; the picture is only a courtesy
    }
  }
}

/** An error that ended the check: the connection, the service, or the sign-in, with the code kept for support. */
function apiProblem(error, run = null) {
  if (error instanceof NetworkError) return problem(run && run.session ? "problems.connectionEnded" : "problems.connection");
  if (error instanceof ApiError && (error.status === 401 || error.status === 403) && state.auth) {
    return problem("problems.signIn", { retry: () => state.auth.signIn() });
  }
  const code = error instanceof ApiError ? error.code : String(error && error.name);
  if (error instanceof ApiError && error.unavailable) return problem("problems.connectionEnded", { code });
  const lead = error instanceof ApiError && t(`errors.${code}`) !== `errors.${code}` ? t(`errors.${code}`) : null;
  return problem("problems.server", { code, lead });
}

// ---------------------------------------------------------------------------------------------------------
// Start-up

async function loadConfig() {
  // Deployed: the stack writes config.json beside this page. Locally (`make run`) there is none, and the API
  // is on this same origin with no sign-in.
  try {
    const response = await fetch("config.json", { cache: "no-store" });
    if (response.ok) return await response.json();
  } catch {
    // no config: local mode
  }
  return {};
}

function renderStart() {
  const { retentionDays = 30, auditRetentionDays = null } = state.config;
  fillStrong($("kept"), "ui.keptText", {
    retention: t("ui.days", { n: retentionDays }),
    auditRetention: auditRetentionDays ? t("ui.days", { n: auditRetentionDays }) : t("ui.years", { n: 5 }),
  });
}

function backToStart(status) {
  stopRun();
  if (status) setStatus(status);
  state.redraw = () => {};
  show("start");
}

function wireControls() {
  $("start-form").addEventListener("submit", (event) => { event.preventDefault(); start(); });
  $("try-again").addEventListener("click", () => start({ headOnly: state.run?.headOnly ?? $("head-only").checked }));
  $("head-only-again").addEventListener("click", () => { $("head-only").checked = true; start({ headOnly: true }); });
  $("result-back").addEventListener("click", () => backToStart());
  $("problem-back").addEventListener("click", () => backToStart());
  $("cancel").addEventListener("click", () => backToStart("CANCELLED"));
  $("sound").checked = soundOn();
  $("sound").addEventListener("change", (event) => setSound(event.target.checked));
  $("language").addEventListener("change", (event) => setLanguage(event.target.value, { remember: true }));
  $("camera-select").addEventListener("change", async (event) => {
    try {
      await openCamera(event.target.value);
    } catch (error) {
      problem(`camera.${cameraProblemOf(error)}`);
    }
  });
  window.addEventListener("pagehide", stopRun);
}

async function main() {
  const params = new URLSearchParams(location.search);
  $("head-only").checked = ["1", "true", "yes"].includes((params.get("headMovementsOnly") || "").toLowerCase());
  state.coaching = new CoachingLine($("coaching"));
  wireControls();
  const [config] = await Promise.all([loadConfig(), setLanguage(preferredLanguage())]);
  state.config = config;
  $("language").value = language();
  onLanguageChange(() => {
    renderStart();
    state.redraw();
  });
  renderStart();
  if (config.cognitoDomain && config.userPoolClientId) {
    state.auth = new CognitoAuth(config);
    try {
      await state.auth.handleRedirect();
    } catch (error) {
      $("sign-in-box").querySelector("p").textContent = error.message;
    }
    const signedIn = Boolean(state.auth.idToken());
    $("sign-in-box").hidden = signedIn;
    $("start").hidden = !signedIn;
    $("account").hidden = !signedIn;
    $("sign-in").addEventListener("click", () => state.auth.signIn());
    $("sign-out").addEventListener("click", () => { stopRun(); state.auth.signOut(); });
  }
  state.client = new LivenessClient({
    baseUrl: config.apiUrl || "",
    getToken: () => (state.auth ? state.auth.idToken() : null),
  });
  show("start");
  document.body.dataset.ready = "true";
}

main();
