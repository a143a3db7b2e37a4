"""Media in: decode a video file's frames and audio track (PyAV) and turn them into the
tensors a model's encoders take (the model's own image processing, log-mel filterbanks)."""
