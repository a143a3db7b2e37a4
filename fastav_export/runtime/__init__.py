"""Running an engine directory: one graph pipeline for every engine backend.

    graph_pipeline.py  prefill/decode over an engine's graphs (KV buffers, cuts, the decode step)
    backends.py        opens an engine's runtime (TensorRT or ONNX Runtime)
    generation.py      the greedy loop and the result/JSON every backend reports
    embedding.py       the embedding table inside an engine's embed graph
    bench.py           timing rounds and per-round peak RSS (`fastav-export bench`, benchmarks/peers.py)
    ort/graphs.py      OrtGraphs: each graph run by an ONNX Runtime session on CPU tensors
    trt/graphs.py      TrtGraphs: TensorRT execution contexts on CUDA tensors, CUDA-graph decode

The media path (a video and a question in, an answer out):
    front_end.py       FrontEnd: media + question -> Prompt (from an engine directory or torch modules)
    media_inputs.py    decode + preprocess one clip (frames, filterbank), timed
    encoders.py        TorchEncoders / OrtEncoders: the vision and audio encoders, one interface
    prompt_embeds.py   Prompt: input ids with placeholders, encoder rows, the splice into inputs_embeds
    answer.py          greedy decoding to the end of the turn, the text and per-stage seconds
"""
