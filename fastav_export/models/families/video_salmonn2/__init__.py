"""video-SALMONN 2: SigLIP frames and Whisper + window Q-Former audio, interleaved per frame, on Qwen2.

    spec.py            the registered models, `SalmonnOptions` (what the public scripts set), the interleave rule
    family.py          the `Family` object (options, encoders + tokenizer, longest prompt, media rules)
    media.py           Whisper features of the clip's span, the per-frame layout of each clip
    encoders.py        the vision and audio encoders: shapes, random weights, snapshot loading
    salmonn_vision.py  SigLIP (26 layers) + mlp2x_gelu + 2 x 2 pool + image_newline
    salmonn_audio.py   Whisper encoder, ln_speech, window Q-Former, projections
    window_qformer.py  the BERT Q-Former with cross-attention, `speech_Qformer.bert.*`
    tiny_snapshot.py   a tiny snapshot on disk with the real key names (tests)
"""

from ..base import register_family
from ..media_rules import register_audio_features
from . import spec  # noqa: F401  (registers the specs)
from .family import VideoSalmonn2Family
from .media import WhisperFeatures

FAMILY = register_family(VideoSalmonn2Family())
register_audio_features(WhisperFeatures())
