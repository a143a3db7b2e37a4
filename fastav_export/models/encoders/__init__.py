"""The encoders in front of the decoder, as torch modules with the real checkpoint key names."""
