"""Media in: decode a video file's frames and audio track (PyAV) and turn them into the
tensors a model's encoders take (the model's own image processing, log-mel filterbanks).

    settings.py    VideoSettings, AudioSettings: what a model's preprocessing needs (in the manifest)
    decode.py      PyAV: uniformly sampled RGB frames, the mono 16 kHz waveform; paths or bytes
    frames.py      upstream's frame sampling, pad-to-square, SigLIP's image processing
    filterbank.py  the Kaldi log-mel filterbank, upstream's audio windows (8 x 2 s clips of a track)
    sample_clip.py the sample clip (`fastav-export sample-clip`): moving coloured frames, a 440 Hz tone
"""
