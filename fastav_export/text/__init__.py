"""Text in and out: the snapshot's tokenizer, its chat template, and the prompt ids with the
multimodal placeholder."""
