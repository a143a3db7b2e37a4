"""VideoLLaMA2's SigLIP vision tower with the checkpoint's key names.

Upstream (DAMO-NLP-SG/VideoLLaMA2, branch `audio_visual`, videollama2/model/encoder.py and
videollama2_arch.py): `Videollama2MetaModel.vision_tower` is a `SiglipVisionTower` whose own
attribute `vision_tower` is a transformers `SiglipVisionModel` (transformers 4.x, where that
model keeps its transformer under `vision_model`). The model sits under `model.` in
`Videollama2Qwen2ForCausalLM`, so the checkpoint's keys read

    model.vision_tower.vision_tower.vision_model.{embeddings,encoder,post_layernorm,head}.*

`SiglipTower.state_dict()` keys are those keys less `CHECKPOINT_PREFIX` ("model.vision_tower.").

The tower returns `hidden_states[select_layer]` (`mm_vision_select_layer`, -2 for
VideoLLaMA2.1: the output of the penultimate encoder layer, before `post_layernorm`), every
patch token (`mm_vision_select_feature` "patch": SigLIP has no CLS token to drop).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ...errors import FastAVError

# Checkpoint key = CHECKPOINT_PREFIX + SiglipTower key.
CHECKPOINT_PREFIX = "model.vision_tower."
DEFAULT_SELECT_LAYER = -2  # mm_vision_select_layer of VideoLLaMA2.1-7B-AV


def real_siglip_config():
    """google/siglip-so400m-patch14-384: 27 layers of width 1152, 729 patches (27 x 27) per 384 px frame."""
    from transformers import SiglipVisionConfig

    return SiglipVisionConfig(
        hidden_size=1152, intermediate_size=4304, num_hidden_layers=27, num_attention_heads=16,
        image_size=384, patch_size=14, num_channels=3, hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6,
    )


def tiny_siglip_config():
    """A tiny tower for tests: 48 px frames in 8 px patches -> 6 x 6 = 36 patches of width 32."""
    from transformers import SiglipVisionConfig

    return SiglipVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        image_size=48, patch_size=8, num_channels=3, hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6,
    )


def check_frames(pixel_values: torch.Tensor, config) -> None:
    """Frames must be [F, channels, image_size, image_size]: the position table has one size."""
    size, channels = config.image_size, config.num_channels
    if pixel_values.dim() != 4 or pixel_values.shape[1] != channels:
        raise FastAVError(f"vision tower input has shape {tuple(pixel_values.shape)}: "
                          f"pass frames as [frames, {channels}, {size}, {size}]")
    if pixel_values.shape[2] != size or pixel_values.shape[3] != size:
        raise FastAVError(f"vision tower input frames are {pixel_values.shape[2]} x {pixel_values.shape[3]} px: "
                          f"resize them to {size} x {size}")


class _VisionModelHolder(nn.Module):
    """Puts a (transformers 5.x, flattened) SiglipVisionModel under `vision_model`, where 4.x kept it."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.vision_model = model


class SiglipTower(nn.Module):
    """Frames -> the patch features of one hidden layer of a SigLIP vision transformer.

    forward(pixel_values [F, 3, S, S]) -> [F, P, C], P = (S // patch)^2, C = hidden_size.

    Only the layers the selected hidden state depends on run: with select_layer=-2 the last
    encoder layer, `post_layernorm` and the attention-pooling `head` are skipped. They stay in
    the module (so a checkpoint loads with strict key matching) but no op reads them, so a
    graph exported from `forward` (or from `truncated()`, which holds only the used weights)
    carries neither their compute nor their weights.
    """

    def __init__(self, config=None, select_layer: int = DEFAULT_SELECT_LAYER, attn_implementation: str = "sdpa"):
        super().__init__()
        from transformers import SiglipVisionModel

        config = copy.deepcopy(config) if config is not None else real_siglip_config()  # we set a field on it
        config._attn_implementation = attn_implementation
        total = config.num_hidden_layers
        # hidden_states holds the embeddings then each layer's output: N + 1 entries.
        run = total + 1 + select_layer if select_layer < 0 else select_layer
        if not 0 <= run <= total:
            raise FastAVError(f"mm_vision_select_layer {select_layer} is outside the {total}-layer vision tower: "
                              f"use a value in [-{total + 1}, {total}]")
        model = SiglipVisionModel(config)
        # transformers 4.x keeps the transformer under `vision_model`; 5.x flattened it.
        self.vision_tower = model if hasattr(model, "vision_model") else _VisionModelHolder(model)
        self.config = config
        self.select_layer = select_layer
        self.layers_run = run

    @property
    def hf_model(self) -> nn.Module:
        """The wrapped transformers SiglipVisionModel (callable with output_hidden_states=True)."""
        return self.vision_tower if hasattr(self.vision_tower, "config") else self.vision_tower.vision_model

    @property
    def transformer(self) -> nn.Module:
        """The module that owns `embeddings`, `encoder`, `post_layernorm` and `head`."""
        return self.vision_tower.vision_model

    @property
    def num_patches(self) -> int:
        return (self.config.image_size // self.config.patch_size) ** 2

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """[F, 3, S, S] -> hidden_states[select_layer]: [F, P, C]."""
        check_frames(pixel_values, self.config)
        transformer = self.transformer
        hidden = transformer.embeddings(pixel_values)
        for layer in transformer.encoder.layers[: self.layers_run]:
            hidden = layer(hidden, None)  # no attention mask: every patch sees every patch
        return hidden

    def forward_reference(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Upstream's path: the whole model with output_hidden_states=True, then pick one entry."""
        check_frames(pixel_values, self.config)
        return self.hf_model(pixel_values, output_hidden_states=True).hidden_states[self.select_layer]

    def truncated(self) -> nn.Module:
        """A module sharing (not copying) the weights `forward` uses and no others.

        For torch.export of the real tower: its ExportedProgram then holds no copy of the unused
        last layer, post_layernorm and head (the ONNX exporter's optimizer drops unused
        initializers either way, so exporting `self` gives the same ONNX graph).
        """
        return _TruncatedSiglip(self)


class _TruncatedSiglip(nn.Module):
    """embeddings + the first `layers_run` encoder layers; forward as SiglipTower.forward."""

    def __init__(self, tower: SiglipTower):
        super().__init__()
        transformer = tower.transformer
        self.embeddings = transformer.embeddings
        self.layers = nn.ModuleList(transformer.encoder.layers[: tower.layers_run])
        self.config = tower.config
        self.train(tower.training)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        check_frames(pixel_values, self.config)
        hidden = self.embeddings(pixel_values)
        for layer in self.layers:
            hidden = layer(hidden, None)
        return hidden
