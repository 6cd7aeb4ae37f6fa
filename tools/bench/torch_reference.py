#!/usr/bin/env python3
"""PyTorch reference timing for the same model folders and shapes `stylize-tool bench` uses
(tools/bench/compare.sh runs both and prints the ratio).

Developer-only (needs the tools venv: torch + diffusers, see tools/fixtures/requirements.txt).
Loads a diffusers component folder (e.g. one written by `stylize-tool init-random`), runs
the same call as `stylize-tool bench COMPONENT --batch B --size HxW`, and prints the median
time per call, so the two can be compared on the same machine, weights and thread count:

    .venv-tools/bin/python tools/bench/torch_reference.py unet --model out/sd15-unet --batch 4 --size 256x256 --threads 2
"""
import argparse
import json
import os
import statistics
import time

import torch


def text_encoder_call(a, config, g):
    """Same inputs as `stylize-tool bench text-encoder`: random text ids, and with --image a
    random picture through the model's image processor behind <vision_start> image pads <vision_end>."""
    mt = config.get("model_type", "")
    if mt == "qwen3_vl":
        from transformers import Qwen3VLModel as cls
    elif mt == "qwen3":
        from transformers import Qwen3Model as cls
    else:
        from transformers import CLIPTextModel as cls
    model = cls.from_pretrained(a.model, torch_dtype=torch.float32).eval()
    vocab = (config.get("text_config") or config).get("vocab_size", 49408)
    ids = torch.randint(0, min(vocab, 100000), (a.batch, a.tokens), generator=g)
    kwargs = {}
    if a.image:
        from PIL import Image
        from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
        h, w = (int(v) for v in a.image.lower().split("x"))
        proc = Qwen2VLImageProcessor.from_pretrained(a.model)
        pixels = torch.randint(0, 256, (h, w, 3), generator=g, dtype=torch.uint8).numpy()
        pre = proc(images=[Image.fromarray(pixels)] * a.batch, return_tensors="pt")
        n = int(pre["image_grid_thw"][0].prod()) // 4
        vis = torch.tensor([config["vision_start_token_id"]] + [config["image_token_id"]] * n + [config["vision_end_token_id"]])
        ids = torch.cat([vis.expand(a.batch, -1), ids], dim=1)
        kwargs = dict(pixel_values=pre["pixel_values"], image_grid_thw=pre["image_grid_thw"],
                      mm_token_type_ids=(ids == config["image_token_id"]).long())
    return lambda: model(input_ids=ids, output_hidden_states=True, **kwargs).last_hidden_state


def main():
    p = argparse.ArgumentParser()
    p.add_argument("component", choices=["unet", "vae-encode", "vae-decode", "text-encoder"])
    p.add_argument("--model", required=True)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--size", default="256x256")
    p.add_argument("--tokens", type=int, default=77)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--image", default=None, help="text-encoder (Qwen3-VL): one random image of HxW per prompt")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    h, w = (int(v) for v in a.size.lower().split("x"))
    g = torch.Generator().manual_seed(1)
    config = json.load(open(os.path.join(a.model, "config.json")))

    if a.component == "text-encoder":
        call = text_encoder_call(a, config, g)
    elif a.component == "unet":
        from diffusers import UNet2DConditionModel
        model = UNet2DConditionModel.from_pretrained(a.model, torch_dtype=torch.float32).eval()
        d = config.get("encoder_hid_dim") or config.get("cross_attention_dim", 1280)
        d = d if isinstance(d, int) else d[0]
        sample = torch.randn(a.batch, config.get("in_channels", 4), h // 8, w // 8, generator=g)
        ehs = torch.randn(a.batch, a.tokens, d, generator=g)
        t = torch.full((a.batch,), 999, dtype=torch.long)
        kwargs = {}
        if config.get("addition_embed_type") == "text_time":
            ted = config["projection_class_embeddings_input_dim"] - 6 * config["addition_time_embed_dim"]
            kwargs["added_cond_kwargs"] = {"text_embeds": torch.randn(a.batch, ted, generator=g),
                                           "time_ids": torch.randn(a.batch, 6, generator=g)}
        if config.get("time_cond_proj_dim"):
            kwargs["timestep_cond"] = torch.randn(a.batch, config["time_cond_proj_dim"], generator=g)
        call = lambda: model(sample, t, ehs, **kwargs).sample
    else:
        from diffusers import AutoencoderTiny
        model = AutoencoderTiny.from_pretrained(a.model, torch_dtype=torch.float32).eval()
        if a.component == "vae-encode":
            x = torch.rand(a.batch, config.get("in_channels", 3), h, w, generator=g) * 2 - 1
            call = lambda: model.encode(x).latents
        else:
            s = 2 ** (len(config.get("num_encoder_blocks", [1, 3, 3, 3])) - 1)
            z = torch.randn(a.batch, config.get("latent_channels", 4), h // s, w // s, generator=g)
            call = lambda: model.decode(z).sample

    times = []
    with torch.inference_mode():
        call()  # warm-up
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            call()
            times.append(time.perf_counter() - t0)
    shape = f"{a.tokens} tokens" + (f" + {a.image} image" if a.image else "") if a.component == "text-encoder" else f"{h}x{w}"
    # The same lines as `stylize-tool bench`, so one parser reads both.
    med = statistics.median(times)
    print(f"component     {a.component}  ({a.model}), torch {torch.__version__}")
    print(f"shape         batch {a.batch}, {shape}")
    print(f"threads       {a.threads}")
    print(f"time/call     {med:.3f} s median (min {min(times):.3f}, max {max(times):.3f}, {len(times)} runs); "
          f"{med / a.batch:.3f} s per frame")


if __name__ == "__main__":
    main()
