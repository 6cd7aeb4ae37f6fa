#!/usr/bin/env python3
"""OpenVINO reference timing for the same model folders and shapes `stylize-tool bench` uses
(tools/bench/compare.sh --openvino interleaves both and prints the ratio).

Developer-only (needs the tools venv with openvino, torch and diffusers). Loads the diffusers
component folder (e.g. one written by `stylize-tool init-random`) with diffusers, converts
the module `stylize-tool bench COMPONENT` times with openvino.convert_model:

    unet        unet(sample, t, encoder_hidden_states, return_dict=False)[0]
    vae-encode  AutoencoderTiny.encoder(image)   (= encode(x).latents, what our codec's encode runs)
    vae-decode  AutoencoderTiny.decoder(latent)  (= decode(z).sample)

caches the IR (openvino.save_model, f32 weights) in --ir-cache (default: openvino-ir/ next to
the model folder; reconverted when the folder's weights are newer), reshapes it to the static
shapes asked for, compiles it for CPU with INFERENCE_NUM_THREADS and PERFORMANCE_HINT LATENCY,
runs one warm-up infer and prints the median of --repeats timed infers in the lines
torch_reference.py and `stylize-tool bench` print:

    .venv-tools/bin/python tools/bench/openvino_reference.py unet --model out/bench-models/sd15-unet --batch 4 --size 256x256 --threads 2

--precision default leaves INFERENCE_PRECISION_HINT to OpenVINO (bf16 on CPUs with
AVX512_BF16 or AMX, f32 elsewhere); --precision f32 forces f32 arithmetic like ours.
The `precision` line says which one ran. Converting the SD 1.5 U-Net takes ~40 s and ~8 GB.
"""
import argparse
import glob
import json
import os
import statistics
import sys
import time

import numpy as np


def ir_path(a):
    model = os.path.abspath(a.model.rstrip("/"))
    cache = a.ir_cache or os.path.join(os.path.dirname(model), "openvino-ir")
    return os.path.join(cache, f"{os.path.basename(model)}-{a.component}.xml")


def weights_mtime(folder):
    files = glob.glob(os.path.join(folder, "*.safetensors")) + [os.path.join(folder, "config.json")]
    return max(os.path.getmtime(f) for f in files if os.path.exists(f))


