"""ONNX export: the decoder as FastAV's graphs, FastAV's own ops, and the media encoders.

    onnx_graphs.py            embed, pre, post_K..post_{L-1} through the dynamo exporter, named and checked
    layer_graphs.py           the modules each graph is traced from (cuts inside the layers)
    custom_ops.py             fused attention, TopKGather and RolloutStep as custom ops, and their translations
    topk_gather.py, topk_gather_algorithm.py, rollout_function.py   the ONNX functions of FastAV's ops
    encoder_graphs.py         the vision and audio encoders as static fp32 graphs
"""
