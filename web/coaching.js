// The coaching line: quiet for the first second of a step (nobody reacts faster), then changing at most about
// once a second, so a screen reader announces a sentence, not a stream. The newest wish waits its turn.

export const QUIET_START_MS = 1000;
export const MIN_CHANGE_MS = 1000;

/** When the line may next change, from when the step was shown and when the line last changed. */
export function nextChangeAt(stepShownAt, changedAt) {
  return Math.max(stepShownAt + QUIET_START_MS, changedAt + MIN_CHANGE_MS);
}

export class CoachingLine {
  constructor(element) {
    this.element = element;
    this.pending = "";
    this.stepShownAt = 0;
    this.changedAt = 0;
    this.timer = null;
  }

  /** A new instruction is on screen: clear the line and stay quiet for a while. */
  newStep(now = Date.now()) {
    this.stepShownAt = now;
    this.stop();
  }

  say(text, now = Date.now()) {
    this.pending = text;
    clearTimeout(this.timer);
    if (this.pending === this.element.textContent) return;
    const due = nextChangeAt(this.stepShownAt, this.changedAt);
    if (now >= due) this.show(this.pending);
    else this.timer = setTimeout(() => this.say(this.pending), due - now);
  }

  /** Straight away, past the quiet time: for a step just done, which the person should hear about at once. */
  show(text) {
    clearTimeout(this.timer);
    this.pending = text;
    this.element.textContent = text;
    this.changedAt = Date.now();
  }

  stop() {
    clearTimeout(this.timer);
    this.pending = "";
    this.element.textContent = "";
  }
}
