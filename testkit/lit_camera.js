// A camera lit by the page's own screen, for browser tests (settings and pictures: testkit/lit_camera.py).
// getUserMedia answers a canvas stream. Each drawn frame is the picture in linear light, times
// (1 + k x lightmap x the screen colour the camera sees), where the colour is the light overlay's computed
// background ~latencyMs ago (mid-grey when no overlay shows), plus sensor noise. k = 0 is a replay: the same
// pictures, unlit by the screen.
(() => {
  const cfg = window.__litCamera;
  const BASE = "/__lit-camera/";
  const GREY = [0.5, 0.5, 0.5];

  const toLinear = new Float32Array(256);
  for (let v = 0; v < 256; v += 1) {
    const x = v / 255;
    toLinear[v] = x <= 0.04045 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
  }
  const LUT_SIZE = 4096;
  const toSrgb = new Uint8ClampedArray(LUT_SIZE + 1);
  for (let i = 0; i <= LUT_SIZE; i += 1) {
    const x = i / LUT_SIZE;
    toSrgb[i] = Math.round(255 * (x <= 0.0031308 ? 12.92 * x : 1.055 * x ** (1 / 2.4) - 0.055));
  }
  const gauss = new Float32Array(1 << 16);
  for (let i = 0; i < gauss.length; i += 1) {
    gauss[i] = Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(2 * Math.PI * Math.random());
  }

  // The screen's colour over time, sampled often enough to honour the latency.
  const history = [];
  function screenColour() {
    const overlay = document.getElementById("light-overlay");
    if (!overlay || overlay.hidden) return GREY;
    const parts = (getComputedStyle(overlay).backgroundColor.match(/[\d.]+/g) || []).map(Number);
    return parts.length >= 3 ? parts.slice(0, 3).map((v) => v / 255) : GREY;
  }
  setInterval(() => {
    const now = performance.now();
    history.push({ at: now, rgb: screenColour() });
    while (history.length > 2 && history[1].at < now - 2000) history.shift();
  }, 10);
  function colourAt(time) {
    let found = GREY;
    for (const sample of history) if (sample.at <= time) found = sample.rgb;
    return found;
  }

  async function pixels(url) {
    const image = new Image();
    image.src = url;
    await image.decode();
    const canvas = document.createElement("canvas");
    canvas.width = cfg.width;
    canvas.height = cfg.height;
    const context = canvas.getContext("2d");
    context.drawImage(image, 0, 0, cfg.width, cfg.height);
    return context.getImageData(0, 0, cfg.width, cfg.height).data;
  }

  async function loadPictures() {
    const pictures = [];
    for (let i = 0; i < cfg.pictures; i += 1) {
      const [rgba, map] = await Promise.all([pixels(`${BASE}picture-${i}.png`), pixels(`${BASE}lightmap-${i}.png`)]);
      const linear = new Float32Array(cfg.width * cfg.height * 3);
      const factor = new Float32Array(cfg.width * cfg.height);
      for (let p = 0, q = 0; p < factor.length; p += 1, q += 4) {
        linear[3 * p] = toLinear[rgba[q]];
        linear[3 * p + 1] = toLinear[rgba[q + 1]];
        linear[3 * p + 2] = toLinear[rgba[q + 2]];
        factor[p] = map[q] / 255;
      }
      pictures.push({ linear, factor });
    }
    return pictures;
  }

  const canvas = document.createElement("canvas");
  canvas.width = cfg.width;
  canvas.height = cfg.height;
  const context = canvas.getContext("2d");
  const frame = context.createImageData(cfg.width, cfg.height);
  let pictures = null;
  let loop = null;
  window.__litCameraFrames = 0;

  function draw() {
    const now = performance.now();
    const picture = pictures[Math.floor(now / cfg.pictureMs) % pictures.length];
    const shown = colourAt(now - cfg.latencyMs).map((v) => Math.max(v, cfg.screenBlack));
    const gain = cfg.crosstalk.map((row) => cfg.screenOverAmbient * (row[0] * shown[0] + row[1] * shown[1] + row[2] * shown[2]));
    const { linear, factor } = picture;
    const out = frame.data;
    let n = Math.floor(Math.random() * gauss.length);
    for (let p = 0, q = 0; p < factor.length; p += 1, q += 4) {
      const f = factor[p];
      for (let c = 0; c < 3; c += 1) {
        let v = linear[3 * p + c] * (1 + gain[c] * f);
        v += cfg.noise * Math.sqrt(v) * gauss[n];
        n = (n + 1) & 0xffff;
        out[q + c] = toSrgb[Math.round(Math.min(1, Math.max(0, v)) * LUT_SIZE)];
      }
      out[q + 3] = 255;
    }
    context.putImageData(frame, 0, 0);
    window.__litCameraFrames += 1;
  }

  navigator.mediaDevices.getUserMedia = async () => {
    if (!pictures) pictures = await loadPictures();
    if (!loop) {
      draw();
      loop = setInterval(draw, 1000 / cfg.fps);
    }
    return canvas.captureStream(cfg.fps);
  };
})();
