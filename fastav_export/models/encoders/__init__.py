"""The encoders in front of the decoder, as torch modules with the real checkpoint key names.

    siglip_tower.py    transformers' SigLIP vision model, penultimate layer, `model.vision_tower.*`
    regnet_stage.py    the RegNet stage (timm's RegStage computation) the STC connector uses
    stc_connector.py   VideoLLaMA2.1's stc_connector_v35, `model.mm_projector.*`
    beats.py, beats_layers.py   BEATs, `model.audio_tower.*` (audio_tower.bin)
    audio_projector.py `mm_projector_a`, `model.mm_projector_a.*` (mm_projector_a.bin)
    salmonn_vision.py  video-SALMONN 2's SigLIP (26 layers) + mlp2x_gelu + 2 x 2 pool + image_newline
    salmonn_audio.py   video-SALMONN 2's Whisper encoder, ln_speech, window Q-Former, projections
    window_qformer.py  the BERT Q-Former with cross-attention, `speech_Qformer.bert.*`
"""
