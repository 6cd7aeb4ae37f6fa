#!/usr/bin/env python3
"""Evaluates a nano model folder on held-out photos (Debian opencv-doc samples, never
used in training) through the Swift engine:

    .build/release/stylize-tool stylize --model DIR --prompt TEXT [--seed S] IN.png OUT.png

Prints per style: PSNR of the output to the style's reference transform (styles.py),
style-ID accuracy (output closer, in MSE, to its own style's reference than to every
other style's), both for a seen prompt and for unseen paraphrases (HELDOUT_TEMPLATES);
and a temporal-stability check: 60 frames of one still photo with independent
Gaussian noise (sigma = 2/255); the mean absolute difference between consecutive outputs
must be <= 1.5x that of the reference transform on the same frames.

    python3 tools/nano/eval.py [--model models/nano] [--engine swift|torch] [--size 256]
        [--photos N] [--temporal-frames 60] [--out out/nano-eval]

--engine torch runs the same 1-step pipeline in PyTorch (diffusers + transformers), to
test this script and to compare with the Swift engine. --checkpoint runs/nano/checkpoint.pt
previews a training run in progress (torch engine).
Exit status 1 when an acceptance threshold fails (ID >= 90%, PSNR >= 20 dB, unseen
paraphrases within 2 dB, temporal ratio <= 1.5).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import styles  # noqa: E402

DATA = "/usr/share/doc/opencv-doc/examples/data"
PHOTOS = ["fruits.jpg", "building.jpg", "baboon.jpg", "butterfly.jpg", "home.jpg", "apple.jpg",
          "aero3.jpg", "HappyFish.jpg", "orange.jpg", "lena.jpg", "pic5.png", "starry_night.jpg"]


def parse_size(text: str) -> tuple[int, int]:
    """"256" -> (256, 256); "640x480" -> (640, 480) as (width, height)."""
    parts = [int(p) for p in text.lower().split("x")]
    return (parts[0], parts[0]) if len(parts) == 1 else (parts[0], parts[1])


def load_photos(size, n: int) -> list[tuple[str, np.ndarray]]:
    """Centre crops to the size's aspect, area-resized; `size` is an int (square) or (w, h)."""
    tw, th = (size, size) if isinstance(size, int) else size
    out = []
    for name in PHOTOS:
        path = os.path.join(DATA, name)
        if not os.path.exists(path):
            continue
        img = styles.load_rgb(path)
        h, w = img.shape[:2]
        cw, ch = (w, w * th // tw) if w * th <= h * tw else (h * tw // th, h)
        img = img[(h - ch) // 2:(h - ch) // 2 + ch, (w - cw) // 2:(w - cw) // 2 + cw]
        out.append((name, cv2.resize(img, (tw, th), interpolation=cv2.INTER_AREA)))
        if len(out) == n:
            break
    if not out:
        raise SystemExit(f"no held-out photos in {DATA} (apt-get install opencv-doc)")
    return out


# ----------------------------------------------------------------------------- engines

class SwiftEngine:
    def __init__(self, model: str, tool: str, work: str, seed: int):
        self.model, self.tool, self.work, self.seed = model, tool, work, seed
        if not os.path.exists(tool):
            raise SystemExit(f"{tool} not found: swift build -c release (or use --engine torch)")

    def __call__(self, img: np.ndarray, prompt: str, tag: str) -> np.ndarray:
        i = os.path.join(self.work, f"{tag}_in.png")
        o = os.path.join(self.work, f"{tag}_out.png")
        styles.save_rgb(i, img)
        subprocess.run([self.tool, "stylize", "--model", self.model, "--prompt", prompt,
                        "--seed", str(self.seed), i, o], check=True, capture_output=True)
        return styles.load_rgb(o)


class TorchEngine:
    """The Swift Stylizer's concat-channels loop in PyTorch, for the model folder."""

    def __init__(self, model: str, seed: int):
        import torch
        from diffusers import AutoencoderTiny, DDIMScheduler, UNet2DConditionModel
        from tokenizers import Tokenizer
        from transformers import Qwen3VLModel
        import train
        self.torch, self.train = torch, train
        self.vae = AutoencoderTiny.from_pretrained(os.path.join(model, "vae")).float().eval()
        self.unet = UNet2DConditionModel.from_pretrained(os.path.join(model, "unet")).float().eval()
        self.te = Qwen3VLModel.from_pretrained(os.path.join(model, "text_encoder")).float().eval()
        self.sched = DDIMScheduler.from_pretrained(os.path.join(model, "scheduler"))
        self.cfg = json.load(open(os.path.join(model, "stylize.json")))
        self.cond = train.ConditioningInputs(Tokenizer.from_file(os.path.join(model, "tokenizer", "tokenizer.json")))
        self.seed = seed
        self.cache = {}

    def __call__(self, img: np.ndarray, prompt: str, tag: str) -> np.ndarray:
        torch = self.torch
        with torch.no_grad():
            full = self.train.to_tensor(img[None])
            ctx = self.te(**self.cond([prompt], self.train.resize_for_encoder(img[None]))).last_hidden_state
            sf = self.vae.config.scaling_factor
            affine = self.cfg.get("output_head") == "affine"
            x = full
            if affine:  # the working resolution, as the engine's resizeArea (exact for whole factors)
                scale = self.cfg.get("working", {}).get("scale", 1)
                h, w = img.shape[:2]
                wh, ww = round(h * scale), round(w * scale)
                x = self.train.to_tensor(cv2.resize(img, (ww, wh), interpolation=cv2.INTER_AREA)[None]) \
                    if (h % wh or w % ww) else torch.nn.functional.avg_pool2d(full, (h // wh, w // ww))
            src = self.vae.encoder(x) * sf
            g = torch.Generator().manual_seed(self.seed)
            lat = torch.randn(src.shape, generator=g) * self.sched.init_noise_sigma
            self.sched.set_timesteps(self.cfg["steps"])
            for t in self.sched.timesteps:
                inp = torch.cat([self.sched.scale_model_input(lat, t), src], 1)
                pred = self.unet(inp, t, ctx).sample
                lat = self.sched.step(pred, t, lat).prev_sample
            out = self.vae.decoder(lat / sf)
            if affine:
                import model as nano
                out = nano.apply_affine(out, full)
            out = out.clamp(-1, 1)
        return ((out[0].permute(1, 2, 0).numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- metrics

def mse(a, b):
    return float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def psnr(a, b):
    return 10 * np.log10(255.0 ** 2 / max(mse(a, b), 1e-10))


def evaluate(engine, photos, prompts_per_style: dict, tag: str):
    """-> {style: (mean psnr, id accuracy)}"""
    refs = {name: {s: styles.apply(s, img) for s in styles.STYLE_NAMES} for name, img in photos}
    res = {}
    for s in styles.STYLE_NAMES:
        ps, hits, n = [], 0, 0
        for pi, prompt in enumerate(prompts_per_style[s]):
            for name, img in photos:
                out = engine(img, prompt, f"{tag}_{s}_{pi}_{name}")
                ps.append(psnr(out, refs[name][s]))
                d = {t: mse(out, refs[name][t]) for t in styles.STYLE_NAMES}
                hits += int(min(d, key=d.get) == s)
                n += 1
        res[s] = (float(np.mean(ps)), hits / n)
    return res


def temporal(engine, img, frames: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    noisy = [np.clip(img.astype(np.float64) + rng.normal(0, 2.0, img.shape), 0, 255).round().astype(np.uint8)
             for _ in range(frames)]
    res = {}
    for s in styles.STYLE_NAMES:
        prompt = styles.STYLES[s]["keys"][0]
        outs = [engine(f, prompt, f"temporal_{s}_{i}").astype(np.float64) for i, f in enumerate(noisy)]
        refs = [styles.apply(s, f).astype(np.float64) for f in noisy]
        m_out = np.mean([np.abs(a - b).mean() for a, b in zip(outs, outs[1:])])
        m_ref = np.mean([np.abs(a - b).mean() for a, b in zip(refs, refs[1:])])
        res[s] = (m_out, m_ref)
    return res


def export_checkpoint(path: str, folder: str) -> str:
    import torch
    import model as nano
    tok = nano.build_tokenizer()
    vae, unet, te = nano.build_models(tok, 0)
    ck = torch.load(path, weights_only=False)
    vae.load_state_dict(ck["vae"]); unet.load_state_dict(ck["unet"]); te.load_state_dict(ck["te"])
    print(f"checkpoint {path}: stage {ck['state']['stage']}, step {ck['state']['step']}")
    nano.write_folder(folder, vae.eval(), unet.eval(), te.eval(), tok)
    return folder


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/nano")
    ap.add_argument("--engine", choices=["swift", "torch"], default="swift")
    ap.add_argument("--tool", default=".build/release/stylize-tool")
    ap.add_argument("--size", type=parse_size, default=(256, 256), help="256 or WxH, e.g. 640x480")
    ap.add_argument("--photos", type=int, default=8)
    ap.add_argument("--unseen", type=int, default=3, help="unseen paraphrases per style")
    ap.add_argument("--temporal-frames", type=int, default=60, help="0 skips the temporal check")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="out/nano-eval")
    ap.add_argument("--checkpoint", help="evaluate a training checkpoint (train.py's checkpoint.pt) instead: "
                    "it is exported to --out/checkpoint-folder and run with --engine torch (mid-run previews)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    if a.checkpoint:
        a.model, a.engine = export_checkpoint(a.checkpoint, os.path.join(a.out, "checkpoint-folder")), "torch"
    engine = (SwiftEngine(a.model, a.tool, a.out, a.seed) if a.engine == "swift" else TorchEngine(a.model, a.seed))
    photos = load_photos(a.size, a.photos)
    print(f"{len(photos)} held-out photos at {a.size[0]}x{a.size[1]}: {', '.join(n for n, _ in photos)}; engine {a.engine}")

    seen = {s: [styles.STYLES[s]["keys"][0]] for s in styles.STYLE_NAMES}
    unseen = {s: styles.heldout_prompts(s)[::max(1, len(styles.heldout_prompts(s)) // a.unseen)][:a.unseen]
              for s in styles.STYLE_NAMES}
    r_seen = evaluate(engine, photos, seen, "seen")
    r_unseen = evaluate(engine, photos, unseen, "unseen")
    ok = True
    print(f"\n{'style':11s} {'PSNR':>7s} {'ID acc':>7s} | {'unseen PSNR':>11s} {'ID acc':>7s}")
    for s in styles.STYLE_NAMES:
        (p, acc), (pu, accu) = r_seen[s], r_unseen[s]
        print(f"{s:11s} {p:7.2f} {acc * 100:6.0f}% | {pu:11.2f} {accu * 100:6.0f}%")
        ok &= abs(p - pu) <= 2
    mp = np.mean([v[0] for v in r_seen.values()])
    ma = np.mean([v[1] for v in r_seen.values()])
    mpu = np.mean([v[0] for v in r_unseen.values()])
    mau = np.mean([v[1] for v in r_unseen.values()])
    print(f"{'mean':11s} {mp:7.2f} {ma * 100:6.1f}% | {mpu:11.2f} {mau * 100:6.1f}%")
    ok &= mp >= 20 and ma >= 0.9 and mau >= 0.9
    summary = dict(seen=r_seen, unseen=r_unseen, mean_psnr=mp, mean_id=ma, unseen_psnr=mpu, unseen_id=mau)
    if a.temporal_frames > 0:
        tr = temporal(engine, photos[0][1], a.temporal_frames)
        print(f"\ntemporal ({photos[0][0]}, {a.temporal_frames} frames, sigma 2/255): "
              "mean |out[t]-out[t-1]| vs reference")
        for s, (mo, mr) in tr.items():
            ratio = mo / max(mr, 1e-9)
            print(f"  {s:11s} output {mo:6.3f}  reference {mr:6.3f}  ratio {ratio:5.2f} "
                  f"{'ok' if ratio <= 1.5 else 'FAIL'}")
            ok &= ratio <= 1.5
        summary["temporal"] = tr
    with open(os.path.join(a.out, "eval.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print("\nacceptance:", "PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
