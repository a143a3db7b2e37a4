"""fastav-export: deploy FastAV token pruning for audio-visual LLM decoders.

The packages, in the order data flows through them (each imports only those before it;
`lint-imports` checks it):
  user_io -> contract (layout, pruning config, selection, schedule, FLOPs, graph I/O)
  -> models (registry, checkpoints) -> reference (the PyTorch reference)
  -> export (ONNX graphs) -> engine (manifest, build, limits)
  -> runtime (graph pipeline, backends, generation) -> api (the Python API)
  -> compare | serving | calibration | evaluation -> cli.

The Python API (docs/python.md) is `Engine` and `build`, imported on first use so that
`import fastav_export` stays light:

    import fastav_export
    engine_dir = fastav_export.build(model="videollama2-tiny")
    with fastav_export.Engine.open(engine_dir) as engine:
        print(engine.answer(video="clip.mp4", question="What is happening?").text)
"""

__version__ = "0.1.0"
__all__ = ["Engine", "AnswerRecord", "build", "__version__"]


# Where each public name lives. Imported by name on first use: every module of the package imports
# this one (for __version__), so a static import here would tie every layer to the top ones.
PUBLIC = {"Engine": "fastav_export.api.engine", "AnswerRecord": "fastav_export.api.engine",
          "build": "fastav_export.cli.build_command"}


def __getattr__(name: str):
    if name in PUBLIC:
        import importlib

        return getattr(importlib.import_module(PUBLIC[name]), name)
    raise AttributeError(f"module 'fastav_export' has no attribute {name!r}")
