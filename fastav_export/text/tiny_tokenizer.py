"""A tiny Qwen2-style tokenizer for the tests and the tiny seed models, built offline.

`write_tiny_tokenizer(directory)` saves tokenizer.json + tokenizer_config.json that
`fastav_export.text.tokenizer.load_tokenizer` (AutoTokenizer) loads like a real Qwen2 snapshot:

* the same pipeline as Qwen2: NFC normalizer, byte-level pre-tokenizer and decoder, BPE model
  (here without merges: one token per UTF-8 byte), so any valid UTF-8 text round-trips and
  transformers 5, which rebuilds `Qwen2Tokenizer` from the vocabulary with its own byte-level
  pipeline, gives the same ids as the tokenizer.json itself;
* exactly `vocab_size` ids (the tiny decoder's vocabulary): the byte symbols first (id == byte
  value for ASCII), then `<|endoftext|>`, `<|im_start|>`, `<|im_end|>` in the last three ids, so
  every id the tiny decoder can emit decodes (a lone non-ASCII byte decodes to U+FFFD, as in Qwen2);
* Qwen2's chat format (`<|im_start|>role\\ncontent<|im_end|>\\n`, default system message
  "You are a helpful assistant.", generation prompt `<|im_start|>assistant\\n`), eos `<|im_end|>`,
  pad `<|endoftext|>`.
"""

from __future__ import annotations

import json
from pathlib import Path

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
DEFAULT_SYSTEM = "You are a helpful assistant."

# Qwen2-Instruct's chat format, written out here: a system turn with the default message unless
# the conversation starts with one, then one `<|im_start|>role\ncontent<|im_end|>\n` per message.


def chat_template(default_system: str | None = DEFAULT_SYSTEM) -> str:
    """Qwen2-Instruct's chat template; default_system=None renders no system turn unless the
    conversation has one (the tiny seed model's: its prompt prefix is then `<|im_start|>user\\n`,
    6 tokens, the tiny layout's text prefix)."""
    system = "" if default_system is None else (
        "{%- if loop.first and message['role'] != 'system' -%}"
        "{{- '<|im_start|>system\\n" + default_system + "<|im_end|>\\n' -}}"
        "{%- endif -%}")
    return ("{%- for message in messages -%}" + system +
            "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}"
            "{%- endfor -%}"
            "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}")


CHAT_TEMPLATE = chat_template()

# Bytes that never occur in UTF-8 (0xC0, 0xC1, 0xF5-0xFF): the ones left out when the vocabulary
# is smaller than 256 bytes + 3 special tokens, highest first, so that text still encodes.
_NEVER_IN_UTF8 = (0xFF, 0xFE, 0xFD, 0xFC, 0xFB, 0xFA, 0xF9, 0xF8, 0xF7, 0xF6, 0xF5, 0xC1, 0xC0)
MIN_VOCAB_SIZE = 256 - len(_NEVER_IN_UTF8) + len(SPECIAL_TOKENS)


def byte_symbols() -> dict[int, str]:
    """byte -> the printable character byte-level BPE (GPT-2, Qwen2) stands it for.

    Printable Latin-1 bytes stand for themselves; the others (controls, space, soft hyphen) are
    shifted past U+00FF in byte order, so that every token is a visible, whitespace-free string.
    """
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("\xa1"), ord("\xac") + 1), *range(ord("\xae"), 256)]
    symbols = {b: chr(b) for b in keep}
    shifted = (b for b in range(256) if b not in symbols)
    symbols.update({b: chr(256 + n) for n, b in enumerate(shifted)})
    return symbols


def write_tiny_tokenizer(directory: str | Path, vocab_size: int = 256,
                         default_system: str | None = DEFAULT_SYSTEM, media_tokens: dict[str, str] | None = None,
                         template: str | None = None) -> Path:
    """Build the tiny tokenizer (deterministic, no download) into `directory`; return the directory.

    default_system: the chat template's default system message (None: no default system turn).
    media_tokens: a model's media specials, attribute -> text (`{"video_token": "<|VIDEO|>", ...}`, as
    Qwen2.5-Omni's tokenizer_config names them), given the ids after the three chat specials, in order.
    template: a chat template that replaces Qwen2-Instruct's.

    vocab_size: the exact number of ids, MIN_VOCAB_SIZE (246) to 259 (all 256 bytes + 3 specials),
    plus one per media token.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers

    media_tokens = dict(media_tokens or {})
    specials = (*SPECIAL_TOKENS, *media_tokens.values())
    if not MIN_VOCAB_SIZE + len(media_tokens) <= vocab_size <= 256 + len(specials):
        raise ValueError(f"vocab_size must be {MIN_VOCAB_SIZE + len(media_tokens)}..{256 + len(specials)}, "
                         f"got {vocab_size}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)

    dropped = set(_NEVER_IN_UTF8[: 256 + len(specials) - vocab_size])
    symbols = byte_symbols()
    vocab = {symbols[b]: i for i, b in enumerate(b for b in range(256) if b not in dropped)}

    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[], fuse_unk=False, byte_fallback=False))
    tokenizer.normalizer = normalizers.NFC()
    # No merges: the split regex would not change any id, so the byte mapping alone is enough.
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tokenizer.decoder = decoders.ByteLevel()
    # normalized=False: the specials match the raw text, as in Qwen2's tokenizer.json.
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    assert tokenizer.get_vocab_size(with_added_tokens=True) == vocab_size
    tokenizer.save(str(directory / "tokenizer.json"))

    config = {
        # transformers 5 maps Qwen2TokenizerFast and Qwen2Tokenizer to the same class.
        "tokenizer_class": "Qwen2Tokenizer",
        "added_tokens_decoder": {
            str(vocab_size - len(specials) + i): {
                "content": t, "special": True, "normalized": False, "lstrip": False, "rstrip": False,
                "single_word": False,
            }
            for i, t in enumerate(specials)
        },
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "unk_token": None,
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>", *media_tokens.values()],
        "chat_template": template if template is not None else chat_template(default_system),
        "clean_up_tokenization_spaces": False,
        "errors": "replace",
        "model_max_length": 32768,
        "split_special_tokens": False,
        **({"extra_special_tokens": media_tokens} if media_tokens else {}),
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    return directory