def convert(a, config, path):
    """diffusers module → OpenVINO IR at `path` (dynamic shapes, f32 weights)."""
    import torch
    import openvino as ov

    torch.set_num_threads(a.threads)
    g = torch.Generator().manual_seed(1)
    if a.component == "unet":
        from diffusers import UNet2DConditionModel
        unet = UNet2DConditionModel.from_pretrained(a.model, torch_dtype=torch.float32).eval()
        if config.get("addition_embed_type") or config.get("time_cond_proj_dim"):
            sys.exit("openvino_reference.py: only plain (SD 1.x/2.x-style) U-Nets")

        class Wrapper(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, sample, timestep, encoder_hidden_states):
                return self.m(sample, timestep, encoder_hidden_states, return_dict=False)[0]

        d = config.get("encoder_hid_dim") or config.get("cross_attention_dim", 1280)
        d = d if isinstance(d, int) else d[0]
        example = (torch.randn(1, config.get("in_channels", 4), 32, 32, generator=g),
                   torch.full((1,), 999, dtype=torch.long),
                   torch.randn(1, a.tokens, d, generator=g))
        wrapper = Wrapper(unet)
    else:
        from diffusers import AutoencoderTiny
        vae = AutoencoderTiny.from_pretrained(a.model, torch_dtype=torch.float32).eval()

        class Wrapper(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, x):
                return self.m(x)

        if a.component == "vae-encode":
            wrapper = Wrapper(vae.encoder)
            example = (torch.rand(1, config.get("in_channels", 3), 64, 64, generator=g) * 2 - 1,)
        else:
            wrapper = Wrapper(vae.decoder)
            example = (torch.randn(1, config.get("latent_channels", 4), 8, 8, generator=g),)
    t0 = time.perf_counter()
    with torch.no_grad():
        m = ov.convert_model(wrapper, example_input=example)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    ov.save_model(m, path, compress_to_fp16=False)
    print(f"openvino_reference.py: converted {a.component} to {path} in {time.perf_counter() - t0:.1f} s",
          file=sys.stderr)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("component", choices=["unet", "vae-encode", "vae-decode"])
    p.add_argument("--model", required=True)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--size", default="256x256")
    p.add_argument("--tokens", type=int, default=77)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--precision", choices=["default", "f32", "bf16"], default="default",
                   help="INFERENCE_PRECISION_HINT (default: OpenVINO's own choice for this CPU)")
    p.add_argument("--ir-cache", default=None, help="folder for converted IR (default: openvino-ir/ beside --model)")
    a = p.parse_args()
    h, w = (int(v) for v in a.size.lower().split("x"))
    config = json.load(open(os.path.join(a.model, "config.json")))
    if a.component != "unet" and config.get("_class_name") != "AutoencoderTiny":
        sys.exit("openvino_reference.py: vae-encode / vae-decode need an AutoencoderTiny folder")

    path = ir_path(a)
    if not os.path.exists(path) or os.path.getmtime(path) < weights_mtime(a.model):
        convert(a, config, path)

    import openvino as ov
    core = ov.Core()
    model = core.read_model(path)
    rng = np.random.default_rng(1)
    if a.component == "unet":
        d = config.get("encoder_hid_dim") or config.get("cross_attention_dim", 1280)
        d = d if isinstance(d, int) else d[0]
        inputs = [rng.standard_normal((a.batch, config.get("in_channels", 4), h // 8, w // 8), dtype=np.float32),
                  np.full((a.batch,), 999, dtype=np.int64),
                  rng.standard_normal((a.batch, a.tokens, d), dtype=np.float32)]
    elif a.component == "vae-encode":
        inputs = [rng.random((a.batch, config.get("in_channels", 3), h, w), dtype=np.float32) * 2 - 1]
    else:
        s = 2 ** (len(config.get("num_encoder_blocks", [1, 3, 3, 3])) - 1)
        inputs = [rng.standard_normal((a.batch, config.get("latent_channels", 4), h // s, w // s), dtype=np.float32)]
    model.reshape({model.input(i): ov.PartialShape(list(x.shape)) for i, x in enumerate(inputs)})
    props = {"INFERENCE_NUM_THREADS": a.threads, "PERFORMANCE_HINT": "LATENCY"}
    if a.precision != "default":
        props["INFERENCE_PRECISION_HINT"] = a.precision
    t0 = time.perf_counter()
    compiled = core.compile_model(model, "CPU", props)
    compile_s = time.perf_counter() - t0
    req = compiled.create_infer_request()
    req.infer(inputs, share_inputs=True)  # warm-up
    times = []
    for _ in range(max(1, a.repeats)):
        t0 = time.perf_counter()
        req.infer(inputs, share_inputs=True)
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    # The same lines as `stylize-tool bench`, so one parser reads both.
    print(f"component     {a.component}  ({a.model}), openvino {ov.__version__}, IR {path}")
    print(f"shape         batch {a.batch}, {h}x{w}" + (f", {a.tokens} tokens" if a.component == "unet" else ""))
    print(f"threads       {compiled.get_property('INFERENCE_NUM_THREADS')}")
    print(f"precision     {compiled.get_property('INFERENCE_PRECISION_HINT').get_type_name()} (asked: {a.precision}); "
          f"compile {compile_s:.1f} s")
    print(f"time/call     {med:.3f} s median (min {min(times):.3f}, max {max(times):.3f}, {len(times)} runs); "
          f"{med / a.batch:.3f} s per frame")


if __name__ == "__main__":
    main()
