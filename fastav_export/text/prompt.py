"""The prompt ids: the chat template applied to the question, one placeholder id where the media goes.

What upstream does for the Qwen2-based AV model (DAMO-NLP-SG/VideoLLaMA2, branch audio_visual,
videollama2/__init__.py `mm_infer` and videollama2/mm_utils.py `tokenizer_multimodal_token`):

* one user message whose content is the modal token, a newline, then the question
  (`"<video>\\n" + question`); audio-visual input uses the `<video>` token too: the video
  and the audio features both replace that one placeholder;
* no system message for Qwen2 models (only the Llama/Mistral ones get Llama-2's `<<SYS>>` text),
  so Qwen2's chat template adds its own default system turn ("You are a helpful assistant.");
* `tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)`, then the
  rendered text is split on the modal token, each piece tokenized without special tokens, and the
  modal id (`MODAL_INDEX_MAP["<video>"] == -201`, videollama2/constants.py) put between the pieces.

The integrator lays the decoder input out as [prefix text][video][audio][suffix text], so the
ids before and after the placeholder are also available separately (`prompt_parts`).
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING, NamedTuple

from ..errors import FastAVError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

DEFAULT_MODAL_TOKEN = "<video>"
# Upstream sends no system message to Qwen2 models: None keeps the chat template's default.
DEFAULT_SYSTEM: str | None = None
# Line breaks and tabs are text; other control characters (NUL, escape sequences) are not.
_ALLOWED_CONTROLS = frozenset("\n\r\t")


class PromptParts(NamedTuple):
    """The prompt's ids before and after the one placeholder (the media tokens go in between)."""

    prefix_ids: list[int]
    suffix_ids: list[int]

    def ids(self, placeholder_id: int) -> list[int]:
        """prefix + [placeholder_id] + suffix: the ids upstream's `tokenizer_multimodal_token` gives."""
        return [*self.prefix_ids, int(placeholder_id), *self.suffix_ids]


def check_question(question: str, modal_token: str = DEFAULT_MODAL_TOKEN,
                   special_tokens: tuple[str, ...] = ()) -> None:
    """FastAVError (one line) for a question the prompt cannot carry as plain text."""
    if not question.strip():
        raise FastAVError("the question is empty: ask something about the video")
    if modal_token in question:
        # The placeholder is added once by the prompt; another one would need a second video.
        raise FastAVError(f"the question contains {modal_token}: leave it out, the prompt adds the media itself")
    for token in special_tokens:
        if token and token in question:
            # The tokenizer would read it as a control token and end the user's turn early.
            raise FastAVError(f"the question contains the special token {token}: remove it")
    for index, char in enumerate(question):
        if unicodedata.category(char) == "Cc" and char not in _ALLOWED_CONTROLS:
            raise FastAVError(f"the question has a control character U+{ord(char):04X} at position {index}: "
                              "pass plain text")


def special_token_texts(tokenizer: PreTrainedTokenizerBase) -> tuple[str, ...]:
    """The texts the tokenizer reads as special tokens (`<|im_start|>`, `<|im_end|>`, `<|endoftext|>`)."""
    texts = {str(t) for t in getattr(tokenizer, "all_special_tokens", ())}
    texts.update(t.content for t in getattr(tokenizer, "added_tokens_decoder", {}).values() if t.special)
    return tuple(sorted(texts))


def render_prompt(tokenizer: PreTrainedTokenizerBase, question: str, modal_token: str = DEFAULT_MODAL_TOKEN,
                  system: str | None = DEFAULT_SYSTEM) -> str:
    """The chat-template text upstream tokenizes: [system turn], user turn `<modal>\\n<question>`,
    assistant header (generation prompt)."""
    check_question(question, modal_token, special_token_texts(tokenizer))
    messages = [] if system is None else [{"role": "system", "content": system}]
    messages.append({"role": "user", "content": modal_token + "\n" + question})
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if not isinstance(text, str):  # a template/tokenizer that ignores tokenize=False
        raise FastAVError("the tokenizer's chat template did not render text: check the snapshot's tokenizer files")
    count = text.count(modal_token)
    if count != 1:
        # The system message may carry it, or a template may drop or repeat the content.
        raise FastAVError(f"the rendered prompt has {count} {modal_token} tokens instead of one: "
                          "check the system message and the chat template")
    return text


def prompt_parts(tokenizer: PreTrainedTokenizerBase, question: str, modal_token: str = DEFAULT_MODAL_TOKEN,
                 system: str | None = DEFAULT_SYSTEM) -> PromptParts:
    """The ids before and after the modal token of the rendered prompt (each piece tokenized on its
    own, without added special tokens, as upstream does)."""
    before, after = render_prompt(tokenizer, question, modal_token, system).split(modal_token)
    return PromptParts(list(tokenizer.encode(before, add_special_tokens=False)),
                       list(tokenizer.encode(after, add_special_tokens=False)))


def prompt_ids(tokenizer: PreTrainedTokenizerBase, question: str, placeholder_id: int,
               modal_token: str = DEFAULT_MODAL_TOKEN, system: str | None = DEFAULT_SYSTEM) -> list[int]:
    """The prompt's ids with exactly one `placeholder_id` where `modal_token` was (-201 for VideoLLaMA2's
    `<video>`: the VideoLLaMA2 family's VIDEO_PLACEHOLDER_ID).

    system: None, as upstream, lets the chat template add its default system turn; a string adds
    that system message instead.
    """
    return prompt_parts(tokenizer, question, modal_token, system).ids(placeholder_id)
