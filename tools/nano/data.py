#!/usr/bin/env python3
"""Training images for nano: natural photos that PyPI packages ship, plus procedural content.

Sources (all bundled inside the wheels, nothing is downloaded; licences as stated by
each package):
  scikit-image  skimage.data: astronaut, chelsea, coffee, rocket, hubble_deep_field,
                immunohistochemistry, retina, colorwheel (colour); camera, moon, coins, clock,
                brick, grass, gravel, cell, page, text (grey). Licences from each function's
                docstring: "no copyright restrictions" / public domain (astronaut, rocket,
                hubble_deep_field, clock, text, camera, coins, immunohistochemistry), CC0
                (chelsea, coffee, retina, brick, grass, gravel, cell); colorwheel, moon, page:
                scikit-image's own data (BSD-3-Clause).
  scikit-learn  sklearn.datasets.load_sample_images(): china.jpg, flower.jpg
                (CC BY 2.0, danielbuechele on Flickr, per load_sample_images().DESCR).
  matplotlib    mpl-data/sample_data/grace_hopper.jpg (US Navy photo, public domain).
  procedural    gradients, random filled shapes and lines, multi-scale noise textures,
                stripes and checkers (generated here from the seed).
Debian's opencv-doc samples are for evaluation and the demo only and are never read here.

Everything is deterministic for a seed: `Sampler(seed).crop(index)` always returns the
same crop for the same (seed, index).

    python3 tools/nano/data.py --sheet OUT.png   (a grid of sample crops)
"""
from __future__ import annotations

import argparse
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

SKIMAGE_COLOUR = ["astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field",
                  "immunohistochemistry", "retina", "colorwheel"]
SKIMAGE_GREY = ["camera", "moon", "coins", "clock", "brick", "grass", "gravel", "cell", "page", "text"]
FORBIDDEN = "opencv-doc"


def natural_images() -> list[tuple[str, np.ndarray]]:
    """(name, uint8 RGB) for every bundled natural image, in a fixed order."""
    import skimage.data as d
    out = []
    for n in SKIMAGE_COLOUR:
        out.append(("skimage." + n, np.ascontiguousarray(getattr(d, n)()[..., :3])))
    for n in SKIMAGE_GREY:
        g = getattr(d, n)()
        out.append(("skimage." + n, np.ascontiguousarray(np.repeat(g[..., None], 3, -1))))
    from sklearn.datasets import load_sample_images
    s = load_sample_images()
    for name, img in zip(s.filenames, s.images):
        out.append(("sklearn." + os.path.basename(name), np.ascontiguousarray(img)))
    import matplotlib.cbook as cbook
    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    assert FORBIDDEN not in str(path)
    img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    out.append(("matplotlib.grace_hopper", img))
    return out


# ----------------------------------------------------------------------------- procedural

