// The liveness page: start screen -> camera -> the server's steps, one frame at a time -> verdict.
// Everything the API says is decided on the server; this page only shows it and sends camera frames.
// The words live in messages.js, the camera in camera.js, the frame pace in pacing.js.

import { ApiError, LivenessClient, NetworkError } from "./liveness-client.js";
import { CognitoAuth } from "./auth.js";
import { cameraProblemOf, captureFrame, openCamera, stopCamera } from "./camera.js";
import { CAMERA_PROBLEMS, COACHING, CUES, FAILURES, coachingFor } from "./messages.js";
import { MIN_INTERVAL_MS, networkBackoffMs, nextInterval, retryAfterMs, secondsLeft } from "./pacing.js";

const TERMINAL = new Set(["PASSED", "FAILED", "EXPIRED"]);

const $ = (id) => document.getElementById(id);

const state = {
  client: null,
  auth: null,
  run: null, // the current attempt: {cancelled, session, ...}; a new object for each attempt
  timer: null,
};

// ---------------------------------------------------------------------------------------------------------
// Screens

function show(screen) {
  for (const section of document.querySelectorAll(".screen")) section.hidden = section.id !== `screen-${screen}`;
  const heading = document.querySelector(`#screen-${screen} h1`);
  if (heading) heading.focus();
  document.body.dataset.screen = screen;
}

function setStatus(status) {
  if (status) document.body.dataset.livenessStatus = status;
  else delete document.body.dataset.livenessStatus;
}

function problem(title, message, retry = start) {
  stopRun();
  $("problem-title").textContent = title;
  $("problem-message").textContent = message;
  $("problem-retry").onclick = retry;
  show("problem");
}

function sleep(ms, run) {
  return new Promise((resolve) => {
    const handle = setTimeout(resolve, ms);
    if (run) run.wake = () => { clearTimeout(handle); resolve(); };
  });
}

// ---------------------------------------------------------------------------------------------------------
// The challenge

function renderSteps(run) {
  const { steps } = run.session;
  const list = $("steps");
  list.replaceChildren(
    ...steps.map((step, index) => {
      const item = document.createElement("li");
      item.textContent = step.instruction || step.code;
      if (index < run.current) item.className = "done";
      if (index === run.current) {
        item.className = "current";
        item.setAttribute("aria-current", "step");
      }
      return item;
    }),
  );
  const step = steps[Math.min(run.current, steps.length - 1)];
  $("progress").textContent = `Step ${Math.min(run.current + 1, steps.length)} of ${steps.length}`;
  const instruction = $("instruction");
  const text = step.instruction || "Follow the instruction on screen.";
  if (instruction.textContent !== text) instruction.textContent = text;
  const cue = CUES[step.code];
  const element = $("cue");
  element.className = `cue ${cue ? cue.cls : ""}`;
  element.textContent = cue ? cue.glyph : "";
  document.body.dataset.stepCode = step.code;
}

function coach(text) {
  const element = $("coaching");
  if (element.textContent !== text) element.textContent = text;
}

function tick(run) {
  const left = Math.max(0, Math.ceil(secondsLeft(run, Date.now())));
  $("time-left").textContent = `${left} s left for this step`;
}

