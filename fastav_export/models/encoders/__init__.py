"""Encoders more than one family uses, as torch modules with the real checkpoint key names.

    siglip_tower.py     transformers' SigLIP vision model, penultimate layer, `model.vision_tower.*`
    siglip_snapshot.py  where a snapshot's SigLIP tower comes from (shards, `mm_vision_tower`, --vision-tower)

A family's own encoders live in its folder (`models/families/<name>/`).
"""
