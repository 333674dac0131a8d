// The page's words: one catalogue per language (i18n/<code>.json, same origin), chosen from ?lang=, then the
// person's earlier choice, then the browser's languages; English when none matches. Codes from the server are
// looked up here (steps.<StepCode>, coaching.<ReasonCode>, failures.<FailureReason>, errors.<ErrorCode>).

export const LANGUAGES = ["en", "es"];
const STORAGE_KEY = "liveness.language";

let texts = {};
let current = "en";
const listeners = [];

function stored() {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null; // storage blocked: no memory, still usable
  }
}

/** The language to start in. */
export function preferredLanguage() {
  const asked = new URLSearchParams(location.search).get("lang");
  const wanted = [asked, stored(), ...(navigator.languages || [navigator.language])];
  for (const tag of wanted) {
    const base = (tag || "").toLowerCase().split("-")[0];
    if (LANGUAGES.includes(base)) return base;
  }
  return LANGUAGES[0];
}

export function language() {
  return current;
}

/** Load a catalogue, translate the static page, and tell the listeners (they redraw what they wrote). */
export async function setLanguage(code, { remember = false } = {}) {
  const response = await fetch(`i18n/${code}.json`, { cache: "no-cache" });
  texts = await response.json();
  current = code;
  if (remember) {
    try {
      localStorage.setItem(STORAGE_KEY, code);
    } catch {
      // not remembered; the choice still applies now
    }
  }
  translatePage();
  for (const listener of listeners) listener(code);
}

export function onLanguageChange(listener) {
  listeners.push(listener);
}

function lookup(key) {
  return key.split(".").reduce((node, part) => (node && typeof node === "object" ? node[part] : undefined), texts);
}

export function has(key) {
  return typeof lookup(key) === "string";
}

/** The text for `key` with `{name}` placeholders filled; the key itself when missing (a test keeps that rare). */
export function t(key, vars = {}) {
  const text = lookup(key);
  if (typeof text !== "string") return key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}

/** Elements marked data-i18n="key" get the text; data-i18n-attr="attr:key,attr:key" set attributes. */
export function translatePage(root = document) {
  document.documentElement.lang = current;
  document.title = t("ui.pageTitle");
  for (const element of root.querySelectorAll("[data-i18n]")) element.textContent = t(element.dataset.i18n);
  for (const element of root.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of element.dataset.i18nAttr.split(",")) {
      const [attribute, key] = pair.split(":");
      element.setAttribute(attribute.trim(), t(key.trim()));
    }
  }
}

/** Fill `element` with the text, each `{name}` placeholder as a <strong> holding vars[name]. */
export function fillStrong(element, key, vars) {
  const parts = t(key).split(/\{(\w+)\}/);
  element.replaceChildren(
    ...parts.map((part, index) => {
      if (index % 2 === 0) return document.createTextNode(part);
      const strong = document.createElement("strong");
      strong.textContent = vars[part] ?? `{${part}}`;
      return strong;
    }),
  );
}