/** One call with the page's retry rules: Retry-After on 429/503/409 CONFLICT, backoff on network errors. */
async function withRetry(run, call) {
  let failures = 0;
  for (;;) {
    try {
      const result = await call();
      $("connection").textContent = "";
      return result;
    } catch (error) {
      if (run.cancelled) throw error;
      let waitMs;
      if (error instanceof NetworkError) {
        waitMs = networkBackoffMs(failures++);
        if (waitMs === null) throw error;
        $("connection").textContent = `Connection lost. Retrying in ${Math.round(waitMs / 1000)} s…`;
      } else if (error instanceof ApiError && error.retryable) {
        waitMs = retryAfterMs(error.retryAfterSeconds);
        $("connection").textContent = `The service is busy. Continuing in ${Math.round(waitMs / 1000)} s…`;
      } else {
        throw error;
      }
      await sleep(waitMs, run);
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
  stopCamera();
}

async function start(event) {
  if (event) event.preventDefault();
  stopRun();
  setStatus(null);
  const run = { cancelled: false, session: null, current: 0, framesSent: 0, stepFrames: 0, stepStartedAt: 0 };
  state.run = run;

  if (!window.isSecureContext) return problem(...CAMERA_PROBLEMS.insecure);
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return problem(...CAMERA_PROBLEMS.unsupported);

  $("instruction").textContent = "";
  $("coaching").textContent = "";
  $("connection").textContent = "";
  $("steps").replaceChildren();
  $("time-left").textContent = "";
  $("cue").className = "cue";
  $("cue").textContent = "";
  $("progress").textContent = "Starting the camera…";
  show("challenge");
  try {
    await openCamera();
  } catch (error) {
    if (run.cancelled) return;
    return problem(...CAMERA_PROBLEMS[cameraProblemOf(error)]);
  }
  if (run.cancelled) return;

  $("progress").textContent = "Starting the check…";
  try {
    run.session = await withRetry(run, () =>
      state.client.createSession({ excludeExpressions: $("head-only").checked, mirrored: false }),
    );
  } catch (error) {
    if (!run.cancelled) apiProblem(error);
    return;
  }
  if (run.cancelled) return;
  run.current = run.session.currentStep || 0;
  run.deadline = Date.parse(run.session.expiresAt) || Date.now() + 120000;
  setStatus("IN_PROGRESS");
  renderSteps(run);
  tick(run);
  state.timer = setInterval(() => tick(run), 250);
  await frameLoop(run);
}

async function digest(text) {
  const bytes = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function frameLoop(run) {
  const { session } = run;
  const sent = new Set(); // the server refuses the same bytes twice (REPEATED_FRAME): do not spend a frame on them
  while (!run.cancelled) {
    const started = Date.now();
    const image = captureFrame(session.frameConstraints || {});
    const hash = image ? await digest(image) : null;
    if (!image || sent.has(hash)) {
      // No new camera picture (a stalled or ended camera): nothing is sent, so the server cannot say the time
      // ran out. Once it has, ask the server for the verdict instead of waiting here forever.
      if (secondsLeft(run, Date.now()) <= 0) return finishFromServer(run);
      if (image) coach(COACHING.REPEATED_FRAME);
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
      return apiProblem(error);
    }
    if (run.cancelled) return;
    const step = session.steps[answer.stepIndex];
    if (answer.currentStep !== run.current) {
      run.current = answer.currentStep;
      run.stepFrames = 0;
      run.stepStartedAt = Date.now(); // the server starts the next step's clock when it accepts the previous one
      renderSteps(run);
    }
    coach(coachingFor(answer, step));
    if (TERMINAL.has(answer.status)) return finish(run, answer.status, answer.failureReason);
    const now = Date.now();
    await sleep(Math.max(0, nextInterval(run, now) - (now - started)), run);
  }
}

async function finishFromServer(run) {
  try {
    let view = await withRetry(run, () => state.client.getSession(run.session.sessionId));
    // Closed for new frames but not final yet (its last frames are still being judged, or a deadline is about
    // to pass): ask again until the server gives its verdict, which it does by the session's expiry at most.
    while (!TERMINAL.has(view.status) && !run.cancelled) {
      coach("Finishing the check…");
      await sleep(1000, run);
      view = await withRetry(run, () => state.client.getSession(run.session.sessionId));
    }
    if (!run.cancelled) return finish(run, view.status, view.failureReason, view);
  } catch (error) {
    if (!run.cancelled) apiProblem(error);
  }
}

async function finish(run, status, failureReason, view = null) {
  clearInterval(state.timer);
  state.timer = null;
  stopCamera();
  run.current = run.session.steps.length;
  const passed = status === "PASSED";
  const title = $("result-title");
  title.className = passed ? "result-passed" : "result-failed";
  title.textContent = passed ? "Check passed" : status === "EXPIRED" ? "The check expired" : "The check did not pass";
  $("result-reason").textContent = passed
    ? "Thank you. You completed every step."
    : `${FAILURES[failureReason] || "The check could not be completed."} You can try again: find good light, ` +
      "keep your face in the oval and follow each instruction steadily.";
  $("reference").hidden = true;
  setStatus(status);
  show("result");
  if (passed) {
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

function apiProblem(error) {
  if (error instanceof NetworkError) {
    return problem(
      "Cannot reach the service",
      "The liveness service did not answer, even after several tries. Check your internet connection, then choose Try again.",
    );
  }
  if (error instanceof ApiError && (error.status === 401 || error.status === 403) && state.auth) {
    return problem("Please sign in again", "Your sign-in has ended. Sign in again to continue.", () => state.auth.signIn());
  }
  const detail = error instanceof ApiError ? ` (${error.code})` : "";
  return problem("Something went wrong", `The check could not continue${detail}. Please try again.`);
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

async function main() {
  const params = new URLSearchParams(location.search);
  $("head-only").checked = ["1", "true", "yes"].includes((params.get("headMovementsOnly") || "").toLowerCase());
  $("start-form").addEventListener("submit", start);
  $("try-again").addEventListener("click", () => start());
  $("problem-back").addEventListener("click", () => { stopRun(); setStatus(null); show("start"); });
  $("cancel").addEventListener("click", () => { stopRun(); setStatus(null); show("start"); });
  $("camera-select").addEventListener("change", async (event) => {
    try {
      await openCamera(event.target.value);
    } catch (error) {
      problem(...CAMERA_PROBLEMS[cameraProblemOf(error)]);
    }
  });
  window.addEventListener("pagehide", stopRun);

  const config = await loadConfig();
  if (config.retentionDays) $("retention").textContent = `${config.retentionDays} days`;
  if (config.auditRetentionDays) $("audit-retention").textContent = `${config.auditRetentionDays} days`;
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