def _smooth_noise(rng, size, scale):
    n = rng.standard_normal((max(2, size // scale), max(2, size // scale), 3)).astype(np.float32)
    n = cv2.resize(n, (size, size), interpolation=cv2.INTER_CUBIC)
    return n


def procedural(rng: np.random.Generator, size: int) -> np.ndarray:
    kind = rng.integers(0, 4)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    c0, c1 = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
    a = rng.uniform(0, 2 * np.pi)
    t = np.clip((np.cos(a) * xx + np.sin(a) * yy - 0.5) * rng.uniform(0.5, 2) + 0.5, 0, 1)
    img = c0 * (1 - t[..., None]) + c1 * t[..., None]  # gradient background
    if kind >= 1:  # noise texture
        tex = sum(_smooth_noise(rng, size, s) * w for s, w in [(64, 0.5), (16, 0.3), (4, 0.15), (1, 0.05)])
        img = img + tex * rng.uniform(0.05, 0.3)
    img = np.clip(img, 0, 1)
    canvas = (img * 255).astype(np.uint8)
    if kind >= 2:  # shapes and lines
        for _ in range(rng.integers(3, 14)):
            col = tuple(int(v) for v in rng.integers(0, 256, 3))
            s = rng.integers(0, 4)
            p = tuple(int(v) for v in rng.integers(0, size, 2))
            if s == 0:
                cv2.circle(canvas, p, int(rng.integers(4, size // 3)), col, -1, cv2.LINE_AA)
            elif s == 1:
                q = tuple(int(v) for v in rng.integers(0, size, 2))
                cv2.rectangle(canvas, p, q, col, -1)
            elif s == 2:
                pts = rng.integers(0, size, (rng.integers(3, 7), 2)).astype(np.int32)
                cv2.fillPoly(canvas, [pts], col, cv2.LINE_AA)
            else:
                q = tuple(int(v) for v in rng.integers(0, size, 2))
                cv2.line(canvas, p, q, col, int(rng.integers(1, 6)), cv2.LINE_AA)
    if kind == 3 and rng.uniform() < 0.5:  # stripes / checkers overlay
        f = rng.uniform(4, 30)
        m = (np.sin(xx * f * np.pi * 2) * np.sin(yy * f * np.pi * 2 * rng.uniform(0, 1)) > 0)
        canvas = np.where(m[..., None], canvas, (canvas * 0.6).astype(np.uint8))
    blur = rng.uniform(0, 1.2)
    if blur > 0.3:
        canvas = cv2.GaussianBlur(canvas, (0, 0), blur)
    return canvas


# ----------------------------------------------------------------------------- augmentation

def colour_jitter(rng, img: np.ndarray) -> np.ndarray:
    f = img.astype(np.float32) / 255
    f = f * rng.uniform(0.75, 1.25) + rng.uniform(-0.08, 0.08)              # brightness
    m = f.mean()
    f = (f - m) * rng.uniform(0.75, 1.3) + m                                 # contrast
    g = f.mean(-1, keepdims=True)
    f = g + (f - g) * rng.uniform(0.6, 1.4)                                  # saturation
    f = np.clip(f, 0, 1) ** rng.uniform(0.8, 1.25)                           # gamma
    out = np.clip(np.round(f * 255), 0, 255).astype(np.uint8)
    if rng.uniform() < 0.3:                                                  # hue rotation
        hsv = cv2.cvtColor(out, cv2.COLOR_RGB2HSV)
        hsv[..., 0] = ((hsv[..., 0].astype(np.int32) + int(rng.integers(0, 180))) % 180).astype(np.uint8)
        out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return out


class Sampler:
    """Deterministic crops: `crop(i)` depends only on (seed, i)."""

    def __init__(self, seed: int, size: int = 160, procedural_fraction: float = 0.25):
        self.seed = seed
        self.size = size
        self.pf = procedural_fraction
        self.images = natural_images()
        # colour photos twice as likely as the grey / texture ones
        w = np.array([2.0 if n.split(".")[1] not in SKIMAGE_GREY else 1.0 for n, _ in self.images])
        w[[i for i, (n, _) in enumerate(self.images) if n == "skimage.hubble_deep_field"]] = 0.5
        self.p = w / w.sum()

    def crop(self, index: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, index])
        s = self.size
        if rng.uniform() < self.pf:
            out = procedural(rng, s)
        else:
            _, img = self.images[rng.choice(len(self.images), p=self.p)]
            h, w = img.shape[:2]
            # rescale so the short side is 200-420 px: the pixel scale of a 256-ish frame
            short = rng.uniform(max(s + 8, 200), 420)
            k = short / min(h, w)
            nh, nw = max(s, int(round(h * k))), max(s, int(round(w * k)))
            img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_CUBIC)
            y, x = rng.integers(0, nh - s + 1), rng.integers(0, nw - s + 1)
            out = img[y:y + s, x:x + s]
        if rng.uniform() < 0.5:
            out = out[:, ::-1]
        if rng.uniform() < 0.2:
            out = out[::-1]
        return colour_jitter(rng, np.ascontiguousarray(out))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sheet", required=True)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    s = Sampler(a.seed)
    print("\n".join(f"{n}: {i.shape}" for n, i in s.images))
    rows = [np.concatenate([s.crop(r * 8 + c) for c in range(8)], 1) for r in range(4)]
    cv2.imwrite(a.sheet, cv2.cvtColor(np.concatenate(rows, 0), cv2.COLOR_RGB2BGR))


if __name__ == "__main__":
    main()
