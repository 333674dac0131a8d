// Frame pace: one request in flight at a time, never faster than one frame every MIN_INTERVAL_MS. The
// next frame waits so that the frames left for the current step (stepMaxFrames when the server sets it,
// otherwise the session's remaining frames shared by the remaining steps) last for the step's remaining
// time, capped at MAX_INTERVAL_MS so coaching stays lively. A frame's own round trip counts in the wait.
//
// Pure arithmetic on a run ({session, current, framesSent, stepFrames, stepStartedAt, deadline}) and the time
// `now` (ms since the epoch), so it can be checked without a browser.

export const MIN_INTERVAL_MS = 300;
export const MAX_INTERVAL_MS = 1500;
// Short first waits: an outage of a few seconds is over before the step's clock (which runs on the server) is.
const NETWORK_BACKOFF_MS = [1000, 1000, 2000, 2000, 4000, 8000, 8000];
const DEFAULT_RETRY_AFTER_S = 2;

/** Seconds left for the current step, as far as this page can tell (the server's clock decides). */
export function secondsLeft(run, now) {
  const { session } = run;
  const stepLeft = run.stepStartedAt
    ? session.stepTimeLimitSeconds - (now - run.stepStartedAt) / 1000
    : session.stepTimeLimitSeconds;
  return Math.min(stepLeft, (run.deadline - now) / 1000);
}

/** How many more frames the current step may use (at least one). */
export function frameBudget(run) {
  const { session } = run;
  const framesLeft = Math.max(0, session.maxFrames - run.framesSent);
  const stepsLeft = Math.max(1, session.steps.length - run.current);
  let budget = Math.floor(framesLeft / stepsLeft);
  if (session.stepMaxFrames) budget = Math.min(framesLeft, session.stepMaxFrames - run.stepFrames);
  return Math.max(1, budget);
}

/** The time from one frame's start to the next's, spreading the step's budget over its remaining time. */
export function nextInterval(run, now) {
  const elapsed = run.stepStartedAt ? (now - run.stepStartedAt) / 1000 : 0;
  const stepLeftMs = Math.max(0, (run.session.stepTimeLimitSeconds - elapsed) * 1000);
  return Math.min(MAX_INTERVAL_MS, Math.max(MIN_INTERVAL_MS, stepLeftMs / frameBudget(run)));
}

/** The wait before retrying after network failure number `failures` (from 0), or null once retries are spent. */
export function networkBackoffMs(failures) {
  return failures < NETWORK_BACKOFF_MS.length ? NETWORK_BACKOFF_MS[failures] : null;
}

/** The wait the server asked for (Retry-After), or the default when it named none. */
export function retryAfterMs(retryAfterSeconds) {
  return (retryAfterSeconds ?? DEFAULT_RETRY_AFTER_S) * 1000;
}
