"""VideoLLaMA2.1-7B-AV: SigLIP + STC connector video rows, then BEATs audio rows, on a Qwen2 decoder.

    spec.py            the registered models: dims, layout rule, preset, media settings, num_frames
    family.py          the `Family` object (checkpoint frames, encoders + tokenizer, media rules)
    media.py           its audio features: the log-mel filterbank ("fbank")
    encoders.py        the vision and audio encoders: shapes, random weights, snapshot loading
    stc_connector.py, regnet_stage.py   stc_connector_v35 (`model.mm_projector.*`) and its RegNet stages
    beats.py, beats_layers.py           BEATs (`model.audio_tower.*`, audio_tower.bin)
    audio_projector.py `mm_projector_a` (`model.mm_projector_a.*`, mm_projector_a.bin)
    tiny_snapshot.py   a tiny snapshot on disk with the real key names (tests)
"""

from ..base import register_family
from ..media_rules import register_audio_features
from . import spec  # noqa: F401  (registers the specs)
from .family import VideoLLaMA2Family
from .media import FilterbankFeatures

FAMILY = register_family(VideoLLaMA2Family())
register_audio_features(FilterbankFeatures())
