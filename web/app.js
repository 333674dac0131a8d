// The liveness page: start screen -> camera -> the server's steps, one frame at a time -> verdict.
// Everything the API says is decided on the server; this page only shows it and sends camera frames.
//
// Frame pace: one request in flight at a time, never faster than one frame every MIN_INTERVAL_MS. The
// next frame waits so that the frames left for the current step (stepMaxFrames when the server sets it,
// otherwise the session's remaining frames shared by the remaining steps) last for the step's remaining
// time, capped at MAX_INTERVAL_MS so coaching stays lively. A frame's own round trip counts in the wait.

import { ApiError, LivenessClient, NetworkError } from "./liveness-client.js";
import { CognitoAuth } from "./auth.js";

const MIN_INTERVAL_MS = 300;
const MAX_INTERVAL_MS = 1500;
const NETWORK_BACKOFF_MS = [1000, 2000, 4000, 8000, 8000, 8000];
const DEFAULT_RETRY_AFTER_S = 2;
const TERMINAL = new Set(["PASSED", "FAILED", "EXPIRED"]);

// Direction cues, in the mirrored preview: turning to your own left moves your reflection to the left.
const CUES = {
  LOOK_STRAIGHT: { cls: "center", glyph: "◎" },
  TURN_LEFT: { cls: "left", glyph: "←" },
  TURN_RIGHT: { cls: "right", glyph: "→" },
  LOOK_UP: { cls: "up", glyph: "↑" },
  LOOK_DOWN: { cls: "down", glyph: "↓" },
  SMILE: { cls: "center", glyph: "☺" },
  OPEN_MOUTH: { cls: "center", glyph: "◯" },
  CLOSE_EYES: { cls: "center", glyph: "◡ ◡" },
};

const POSE_COACHING = {
  LOOK_STRAIGHT: "Look straight at the camera, with your head level.",
  TURN_LEFT: "Turn your head a little further to your left, keeping it level.",
  TURN_RIGHT: "Turn your head a little further to your right, keeping it level.",
  LOOK_UP: "Tilt your chin up a little further, without turning.",
  LOOK_DOWN: "Tilt your chin down a little further, without turning.",
};

const COACHING = {
  NO_FACE: "We cannot see a face. Centre your face in the oval.",
  MULTIPLE_FACES: "Only one person should be in view.",
  LOW_CONFIDENCE: "Your face is not clear. Face the camera in good light.",
  FACE_TOO_SMALL: "Move closer to the camera.",
  LOW_QUALITY: "The picture is too dark or blurry. Add more light and hold still.",
  FACE_OCCLUDED: "Something covers your face. Move hands, hair or a mask away.",
  SUNGLASSES: "Please take off your sunglasses.",
  EXPRESSION_NOT_MET: "Face the camera and make the expression a little more clearly.",
  NOT_LOOKING_STRAIGHT: "Look straight at the camera, with your head level and a neutral face.",
  FLAT_FACE: "Move your head itself, slowly, with your whole face in view.",
  PREVIOUS_STEP_HELD: "Return to looking straight, then do only the new instruction.",
  REPEATED_FRAME: "The camera picture did not change. Check that your camera is working.",
  STEP_ALREADY_COMPLETED: "That step is done. Follow the new instruction.",
  FACE_NOT_COMPARABLE: "Good. Now do the same movement a little less far.",
  FACE_MISMATCH: "The face in view changed during the check.",
};

const FAILURES = {
  STEP_TIMEOUT: "A step was not completed in time.",
  ATTEMPT_LIMIT: "The check used all of its pictures before every step was completed.",
  FACE_MISMATCH: "The face changed during the check, so it could not be confirmed as one person.",
  SAME_PERSON_UNVERIFIED: "Your face could not be matched with the start of the check at the angles shown.",
  SESSION_EXPIRED: "The check ran out of time.",
};

const CAMERA_PROBLEMS = {
  denied: [
    "Camera access is blocked",
    "This page needs your camera. Allow camera access for this site (the camera icon in the address bar, or the " +
      "browser's site settings), then choose Try again.",
  ],
  none: [
    "No camera found",
    "No camera was found. Connect a camera, or turn it on in your system settings, then choose Try again.",
  ],
  busy: [
    "The camera is in use",
    "Another app is using your camera, for example a video call. Close it, then choose Try again.",
  ],
  insecure: [
    "This page is not secure",
    "Browsers only allow the camera on secure pages. Open this page with https:// (or on localhost).",
  ],
  unsupported: [
    "This browser cannot use the camera",
    "Please open this page in a recent version of Firefox, Chrome, Edge or Safari.",
  ],
};

const $ = (id) => document.getElementById(id);

