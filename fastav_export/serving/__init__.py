"""Serving an engine directory on Triton Inference Server.

    request.py      one request's tensors -> validated decoder input (no Triton needed)
    engine.py       an opened engine directory that streams greedy tokens per request
    repository.py   `fastav-export triton`: render a Triton model repository from templates
    tritonserver.py locate the `tritonserver` of the nvidia-pytriton wheel and launch it (as its parent)
    stub_watchdog.py   reload a model whose python-backend stub died; remove the stubs' leftover shared memory
    server_process.py  a tritonserver on loopback for tests and benchmarks (start, wait, stop)
    client.py       tritonclient inputs of one request
    scheduler.py    continuous batching: requests of different prompts decode together within a KV budget
    openai_api/     `fastav-export serve-openai`: the OpenAI-compatible HTTP front (FastAPI) of a tritonserver:
                    app.py (the routes), request.py (a chat completion body -> a validated request; media_urls.py
                    reads its video_url), objects.py (completion and chunk objects, usage), stop_strings.py,
                    errors.py (HTTP status + OpenAI's error fields), triton_forwarder.py (tritonclient's gRPC stream)
    templates/      config.pbtxt and the python-backend model.py (thin glue over engine.py)
"""
