// The light step (FOLLOW_LIGHT, issue 19): a 3-2-1 countdown under a neutral grey, then the server's colours
// full-screen, each for its durationMs, with frames taken at the server's capture offsets, sent as one batch.
// The server draws the colours and judges the frames; this file only shows them and takes the pictures.
// The overlay fills the viewport; a small preview with the oval stays on top so the face stays in it.

import { captureFrame } from "./camera.js";
import { t } from "./i18n.js";

const COUNTDOWN_S = 3;
const NEUTRAL = "#808080"; // the countdown's grey: the camera's exposure settles under a middling light

const $ = (id) => document.getElementById(id);

function wait(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function showOverlay(colour) {
  const overlay = $("light-overlay");
  overlay.style.backgroundColor = colour;
  if (overlay.hidden) {
    overlay.hidden = false;
    $("light-video").srcObject = $("video").srcObject;
    $("light-video").play().catch(() => {});
  }
}

export function hideLight() {
  const overlay = $("light-overlay");
  if (!overlay) return;
  overlay.hidden = true;
  overlay.style.backgroundColor = "";
  $("light-video").srcObject = null;
  $("light-count").textContent = "";
  document.body.dataset.light = "";
}

function say(text, count = "") {
  $("light-text").textContent = text;
  const number = $("light-count");
  number.textContent = count;
  // Restart the number's pulse (none under prefers-reduced-motion: see styles.css).
  number.classList.remove("pulse");
  if (count) {
    void number.offsetWidth;
    number.classList.add("pulse");
  }
}

/** When each colour starts and each frame is due, in ms from the first colour. */
export function timeline(challenge) {
  const events = [];
  let start = 0;
  challenge.colors.forEach((colour, colorIndex) => {
    events.push({ at: start, paint: colour.color });
    for (const offsetMs of challenge.captureOffsetsMs) {
      const within = offsetMs >= 0 ? offsetMs : colour.durationMs + offsetMs;
      events.push({ at: start + within, capture: { colorIndex, offsetMs } });
    }
    start += colour.durationMs;
  });
  return { events: events.sort((a, b) => a.at - b.at), totalMs: start };
}

/** Show the colours and take the frames; every event is timed from the first colour, so no delay adds up. */
function playColours(challenge, isCancelled) {
  const size = { recommendedWidth: challenge.frameWidth || 320, recommendedHeight: challenge.frameHeight || 240 };
  const { events, totalMs } = timeline(challenge);
  const frames = [];
  return new Promise((resolve) => {
    const t0 = performance.now();
    const handles = events.map((event) =>
      setTimeout(() => {
        if (isCancelled()) return;
        if (event.paint) {
          showOverlay(event.paint);
          document.body.dataset.light = event.paint;
        } else {
          const image = captureFrame(size);
          if (image) frames.push({ image, ...event.capture });
        }
      }, Math.max(0, event.at - (performance.now() - t0))),
    );
    setTimeout(() => {
      handles.forEach(clearTimeout);
      resolve(frames.sort((a, b) => a.colorIndex - b.colorIndex || b.offsetMs - a.offsetMs));
    }, totalMs);
  });
}

/**
 * One attempt at the light step. `call(fn)` runs an API call with the page's retry rules; `onRevealed()` is
 * called when the server has started the challenge (its clock for the step restarts then); `coaching` is
 * what the last attempt taught, shown during the countdown. Answers the server's frame answer.
 */
export async function lightAttempt({ client, sessionId, call, isCancelled, onRevealed, coaching = "" }) {
  try {
    showOverlay(NEUTRAL);
    document.body.dataset.light = "countdown";
    $("light-instruction").textContent = t("steps.FOLLOW_LIGHT");
    $("light-coaching").textContent = coaching;
    for (let left = COUNTDOWN_S; left > 0; left -= 1) {
      say(t("ui.lightCountdown", { s: left }), String(left));
      await wait(1000);
      if (isCancelled()) return null;
    }
    say(t("ui.lightHold"));
    const challenge = await call(() => client.startLight(sessionId));
    if (isCancelled()) return null;
    onRevealed(challenge);
    $("light-coaching").textContent = "";
    const frames = await playColours(challenge, isCancelled);
    if (isCancelled()) return null;
    showOverlay(NEUTRAL);
    document.body.dataset.light = "checking";
    say(t("ui.lightChecking"));
    return await call(() => client.sendLightFrames(sessionId, { challengeId: challenge.challengeId, frames }));
  } finally {
    hideLight(); // whatever ended the attempt, the page underneath shows again
  }
}