const state = {
  client: null,
  auth: null,
  run: null, // the current attempt: {cancelled, session, ...}; a new object for each attempt
  stream: null,
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
// Camera

function cameraProblemOf(error) {
  switch (error && error.name) {
    case "NotAllowedError":
    case "PermissionDeniedError":
    case "SecurityError":
      return "denied";
    case "NotFoundError":
    case "DevicesNotFoundError":
    case "OverconstrainedError":
      return "none";
    case "NotReadableError":
    case "TrackStartError":
    case "AbortError":
      return "busy";
    default:
      return "unsupported";
  }
}

async function openCamera(deviceId) {
  const video = deviceId
    ? { deviceId: { exact: deviceId }, width: { ideal: 640 }, height: { ideal: 480 } }
    : { facingMode: "user", width: { ideal: 640 }, height: { ideal: 480 } };
  const stream = await navigator.mediaDevices.getUserMedia({ video, audio: false });
  stopCamera();
  state.stream = stream;
  const element = $("video");
  element.srcObject = stream;
  await element.play().catch(() => {});
  await fillCameraPicker(stream);
}

async function fillCameraPicker(stream) {
  const devices = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "videoinput");
  const select = $("camera-select");
  const current = stream.getVideoTracks()[0]?.getSettings().deviceId;
  select.replaceChildren(
    ...devices.map((device, index) => {
      const option = new Option(device.label || `Camera ${index + 1}`, device.deviceId);
      option.selected = device.deviceId === current;
      return option;
    }),
  );
  $("camera-picker").hidden = devices.length < 2;
}

function stopCamera() {
  if (state.stream) for (const track of state.stream.getTracks()) track.stop();
  state.stream = null;
  const video = $("video");
  if (video) video.srcObject = null;
}

function captureFrame(size) {
  const video = $("video");
  if (!video.videoWidth) return null;
  const canvas = $("canvas");
  const width = size.recommendedWidth || 640;
  const height = size.recommendedHeight || 480;
  canvas.width = width;
  canvas.height = height;
  // Cover the canvas with the camera picture, unmirrored (the session says mirrored: false).
  const scale = Math.max(width / video.videoWidth, height / video.videoHeight);
  const w = video.videoWidth * scale;
  const h = video.videoHeight * scale;
  canvas.getContext("2d").drawImage(video, (width - w) / 2, (height - h) / 2, w, h);
  return canvas.toDataURL("image/jpeg", 0.85);
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

function coachingFor(answer, step) {
  if (answer.verdict === "ACCEPTED") return "Good.";
  const code = answer.reasonCode;
  if (code === "POSE_NOT_MET" && step) return POSE_COACHING[step.code] || answer.message || "Follow the instruction a little further.";
  return COACHING[code] || answer.message || "Follow the instruction on screen.";
}

/** Seconds left for the current step, as far as this page can tell (the server's clock decides). */
function secondsLeft(run) {
  const { session } = run;
  const now = Date.now();
  const stepLeft = run.stepStartedAt
    ? session.stepTimeLimitSeconds - (now - run.stepStartedAt) / 1000
    : session.stepTimeLimitSeconds;
  return Math.min(stepLeft, (run.deadline - now) / 1000);
}

function tick(run) {
  const left = Math.max(0, Math.ceil(secondsLeft(run)));
  $("time-left").textContent = `${left} s left for this step`;
}

function frameBudget(run) {
  const { session } = run;
  const framesLeft = Math.max(0, session.maxFrames - run.framesSent);
  const stepsLeft = Math.max(1, session.steps.length - run.current);
  let budget = Math.floor(framesLeft / stepsLeft);
  if (session.stepMaxFrames) budget = Math.min(framesLeft, session.stepMaxFrames - run.stepFrames);
  return Math.max(1, budget);
}

function nextInterval(run) {
  const elapsed = run.stepStartedAt ? (Date.now() - run.stepStartedAt) / 1000 : 0;
  const stepLeftMs = Math.max(0, (run.session.stepTimeLimitSeconds - elapsed) * 1000);
  return Math.min(MAX_INTERVAL_MS, Math.max(MIN_INTERVAL_MS, stepLeftMs / frameBudget(run)));
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
        if (failures >= NETWORK_BACKOFF_MS.length) throw error;
        waitMs = NETWORK_BACKOFF_MS[failures++];
        $("connection").textContent = `Connection lost. Retrying in ${Math.round(waitMs / 1000)} s…`;
      } else if (error instanceof ApiError && error.retryable) {
        waitMs = (error.retryAfterSeconds ?? DEFAULT_RETRY_AFTER_S) * 1000;
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
      if (secondsLeft(run) <= 0) return finishFromServer(run);
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
    await sleep(Math.max(0, nextInterval(run) - (Date.now() - started)), run);
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
