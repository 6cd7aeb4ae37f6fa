"""MLServer runtime serving a stylize model folder's text encoder over the Open Inference
Protocol (KServe v2), for elements and relays with `conditioning-server` set.

The element tokenizes the prompt and prepares the frame's pixels itself (exactly as for
its local encoder) and sends

    input_ids       [B, T]                INT64
    attention_mask  [B, T]                INT64
    pixel_values    [patches, C*Tp*P*P]   FP32   (vision-aware encoders, with a frame)
    image_grid_thw  [N, 3]                INT64  (the same)

and asks for `conditioning` [B, T - drop_first, hidden * len(hidden_layers)] FP32: the
encoder's hidden states selected and cut as the folder's stylize.json "text_encoder" says
(`hidden_layers`, default [-1] = the final output; `drop_first`, default 0), which is what
the element's local encoder computes (Sources/StylizeModels/Conditioning/
ConditioningEncoder.swift).

model-settings.json (one per model folder):

    {"name": "nano", "implementation": "stylize_encoder.StylizeTextEncoder",
     "parameters": {"uri": "/models/nano"}}

and `mlserver start DIR` with this file on PYTHONPATH (deploy/encoder/Dockerfile).
"""
from __future__ import annotations

import json
import os

import numpy as np
import torch
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.errors import MLServerError
from mlserver.types import InferenceRequest, InferenceResponse


class StylizeTextEncoder(MLModel):
    async def load(self) -> bool:
        folder = self.settings.parameters.uri if self.settings.parameters else None
        if not folder or not os.path.isdir(os.path.join(folder, "text_encoder")):
            raise MLServerError(f"{self.name}: parameters.uri must be a stylize model folder with text_encoder/ (got {folder!r})")
        from transformers import AutoModel

        spec = {}
        stylize_json = os.path.join(folder, "stylize.json")
        if os.path.exists(stylize_json):
            with open(stylize_json) as f:
                spec = json.load(f).get("text_encoder", {})
        self.hidden_layers = list(spec.get("hidden_layers", [-1]))
        self.drop_first = int(spec.get("drop_first", 0))
        torch.set_num_threads(int(os.environ.get("STYLIZE_ENCODER_THREADS", os.cpu_count() or 1)))
        self.encoder = AutoModel.from_pretrained(os.path.join(folder, "text_encoder")).float().eval()
        self.takes_images = hasattr(self.encoder, "visual")
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        given = {i.name: NumpyCodec.decode_input(i) for i in payload.inputs}
        for name in ("input_ids", "attention_mask"):
            if name not in given:
                raise MLServerError(f"missing input '{name}'", status_code=400)
        kwargs = {"input_ids": torch.from_numpy(np.asarray(given["input_ids"], dtype=np.int64)),
                  "attention_mask": torch.from_numpy(np.asarray(given["attention_mask"], dtype=np.int64))}
        if "pixel_values" in given:
            if not self.takes_images:
                raise MLServerError(f"{self.name}'s encoder does not take images", status_code=400)
            kwargs["pixel_values"] = torch.from_numpy(np.asarray(given["pixel_values"], dtype=np.float32))
            kwargs["image_grid_thw"] = torch.from_numpy(np.asarray(given["image_grid_thw"], dtype=np.int64))
            # What transformers' processor returns beside input_ids (1 = image token), for M-RoPE.
            kwargs["mm_token_type_ids"] = (kwargs["input_ids"] == self.encoder.config.image_token_id).long()
        with torch.no_grad():
            out = self.encoder(**kwargs, output_hidden_states=True)
        states = out.hidden_states
        selected = []
        for index in self.hidden_layers:
            i = index + len(states) if index < 0 else index
            if not 0 <= i < len(states):
                raise MLServerError(f"hidden layer {index} is outside the encoder's {len(states)} states")
            # -1 is the final output (after CLIP's final LayerNorm; Qwen's hidden states end normed).
            selected.append(out.last_hidden_state if i == len(states) - 1 else states[i])
        conditioning = torch.cat(selected, dim=-1)[:, self.drop_first:, :].float().numpy()
        return InferenceResponse(model_name=self.name, id=payload.id,
                                 outputs=[NumpyCodec.encode_output("conditioning", conditioning)])
