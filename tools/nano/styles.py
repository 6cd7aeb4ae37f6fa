#!/usr/bin/env python3
"""Reference style transforms for the nano model, and their prompts.

Each style is a deterministic OpenCV / numpy function uint8 RGB (H, W, 3) -> uint8 RGB
(H, W, 3). The model is trained to reproduce these from free-text prompts, so the
transforms *define* the styles; eval.py compares the Swift engine's output to them.

    python3 tools/nano/styles.py --style NAME IN.png OUT.png
    python3 tools/nano/styles.py --list
    python3 tools/nano/styles.py --sheet IN.png OUT.png     (input + every style)

Pixel sizes (filter radii, edge widths) are fixed, so a style looks the same at any
resolution only up to scale; training uses images at roughly 256-pixel scale, the
scale the demo and evaluation run at.
"""
from __future__ import annotations

import argparse
import sys

import cv2
import numpy as np

cv2.setNumThreads(1)  # deterministic and friendly to the 2-core budget


# ----------------------------------------------------------------------------- helpers

def _f(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32) / 255.0


def _u8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)


def _gray(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)


def _saturate(rgb: np.ndarray, factor: float) -> np.ndarray:
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 1] = np.clip(hsv[..., 1] * factor, 0, 255)
    return cv2.cvtColor(hsv.round().astype(np.uint8), cv2.COLOR_HSV2RGB)


def kuwahara(img: np.ndarray, radius: int) -> np.ndarray:
    """Classic 4-quadrant Kuwahara filter (quadrants of (r+1)^2 pixels, variance of luma)."""
    r = radius
    f = _f(img)
    pad = cv2.copyMakeBorder(f, r, r, r, r, cv2.BORDER_REFLECT_101)
    lum = cv2.cvtColor(pad, cv2.COLOR_RGB2GRAY)
    k = r + 1
    h, w = img.shape[:2]

    def box(a):  # sum over k x k windows, indexed by the window's top-left corner
        s = cv2.integral(a, sdepth=cv2.CV_64F)
        return (s[k:, k:] - s[:-k, k:] - s[k:, :-k] + s[:-k, :-k]) / (k * k)

    mean_l, mean_l2 = box(lum), box(lum * lum)
    var = mean_l2 - mean_l * mean_l
    means = np.stack([box(pad[..., c]) for c in range(3)], -1)
    corners = [(0, 0), (0, r), (r, 0), (r, r)]
    vs = np.stack([var[y:y + h, x:x + w] for y, x in corners], 0)
    ms = np.stack([means[y:y + h, x:x + w] for y, x in corners], 0)
    best = np.argmin(vs, axis=0)
    out = np.take_along_axis(ms, best[None, ..., None].repeat(3, -1), 0)[0]
    return _u8(out)


# ----------------------------------------------------------------------------- styles

def identity(img):
    return img.copy()


def oil(img):
    out = kuwahara(img, 4)
    return _saturate(out, 1.35)


def watercolor(img):
    out = cv2.stylization(img, sigma_s=60, sigma_r=0.45)
    # a light paper wash: lift the shadows a little
    return _u8(0.85 * _f(out) + 0.15)


def pencil(img):
    g = _gray(img).astype(np.float32)
    blur = cv2.GaussianBlur(255 - g, (0, 0), 6)
    dodge = np.clip(g * 255 / np.maximum(255 - blur, 1), 0, 255) / 255
    out = cv2.GaussianBlur(dodge ** 2.2, (0, 0), 0.8)
    return cv2.cvtColor(_u8(out), cv2.COLOR_GRAY2RGB)


def cartoon(img):
    # flat colours, lifted saturation and contrast, soft dark outlines: every step is a
    # continuous function of the input (hard quantisation is what a 1-step student blurs)
    smooth = img
    for _ in range(3):
        smooth = cv2.bilateralFilter(smooth, 9, 60, 9)
    flat = _f(_saturate(smooth, 2.0))
    flat = np.clip((flat - 0.5) * 1.15 + 0.52, 0, 1)
    g = _f(cv2.GaussianBlur(_gray(smooth), (0, 0), 1.5))
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    mag = np.clip((np.sqrt(gx * gx + gy * gy) - 0.12) * 4.0, 0, 1)
    mag = cv2.GaussianBlur(cv2.dilate(mag, np.ones((2, 2), np.uint8)), (0, 0), 0.8)
    return _u8(flat * (1 - 0.9 * mag)[..., None])


def sepia(img):
    m = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]], np.float32)
    out = _f(img) @ m.T
    return _u8(out)


def ink(img):
    g = cv2.GaussianBlur(_gray(img), (0, 0), 1.5).astype(np.float32)
    local = cv2.GaussianBlur(g, (0, 0), 8)
    t = 1 / (1 + np.exp(-(g - local + 8) / 4))
    t = t * np.clip((g - 50) / 20, 0, 1)
    return cv2.cvtColor(_u8(cv2.GaussianBlur(t, (0, 0), 0.8)), cv2.COLOR_GRAY2RGB)


