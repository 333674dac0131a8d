// Which screen is showing, the status hook embedders and tests read, and the problem screen's words.

import { t } from "./i18n.js";

const $ = (id) => document.getElementById(id);

export function show(screen) {
  for (const section of document.querySelectorAll(".screen")) section.hidden = section.id !== `screen-${screen}`;
  const heading = document.querySelector(`#screen-${screen} h1`);
  if (heading) heading.focus();
  document.body.dataset.screen = screen;
}

/** `document.body.dataset.livenessStatus`: IN_PROGRESS, PASSED, FAILED, EXPIRED, PROBLEM or CANCELLED. */
export function setStatus(status) {
  if (status) document.body.dataset.livenessStatus = status;
  else delete document.body.dataset.livenessStatus;
}

/**
 * The problem screen: `key` names a {title, message} pair in the catalogue (camera.denied, problems.connection...);
 * `code` is for support only, folded away in a details element, never in the sentence a person reads.
 */
export function renderProblem({ key, code = null, lead = null }) {
  $("problem-title").textContent = t(`${key}.title`);
  $("problem-message").textContent = [lead, t(`${key}.message`)].filter(Boolean).join(" ");
  $("problem-details").hidden = !code;
  $("problem-code").textContent = code ? t("ui.supportCode", { code }) : "";
}
