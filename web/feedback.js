// What a person can hear or feel when a step is accepted: a short tone (Web Audio, no sound file) and a
// vibration where the device has one. The sound setting is remembered in this browser, on by default.

const STORAGE_KEY = "liveness.sound";
const TONE_HZ = 880;
const TONE_S = 0.25;
const VIBRATE_MS = 80;

let audio = null;

export function soundOn() {
  try {
    return localStorage.getItem(STORAGE_KEY) !== "off";
  } catch {
    return true;
  }
}

export function setSound(on) {
  try {
    localStorage.setItem(STORAGE_KEY, on ? "on" : "off");
  } catch {
    // not remembered; the choice still applies until the page is left
  }
}

/** Call from a click (Start, Try again): browsers only let audio start after a gesture. */
export function prepareSound() {
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!soundOn() || !Context) return;
  if (!audio) audio = new Context();
  if (audio.resume) audio.resume().catch(() => {});
}

function tone() {
  prepareSound();
  if (!audio) return;
  const now = audio.currentTime;
  const oscillator = audio.createOscillator();
  const gain = audio.createGain();
  oscillator.frequency.value = TONE_HZ;
  // A soft attack and release: no click, not startling.
  gain.gain.setValueAtTime(0.0001, now);
  gain.gain.exponentialRampToValueAtTime(0.2, now + 0.02);
  gain.gain.exponentialRampToValueAtTime(0.0001, now + TONE_S);
  oscillator.connect(gain);
  gain.connect(audio.destination);
  oscillator.start(now);
  oscillator.stop(now + TONE_S + 0.05);
}

/** A step was accepted: the tone when sound is on, a short vibration wherever the device can. */
export function stepAccepted() {
  if (soundOn()) tone();
  if (typeof navigator.vibrate === "function") navigator.vibrate(VIBRATE_MS);
}