def neon(img):
    blur = cv2.GaussianBlur(img, (0, 0), 1.5)
    g = _f(_gray(blur))
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    mag = np.clip((np.sqrt(gx * gx + gy * gy) - 0.06) * 3.0, 0, 1)
    colour = _f(_saturate(img, 3.0))
    colour = colour / np.maximum(colour.max(-1, keepdims=True), 0.2)
    edges = cv2.GaussianBlur(colour * mag[..., None], (0, 0), 0.8)
    glow = cv2.GaussianBlur(edges, (0, 0), 4)
    return _u8(np.clip(edges + 1.5 * glow, 0, 1))


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0, 1)
    return t * t * (3 - 2 * t)


# Warhol-like fixed palette, dark to light; chosen far from thermal's inferno map
POPART_PALETTE = np.array([[30, 40, 150], [0, 190, 210], [255, 220, 0], [255, 80, 170]], np.float32) / 255


def popart(img):
    # luma bands painted in a fixed palette with soft (0.1-wide) transitions, so the
    # style is a smooth function of luma, like thermal, and far from every photo-like style
    smooth = cv2.bilateralFilter(img, 9, 50, 7)
    lum = _f(cv2.GaussianBlur(_gray(smooth), (0, 0), 1.0))
    out = np.broadcast_to(POPART_PALETTE[0], img.shape).copy()
    for edge, colour in zip((0.3, 0.5, 0.7), POPART_PALETTE[1:]):
        w = _smoothstep(edge - 0.05, edge + 0.05, lum)[..., None]
        out = out * (1 - w) + colour * w
    return _u8(cv2.GaussianBlur(out, (0, 0), 0.8))


