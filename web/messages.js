// What the page says to the person: step cues, coaching, failure reasons and camera problems.
// Kept apart from the logic so the wording can be reviewed (and checked against the server's codes) in one place.

// Direction cues, in the mirrored preview: turning to your own left moves your reflection to the left.
export const CUES = {
  LOOK_STRAIGHT: { cls: "center", glyph: "◎" },
  TURN_LEFT: { cls: "left", glyph: "←" },
  TURN_RIGHT: { cls: "right", glyph: "→" },
  LOOK_UP: { cls: "up", glyph: "↑" },
  LOOK_DOWN: { cls: "down", glyph: "↓" },
  SMILE: { cls: "center", glyph: "☺" },
  OPEN_MOUTH: { cls: "center", glyph: "◯" },
  CLOSE_EYES: { cls: "center", glyph: "◡ ◡" },
};

export const POSE_COACHING = {
  LOOK_STRAIGHT: "Look straight at the camera, with your head level.",
  TURN_LEFT: "Turn your head a little further to your left, keeping it level.",
  TURN_RIGHT: "Turn your head a little further to your right, keeping it level.",
  LOOK_UP: "Tilt your chin up a little further, without turning.",
  LOOK_DOWN: "Tilt your chin down a little further, without turning.",
};

export const COACHING = {
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

export const FAILURES = {
  STEP_TIMEOUT: "A step was not completed in time.",
  ATTEMPT_LIMIT: "The check used all of its pictures before every step was completed.",
  FACE_MISMATCH: "The face changed during the check, so it could not be confirmed as one person.",
  SAME_PERSON_UNVERIFIED: "Your face could not be matched with the start of the check at the angles shown.",
  SESSION_EXPIRED: "The check ran out of time.",
};

// Each camera problem as [title, message]; camera.js names the problem from the browser's error.
export const CAMERA_PROBLEMS = {
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

/** The coaching line for a frame answer: a head step's own words when the pose fell short. */
export function coachingFor(answer, step) {
  if (answer.verdict === "ACCEPTED") return "Good.";
  const code = answer.reasonCode;
  if (code === "POSE_NOT_MET" && step) return POSE_COACHING[step.code] || answer.message || "Follow the instruction a little further.";
  return COACHING[code] || answer.message || "Follow the instruction on screen.";
}
