"""Engine artifacts: the engine directory's manifest, the build that writes it, and the
limits a request must fit.

    manifest.py      config.json: what was built, versions, sha256; schema and integrity checks on load
    requests.py      check_request: one-line errors for what an engine cannot serve
    build.py         export (+ load check or TensorRT engines) into a partial directory, renamed at the end
    ort_sessions.py  ONNX Runtime sessions over an engine's graphs (the build's load check uses them too)
    trt/             TensorRT: profiles, engine build (Polygraphy), plugin library, environment checks
"""
