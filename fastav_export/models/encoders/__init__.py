"""The encoders in front of the decoder, as torch modules with the real checkpoint key names.

    siglip_tower.py    transformers' SigLIP vision model, penultimate layer, `model.vision_tower.*`
    regnet_stage.py    the RegNet stage (timm's RegStage computation) the STC connector uses
    stc_connector.py   VideoLLaMA2.1's stc_connector_v35, `model.mm_projector.*`
    beats.py, beats_layers.py   BEATs, `model.audio_tower.*` (audio_tower.bin)
    audio_projector.py `mm_projector_a`, `model.mm_projector_a.*` (mm_projector_a.bin)
"""
