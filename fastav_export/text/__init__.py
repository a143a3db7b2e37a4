"""Text in and out: the snapshot's tokenizer, its chat template, and the prompt ids with the
multimodal placeholder.

    tokenizer.py       a local snapshot's tokenizer, end-of-turn ids, the answer's text
    prompt.py          the chat template around `<video>\\n` + question, split at the placeholder
    tiny_tokenizer.py  the tiny seed models' byte-level Qwen2-style tokenizer, built offline
"""
