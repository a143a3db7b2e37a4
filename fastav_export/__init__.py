"""fastav-export: deploy FastAV token pruning for audio-visual LLM decoders.

The pieces, in the order data flows through them:
  layout + pruning_config -> schedule/selection -> torch_backend (reference)
  -> generation (greedy loop, results) -> cli.
"""

__version__ = "0.1.0"
