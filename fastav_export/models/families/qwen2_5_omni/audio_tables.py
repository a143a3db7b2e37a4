"""The audio tower's size-dependent tables, computed in Python from the feature length by transformers' helpers.

Qwen2.5-Omni's audio encoder cuts the log-mel features [M, T] into chunks of 2 * n_window frames (the last
one shorter), pads them to one length, runs the convolutions per chunk, keeps the valid frames, lets each
chunk attend within itself and average-pools pairs at the end. Its forward accepts the chunked features
and each table precomputed under these names; the exported graph takes them as inputs (one clip):

| name | shape | dtype | meaning |
|---|---|---|---|
| padded_features | [C, M, L] | float32 | the chunks, right-padded to the longest (L = min(T, 2 * n_window)) |
| chunk_lengths | [C] | int64 | frames of each chunk before padding |
| valid_indices | [V] | int64 | rows of the flattened [C * L', D] conv output that are real frames (L' = (L - 1) // 2 + 1) |
| pool_indices | [A] | int64 | first row of each averaged pair of the V frames |
| cu_seqlens | [C + 1] | int32 | chunk boundaries among the V frames, for attention |

V = sum over chunks of (length - 1) // 2 + 1 = ceil(T / 2) (every chunk but the last has an even length)
and A = (V - 2) // 2 + 1, the number of audio tokens.
"""

from __future__ import annotations

import numpy as np
import torch

from ....errors import FastAVError

AUDIO_TABLE_NAMES = ("chunk_lengths", "valid_indices", "pool_indices", "cu_seqlens")
# Fewer frames than this leave no pair to pool after the stride-2 convolution: no audio token at all.
MIN_FEATURE_FRAMES = 3


def _check_length(feature_length) -> int:
    if isinstance(feature_length, bool) or not isinstance(feature_length, (int, np.integer)):
        raise FastAVError(f"audio feature length must be an integer, got {feature_length!r}")
    if feature_length < MIN_FEATURE_FRAMES:
        raise FastAVError(f"audio needs at least {MIN_FEATURE_FRAMES} feature frames, got {feature_length}")
    return int(feature_length)


def audio_tables(feature_length: int, config) -> dict[str, np.ndarray]:
    """The tables of `AUDIO_TABLE_NAMES` for one clip of `feature_length` log-mel frames, with `config` a
    `Qwen2_5OmniAudioEncoderConfig`; computed by the helpers the encoder's forward calls."""
    from transformers.models.qwen2_5_omni.modeling_qwen2_5_omni import (
        chunk_and_pad_features,
        get_audio_cu_seqlens,
        get_pool_indices,
        get_valid_indices,
    )

    length = _check_length(feature_length)
    lengths = torch.tensor([length])
    # The chunk lengths depend on the length only; a one-row stand-in lets transformers cut it.
    _, chunk_lengths = chunk_and_pad_features(torch.zeros(1, length), lengths, config.n_window)
    return {
        "chunk_lengths": chunk_lengths.numpy().astype(np.int64),
        "valid_indices": get_valid_indices(chunk_lengths).numpy().astype(np.int64),
        "pool_indices": get_pool_indices(lengths).numpy().astype(np.int64),
        "cu_seqlens": get_audio_cu_seqlens(chunk_lengths).numpy().astype(np.int32),
    }


def chunk_audio_features(input_features, config) -> np.ndarray:
    """One clip's log-mel features [M, T] -> padded chunks [C, M, L] (float32), cut as the encoder cuts them."""
    from transformers.models.qwen2_5_omni.modeling_qwen2_5_omni import (
        chunk_and_pad_features,
    )

    features = torch.as_tensor(np.asarray(input_features, dtype=np.float32))
    if features.ndim != 2 or features.shape[0] != config.num_mel_bins:
        raise FastAVError(f"audio features must be [{config.num_mel_bins}, frames] log-mel, got "
                          f"{tuple(features.shape)}")
    length = _check_length(features.shape[1])
    padded, _ = chunk_and_pad_features(features, torch.tensor([length]), config.n_window)
    return padded.numpy()


def audio_graph_inputs(input_features, config) -> dict[str, np.ndarray]:
    """The audio graph's feeds for one clip's log-mel features [M, T]: the padded chunks and the tables."""
    padded = chunk_audio_features(input_features, config)
    return {"padded_features": padded, **audio_tables(np.asarray(input_features).shape[1], config)}
