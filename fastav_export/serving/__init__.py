"""Serving an engine directory on Triton Inference Server.

    request.py      one request's tensors -> validated decoder input (no Triton needed)
    engine.py       an opened engine directory that streams greedy tokens per request
    repository.py   `fastav-export triton`: render a Triton model repository from templates
    tritonserver.py locate the `tritonserver` of the nvidia-pytriton wheel and launch it (as its parent)
    stub_watchdog.py   reload a model whose python-backend stub died; remove the stubs' leftover shared memory
    server_process.py  a tritonserver on loopback for tests and benchmarks (start, wait, stop)
    client.py       tritonclient inputs of one request
    templates/      config.pbtxt and the python-backend model.py (thin glue over engine.py)
"""
