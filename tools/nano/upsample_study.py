#!/usr/bin/env python3
"""Design study for video rate at streaming sizes: run the Swift engine on a reduced
internal resolution and restore full-resolution detail with an input-guided upsampler,
against running at full resolution. Prints, per variant, mean PSNR to the style
references computed at full size, style-ID accuracy (eval.py's definitions) and the
identity style's PSNR to the input.

    python3 tools/nano/upsample_study.py [--size 640x480] [--photos 8] [--scales 2,3] [--oracle]

--oracle skips the engine: the guided-colour maps are fitted between the working-size
input and the working-size *reference*, then applied to the full-size input, i.e. the
best an output head predicting local affine colour maps could do at that scale.

Upsamplers (all from the low-resolution output S and the full-resolution input I):
  bilinear      S resized
  guided-gray   fast guided filter (He & Sun 2015), per output channel, guide = luma of I
  guided-color  fast guided filter with the RGB guide (3x3 covariance per window), i.e.
                a locally affine colour transform of I fitted to S at low resolution
"""
from __future__ import annotations

import argparse
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import styles  # noqa: E402
from eval import SwiftEngine, load_photos, mse, psnr  # noqa: E402


def box(x, r):
    return cv2.blur(x, (2 * r + 1, 2 * r + 1), borderType=cv2.BORDER_REFLECT)


def guided_gray(I, S, r, eps, size):
    g = cv2.cvtColor(I, cv2.COLOR_RGB2GRAY)[..., None]
    mI = box(g, r)[..., None] if box(g, r).ndim == 2 else box(g, r)
    out_a, out_b = [], []
    for c in range(3):
        s = S[..., c]
        gi = g[..., 0]
        mi, ms = box(gi, r), box(s, r)
        cov = box(gi * s, r) - mi * ms
        var = box(gi * gi, r) - mi * mi
        a = cov / (var + eps)
        b = ms - a * mi
        out_a.append(box(a, r)); out_b.append(box(b, r))
    return lambda Ifull: np.stack([cv2.resize(out_a[c], size, interpolation=cv2.INTER_LINEAR)
                                   * cv2.cvtColor(Ifull, cv2.COLOR_RGB2GRAY)
                                   + cv2.resize(out_b[c], size, interpolation=cv2.INTER_LINEAR) for c in range(3)], -1)


def guided_color(I, S, r, eps, size):
    h, w = I.shape[:2]
    mI = np.stack([box(I[..., c], r) for c in range(3)], -1)
    mS = np.stack([box(S[..., c], r) for c in range(3)], -1)
    cov_II = np.empty((h, w, 3, 3), np.float32)
    for i in range(3):
        for j in range(3):
            cov_II[..., i, j] = box(I[..., i] * I[..., j], r) - mI[..., i] * mI[..., j]
    cov_IS = np.empty((h, w, 3, 3), np.float32)   # [.., guide channel, output channel]
    for i in range(3):
        for c in range(3):
            cov_IS[..., i, c] = box(I[..., i] * S[..., c], r) - mI[..., i] * mS[..., c]
    A = np.linalg.solve(cov_II + eps * np.eye(3, dtype=np.float32), cov_IS)  # [h,w,3(guide),3(out)]
    b = mS - np.einsum("hwi,hwic->hwc", mI, A)
    A = np.stack([box(A[..., i, c], r) for i in range(3) for c in range(3)], -1).reshape(h, w, 3, 3)
    b = np.stack([box(b[..., c], r) for c in range(3)], -1)

    def apply(Ifull):
        Au = np.stack([cv2.resize(np.ascontiguousarray(A[..., i, c]), size, interpolation=cv2.INTER_LINEAR)
                       for i in range(3) for c in range(3)], -1).reshape(size[1], size[0], 3, 3)
        bu = np.stack([cv2.resize(np.ascontiguousarray(b[..., c]), size, interpolation=cv2.INTER_LINEAR) for c in range(3)], -1)
        return np.einsum("hwi,hwic->hwc", Ifull, Au) + bu
    return apply


def f32(x):
    return x.astype(np.float32) / 255.0


def u8(x):
    return (np.clip(x, 0, 1) * 255).round().astype(np.uint8)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/nano")
    ap.add_argument("--tool", default=".build/release/stylize-tool")
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--photos", type=int, default=8)
    ap.add_argument("--scales", default="2,3")
    ap.add_argument("--out", default="out/upsample-study")
    ap.add_argument("--oracle", action="store_true")
    a = ap.parse_args()
    w, h = map(int, a.size.split("x"))
    os.makedirs(a.out, exist_ok=True)
    engine = SwiftEngine(a.model, a.tool, a.out, 0)
    photos = load_photos((w, h), a.photos)
    refs = {n: {s: styles.apply(s, img) for s in styles.STYLE_NAMES} for n, img in photos}
    variants: dict[str, list] = {}

    def score(key, s, name, out):
        v = variants.setdefault(key, [[], 0, 0, []])
        v[0].append(psnr(out, refs[name][s]))
        d = {t: mse(out, refs[name][t]) for t in styles.STYLE_NAMES}
        v[1] += int(min(d, key=d.get) == s)
        v[2] += 1
        if s == "original":
            v[3].append(psnr(out, dict(photos)[name]))

    for s in styles.STYLE_NAMES:
        prompt = styles.STYLES[s]["keys"][0]
        for name, img in photos:
            if a.oracle:
                for k in [float(x) for x in a.scales.split(",")]:
                    lw, lh = int(round(w / k)), int(round(h / k))
                    low = f32(cv2.resize(img, (lw, lh), interpolation=cv2.INTER_AREA))
                    ref_low = f32(cv2.resize(refs[name][s], (lw, lh), interpolation=cv2.INTER_AREA))
                    for r, eps in [(1, 1e-4), (2, 1e-4), (2, 1e-3)]:
                        score(f"/{k:g} oracle affine r{r} eps{eps:g}", s, name,
                              u8(guided_color(low, ref_low, r, eps, (w, h))(f32(img))))
                continue
            score("full", s, name, engine(img, prompt, f"full_{s}_{name}"))
            for k in [float(x) for x in a.scales.split(",")]:
                lw, lh = int(round(w / k)), int(round(h / k))
                low = cv2.resize(img, (lw, lh), interpolation=cv2.INTER_AREA)
                S = f32(engine(low, prompt, f"low{k}_{s}_{name}"))
                I, Ifull = f32(low), f32(img)
                score(f"/{k:g} bilinear", s, name, u8(cv2.resize(S, (w, h), interpolation=cv2.INTER_LINEAR)))
                for r, eps in [(2, 1e-3), (4, 1e-3), (4, 1e-2)]:
                    score(f"/{k:g} guided-gray r{r} eps{eps:g}", s, name, u8(guided_gray(I, S, r, eps, (w, h))(Ifull)))
                    score(f"/{k:g} guided-color r{r} eps{eps:g}", s, name, u8(guided_color(I, S, r, eps, (w, h))(Ifull)))
        print(f"{s} done", flush=True)
    print(f"\n{len(photos)} photos at {w}x{h}, {len(styles.STYLE_NAMES)} styles, seen prompt")
    print(f"{'variant':36s} {'PSNR':>6s} {'ID':>5s} {'identity':>9s}")
    for key, (ps, hits, n, ident) in variants.items():
        print(f"{key:36s} {np.mean(ps):6.2f} {100 * hits / n:4.0f}% {np.mean(ident):9.2f}")


if __name__ == "__main__":
    main()