def thermal(img):
    g = cv2.GaussianBlur(_gray(img), (0, 0), 1.2)
    return cv2.cvtColor(cv2.applyColorMap(g, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)


# name -> (function, key phrases (with article), description)
STYLES: dict[str, dict] = {
    "original": dict(fn=identity, keys=["the original", "no change", "unchanged", "as it is"],
                     ref="identity: the input frame unchanged"),
    "oil": dict(fn=oil, keys=["an oil painting", "oil paint", "oil on canvas"],
                ref="Kuwahara filter (radius 4, luma variance) + saturation x1.35"),
    "watercolor": dict(fn=watercolor, keys=["a watercolor painting", "watercolour", "watercolor"],
                       ref="cv2.stylization(sigma_s=60, sigma_r=0.45), 15% paper wash"),
    "pencil": dict(fn=pencil, keys=["a pencil sketch", "pencil drawing", "graphite sketch"],
                   ref="colour-dodge sketch: luma / (1 - blur(inverted luma, sigma 6)), gamma 2.2, blur sigma 0.8"),
    "cartoon": dict(fn=cartoon, keys=["a cartoon", "cartoon", "animated cartoon"],
                    ref="3x bilateral(9, 60, 9) + saturation x2 + contrast x1.15 + soft dark Sobel outlines"),
    "sepia": dict(fn=sepia, keys=["a sepia photo", "sepia tone", "old sepia photograph"],
                  ref="classic sepia colour matrix"),
    "ink": dict(fn=ink, keys=["an ink drawing", "black and white comic ink", "pen and ink"],
                ref="soft local threshold of blurred luma (sigmoid, local mean sigma 8) + solid blacks below luma 50-70"),
    "neon": dict(fn=neon, keys=["neon glow", "glowing neon lines", "neon"],
                 ref="Sobel magnitude of the blurred image coloured by the saturated image + Gaussian glow on black"),
    "popart": dict(fn=popart, keys=["pop art", "a pop art poster", "posterized pop art"],
                   ref="bilateral-smoothed luma in 4 soft bands painted blue / cyan / yellow / pink"),
    "thermal": dict(fn=thermal, keys=["a thermal camera image", "thermal imaging", "infrared heat map"],
                    ref="luma, Gaussian blur sigma 1.2, through the inferno colour map"),
}
STYLE_NAMES = list(STYLES)

# Paraphrase templates. {k} is a key phrase. Training uses TRAIN_TEMPLATES; evaluation's
# "unseen paraphrases" use HELDOUT_TEMPLATES (never seen in training).
TRAIN_TEMPLATES = [
    "{k}", "make it look like {k}", "in the style of {k}", "turn this into {k}", "{k} style",
    "as {k}", "render it as {k}", "convert to {k}", "apply {k} effect", "{k}, please",
    "make the video {k}", "restyle as {k}", "give me {k}", "style: {k}", "transform into {k}",
    "show it as {k}", "paint it as {k}", "like {k}",
]
HELDOUT_TEMPLATES = [
    "could you make this look like {k}?", "I want {k}", "please restyle the scene as {k}",
    "give the picture {k} look", "change everything to {k}",
]


# Request phrasings for the text encoder's last stage (train.py "prompts"): questions,
# politeness and filler composed around a verb phrase, so free-form requests land on the
# style of their key phrase. Built only from words the training templates already use or
# from plain fillers; the held-out templates' own words ("could", "want", "change",
# "everything", "scene", "picture") are never used, and augmented_prompt() asserts that
# no composition equals a held-out prompt.
AUG_VERBS = [
    "make it look like", "make this look like", "make the image look like", "turn it into",
    "turn this into", "turn the video into", "render this as", "render the frame as",
    "restyle it as", "restyle this as", "convert this to", "convert the photo to",
    "transform it into", "transform the video into", "paint this as", "show me", "show the video as",
    "redo it as", "draw it as", "make it", "make the frame",
]
AUG_FRAMES = [
    "{v} {k}", "can you {v} {k}?", "would you {v} {k}?", "please {v} {k}", "{v} {k}, please",
    "{v} {k} please", "I'd like you to {v} {k}", "I'd like {k}", "I need {k}", "let's have {k}",
    "can we get {k}?", "can I have {k}?", "now {v} {k}", "ok, {v} {k}", "just {v} {k}",
    "hey, {v} {k}", "{v} {k} for me", "{v} {k}!", "{v} {k}.", "kindly {v} {k}",
    "would you {v} {k} please?", "can you {v} {k} for me?", "{k} look, please", "{k} effect",
    "{k} filter", "use {k}", "as if it were {k}", "so it looks like {k}",
    "with {k} style", "in {k} style",
]
_HELDOUT_WORDS = ("could", "want", "change", "everything", "scene", "picture")


def augmented_prompt(name: str, rng) -> str:
    """One random request phrasing for style `name` (rng: numpy Generator)."""
    keys = STYLES[name]["keys"]
    k = keys[rng.integers(len(keys))]
    frame = AUG_FRAMES[rng.integers(len(AUG_FRAMES))]
    p = frame.format(v=AUG_VERBS[rng.integers(len(AUG_VERBS))], k=k)
    if rng.uniform() < 0.3:
        p = p[0].upper() + p[1:]
    return p


def check_augmentation_excludes_heldout() -> None:
    words = " ".join(AUG_VERBS + AUG_FRAMES).lower().replace(",", " ").replace("?", " ").split()
    bad = [w for w in _HELDOUT_WORDS if w in words]
    assert not bad, f"augmentation uses held-out words {bad}"
    for name in STYLE_NAMES:
        held = {h.lower().rstrip("?.!") for h in heldout_prompts(name)}
        for k in STYLES[name]["keys"]:
            for f in AUG_FRAMES:
                for v in AUG_VERBS:
                    q = f.format(v=v, k=k).lower().rstrip("?.!")
                    assert q not in held, f"augmented prompt {q!r} is a held-out prompt"


def train_prompts(name: str) -> list[str]:
    return [t.format(k=k) for k in STYLES[name]["keys"] for t in TRAIN_TEMPLATES]


def heldout_prompts(name: str) -> list[str]:
    return [t.format(k=k) for k in STYLES[name]["keys"] for t in HELDOUT_TEMPLATES]


def example_prompts(name: str) -> list[str]:
    k = STYLES[name]["keys"]
    return [k[0], f"make it look like {k[0]}", f"in the style of {k[0]}", k[1]]


def apply(name: str, img: np.ndarray) -> np.ndarray:
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3, img.shape
    out = STYLES[name]["fn"](np.ascontiguousarray(img))
    assert out.shape == img.shape and out.dtype == np.uint8, (name, out.shape, out.dtype)
    return out


def load_rgb(path: str) -> np.ndarray:
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"cannot read {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def save_rgb(path: str, img: np.ndarray) -> None:
    if not cv2.imwrite(path, cv2.cvtColor(img, cv2.COLOR_RGB2BGR)):
        raise SystemExit(f"cannot write {path}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--style", choices=STYLE_NAMES)
    p.add_argument("--list", action="store_true")
    p.add_argument("--sheet", action="store_true", help="write input + every style side by side")
    p.add_argument("paths", nargs="*")
    a = p.parse_args(argv)
    if a.list:
        for n, s in STYLES.items():
            print(f"{n:11s} {s['ref']}\n            e.g. " + " | ".join(example_prompts(n)))
        return
    if len(a.paths) != 2:
        p.error("need IN.png OUT.png")
    img = load_rgb(a.paths[0])
    if a.sheet:
        out = np.concatenate([img] + [apply(n, img) for n in STYLE_NAMES if n != "original"], 1)
    elif a.style:
        out = apply(a.style, img)
    else:
        p.error("need --style NAME or --sheet")
    save_rgb(a.paths[1], out)


if __name__ == "__main__":
    main()
