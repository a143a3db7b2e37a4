"""Accuracy comparisons with Polygraphy: whole pipelines, then single graphs.

    reference_model.py    the PyTorch reference an engine was built from (seeded or checkpoint weights)
    runners.py            Polygraphy runners for the whole pipeline (torch reference, ORT, TRT)
    feeds.py              the inputs: seeded synthetic embeddings, or Polygraphy input JSON
    session.py            one comparison: Comparator.run + compare_accuracy, then per graph; the report
    tolerances.py         default per-output tolerances per precision, and the compare function
    torch_graphs.py       every graph of an engine computed by the torch modules it was exported from
    graph_data.py         record each graph call and save it in Polygraphy's JSON formats
    graph_replay.py       the reference's graph calls replayed on the engine: the first graph that diverges
    source_graphs.py      the onnx/ files an engine is built from, run as `polygraphy run --onnxrt` runs them
    polygraphy_plugin.py  `polygraphy run ENGINE_DIR --fastav ...` through `polygraphy.run.plugins`

Nothing here is imported by `fastav_export` itself: Polygraphy is an optional extra.
"""
