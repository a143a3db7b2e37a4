"""Qwen2.5-Omni's prompt: its chat template, its default system prompt, the video first, then the question.

Qwen's own examples (the Qwen2.5-Omni model card, qwen-omni-utils) send a system turn with the
default system prompt below and one user turn whose content is the video, then the question as
text. The released chat template renders a video item as `<|vision_bos|><|VIDEO|><|vision_eos|>`;
the processor then replaces `<|VIDEO|>` by `<|audio_bos|>`, the chunks' video and audio rows
(`chunk_layout.py`) and `<|audio_eos|>` when the audio track is used (`use_audio_in_video`), or by
the video rows alone for a clip without sound.

So the prompt is [prefix text][media rows][suffix text] with the prefix ending in `<|vision_bos|>`
(and `<|audio_bos|>`), the suffix starting with (`<|audio_eos|>` and) `<|vision_eos|>`.
"""

from __future__ import annotations

from ....errors import FastAVError
from ....text.prompt import PromptParts, check_question, special_token_texts

DEFAULT_SYSTEM = ("You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of "
                  "perceiving auditory and visual inputs, as well as generating text and speech.")
VIDEO_TOKEN = "<|VIDEO|>"
AUDIO_BOS, AUDIO_EOS = "<|audio_bos|>", "<|audio_eos|>"
# tokenizer_config.json attribute -> text of Qwen2.5-Omni's media specials (the processor reads them so).
MEDIA_TOKENS = {"audio_token": "<|AUDIO|>", "audio_bos_token": AUDIO_BOS, "audio_eos_token": AUDIO_EOS,
                "vision_bos_token": "<|vision_bos|>", "vision_eos_token": "<|vision_eos|>",
                "image_token": "<|IMAGE|>", "video_token": VIDEO_TOKEN}

# The tiny model's chat template: what the released one renders for text, image, audio and video items
# (written here for the tiny tokenizer; a snapshot's own template is always the one used).
TINY_CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if loop.first and message['role'] != 'system' -%}"
    "{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' -}}{%- endif -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['content'] is string -%}{{- message['content'] -}}{%- else -%}"
    "{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'video' or 'video' in item -%}{{- '<|vision_bos|><|VIDEO|><|vision_eos|>' -}}"
    "{%- elif item['type'] == 'image' or 'image' in item -%}{{- '<|vision_bos|><|IMAGE|><|vision_eos|>' -}}"
    "{%- elif item['type'] == 'audio' or 'audio' in item -%}{{- '<|audio_bos|><|AUDIO|><|audio_eos|>' -}}"
    "{%- elif 'text' in item -%}{{- item['text'] -}}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}")


def messages(question: str, system: str = DEFAULT_SYSTEM) -> list[dict]:
    """The conversation Qwen's examples send: the system prompt, then the video and the question."""
    return [{"role": "system", "content": [{"type": "text", "text": system}]},
            {"role": "user", "content": [{"type": "video", "video": "clip"}, {"type": "text", "text": question}]}]


def omni_prompt_parts(tokenizer, question: str, with_audio: bool, system: str = DEFAULT_SYSTEM) -> PromptParts:
    """The ids before and after the media rows: the rendered chat split at `<|VIDEO|>`, with
    `<|audio_bos|>` / `<|audio_eos|>` around the rows when the clip's audio is used."""
    check_question(question, VIDEO_TOKEN, special_token_texts(tokenizer))
    text = tokenizer.apply_chat_template(messages(question, system), tokenize=False, add_generation_prompt=True)
    if not isinstance(text, str) or text.count(VIDEO_TOKEN) != 1:
        raise FastAVError(f"the tokenizer's chat template did not render one {VIDEO_TOKEN} for the video: "
                          "check the snapshot's chat template")
    before, after = text.split(VIDEO_TOKEN)
    if with_audio:
        before, after = before + AUDIO_BOS, AUDIO_EOS + after
    return PromptParts(list(tokenizer.encode(before, add_special_tokens=False)),
                       list(tokenizer.encode(after, add_special_tokens=False)))
