"""fastav-export: deploy FastAV token pruning for audio-visual LLM decoders.

The packages, in the order data flows through them (each imports only those before it;
`lint-imports` checks it):
  user_io -> contract (layout, pruning config, selection, schedule, FLOPs, graph I/O)
  -> models (registry, checkpoints) -> reference (the PyTorch reference)
  -> export (ONNX graphs) -> engine (manifest, build, limits)
  -> runtime (graph pipeline, backends, generation) -> compare | serving -> cli.
"""

__version__ = "0.1.0"
