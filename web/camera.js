// The camera: open it (the front one, or a chosen device), offer the other devices, grab a frame, release it.
// Only one stream is ever held, so switching devices or leaving the page always turns the camera light off.

import { t } from "./i18n.js";

let stream = null;

const $ = (id) => document.getElementById(id);

/** The kind of camera problem (camera.<kind> in the catalogues) behind a getUserMedia error. */
export function cameraProblemOf(error) {
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

export async function openCamera(deviceId) {
  const video = deviceId
    ? { deviceId: { exact: deviceId }, width: { ideal: 640 }, height: { ideal: 480 } }
    : { facingMode: "user", width: { ideal: 640 }, height: { ideal: 480 } };
  const opened = await navigator.mediaDevices.getUserMedia({ video, audio: false });
  stopCamera();
  stream = opened;
  const element = $("video");
  element.srcObject = opened;
  await element.play().catch(() => {});
  await fillCameraPicker(opened);
}

async function fillCameraPicker(opened) {
  const devices = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "videoinput");
  const select = $("camera-select");
  const current = opened.getVideoTracks()[0]?.getSettings().deviceId;
  select.replaceChildren(
    ...devices.map((device, index) => {
      const option = new Option(device.label || t("ui.cameraN", { n: index + 1 }), device.deviceId);
      option.selected = device.deviceId === current;
      return option;
    }),
  );
  $("camera-picker").hidden = devices.length < 2;
}

export function stopCamera() {
  if (stream) for (const track of stream.getTracks()) track.stop();
  stream = null;
  const video = $("video");
  if (video) video.srcObject = null;
}

/** The camera picture as a JPEG data URL of the session's recommended size, or null before the video plays. */
export function captureFrame(size) {
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
