// From the server's codes to the person's words. The words live in the catalogues (i18n/<lang>.json); this file
// only picks the key, and draws the direction cues.

import { has, t } from "./i18n.js";

// Direction cues, in the mirrored preview: turning to your own left moves your reflection to the left.
// Expression cues sit at the oval's edge, never over the mouth and nose the analyzer needs to see.
export const CUES = {
  LOOK_STRAIGHT: { cls: "corner", glyph: "◎" },
  TURN_LEFT: { cls: "left", glyph: "←" },
  TURN_RIGHT: { cls: "right", glyph: "→" },
  LOOK_UP: { cls: "up", glyph: "↑" },
  LOOK_DOWN: { cls: "down", glyph: "↓" },
  SMILE: { cls: "corner", glyph: "☺" },
  OPEN_MOUTH: { cls: "corner", glyph: "◯" },
  CLOSE_EYES: { cls: "corner", glyph: "◡ ◡" },
};

/** A step's instruction: the catalogue's, or the server's own words for a code this page does not know. */
export function instructionFor(step) {
  return has(`steps.${step.code}`) ? t(`steps.${step.code}`) : step.instruction || t("ui.followInstruction");
}

/** The coaching line for a frame answer: a step's own words when its movement or expression fell short. */
export function coachingFor(answer, step) {
  if (answer.verdict === "ACCEPTED") return t("ui.good");
  const code = answer.reasonCode;
  if (code === "POSE_NOT_MET" && step && has(`pose.${step.code}`)) return t(`pose.${step.code}`);
  if (code === "EXPRESSION_NOT_MET" && step && has(`expression.${step.code}`)) return t(`expression.${step.code}`);
  if (has(`coaching.${code}`)) return t(`coaching.${code}`);
  return t("ui.followInstruction");
}

/** Why a check failed, naming the step when a step ran out of time or pictures. */
export function failureFor(failureReason, step) {
  const stepFailure = ["STEP_TIMEOUT", "ATTEMPT_LIMIT"].includes(failureReason);
  if (stepFailure && step && has(`failedStep.${step.code}`)) return t(`failedStep.${step.code}`);
  return has(`failures.${failureReason}`) ? t(`failures.${failureReason}`) : t("ui.failedUnknown");
}
