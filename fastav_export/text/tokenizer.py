"""The snapshot's tokenizer: load it from a local directory, know where a turn ends, decode replies.

VideoLLaMA2.1-7B-AV ships Qwen2's tokenizer (byte-level BPE, `<|im_start|>`/`<|im_end|>` turns).
Upstream stops generating at `tokenizer.eos_token` (`<|im_end|>` for the Qwen2-Instruct
tokenizer) and decodes the reply with `skip_special_tokens=True`, stripped
(DAMO-NLP-SG/VideoLLaMA2, branch audio_visual: videollama2/__init__.py `mm_infer`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import FastAVError

if TYPE_CHECKING:  # transformers takes seconds to import: only when a tokenizer is needed
    from transformers import PreTrainedTokenizerBase

END_OF_TURN = "<|im_end|>"  # Qwen2's end of a chat turn


def missing_tokenizer_files(directory: Path) -> list[str]:
    """The files a Qwen2 tokenizer needs that `directory` lacks (empty when it has them).

    tokenizer_config.json is required (it names the tokenizer class: VideoLLaMA2's config.json
    has a model type transformers does not know); the vocabulary is tokenizer.json or, for a
    snapshot saved without it, vocab.json + merges.txt.
    """
    missing = [] if (directory / "tokenizer_config.json").is_file() else ["tokenizer_config.json"]
    if not (directory / "tokenizer.json").is_file():
        pair = [name for name in ("vocab.json", "merges.txt") if not (directory / name).is_file()]
        if pair:
            missing.append("tokenizer.json (or " + " + ".join(pair) + ")")
    return missing


def load_tokenizer(directory: str | Path) -> PreTrainedTokenizerBase:
    """The tokenizer of a local model snapshot (never downloads, never runs the snapshot's code).

    Raises FastAVError (one line) when the directory is missing, lacks tokenizer files, cannot be
    loaded, or has no chat template (the prompt is built with it, like upstream does).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FastAVError(f"tokenizer directory {directory} does not exist: pass the model snapshot directory")
    missing = missing_tokenizer_files(directory)
    if missing:
        raise FastAVError(f"no tokenizer in {directory}: missing {' and '.join(missing)}; "
                          "pass the model snapshot directory (as downloaded from the Hugging Face Hub)")

    import logging

    from transformers import AutoTokenizer

    # AutoTokenizer also reads the snapshot's config.json and warns that `videollama2_qwen2` is a
    # model type it does not know; tokenizer_config.json names the tokenizer class, so that is noise.
    hf_logger = logging.getLogger("transformers")
    level = hf_logger.level
    hf_logger.setLevel(logging.ERROR)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(directory), trust_remote_code=False, local_files_only=True)
    # Files a user handed us can be broken in many ways (bad JSON, an unknown class, a
    # tokenizers parse error, which is a bare Exception): all are one line, with the cause chained.
    except Exception as exc:  # noqa: BLE001
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise FastAVError(f"cannot load the tokenizer in {directory}: {reason}") from exc
    finally:
        hf_logger.setLevel(level)

    if not getattr(tokenizer, "chat_template", None):
        raise FastAVError(f"the tokenizer in {directory} has no chat template (tokenizer_config.json "
                          "`chat_template` or chat_template.jinja): the prompt is built with it")
    return tokenizer


def end_of_turn_ids(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Ids that end the assistant's reply: `<|im_end|>` and the eos token (once each, in that order).

    Both, because a base Qwen2 tokenizer's eos is `<|endoftext|>` while the chat turn still ends
    with `<|im_end|>`; upstream stops at the eos token only, which is `<|im_end|>` for the AV model.
    """
    ids: list[int] = []
    im_end = tokenizer.convert_tokens_to_ids(END_OF_TURN) if END_OF_TURN in tokenizer.get_vocab() else None
    for token_id in (im_end, tokenizer.eos_token_id):
        if token_id is not None and token_id not in ids:
            ids.append(int(token_id))
    if not ids:
        raise FastAVError(f"the tokenizer has neither {END_OF_TURN} nor an eos token: generation could not stop")
    return ids


def decode_text(tokenizer: PreTrainedTokenizerBase, ids: Iterable[int], stop_ids: Iterable[int]) -> str:
    """The reply's text: `ids` up to (not including) the first stop id, special tokens skipped,
    surrounding whitespace stripped (as upstream's `batch_decode(...)[0].strip()`)."""
    stops = {int(s) for s in stop_ids}
    kept: list[int] = []
    for token_id in ids:
        token_id = int(token_id)  # accepts tensors and numpy scalars too
        if token_id in stops:
            break
        kept.append(token_id)
    return tokenizer.decode(kept, skip_special_tokens=True).strip()
