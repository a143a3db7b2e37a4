"""VideoLLaMA2-AV's own media facts: every clip fills the built layout's [video][audio] rows, and the
spliced embeddings are the text table's rows, the vision encoder's rows and the audio rows in place."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fastav_export.contract.layout import KIND_CODES
from fastav_export.models import get_model_spec
from fastav_export.runtime.front_end import FrontEnd
from fastav_export.testing.models import tiny_model

from ....runtime.media_runs import torch_front_end

MODEL = "videollama2-tiny"
QUESTION = "What happens in the video?"


@pytest.fixture(scope="module")
def engine(tiny_engine):
    return tiny_engine(MODEL, media=True)


@pytest.fixture(scope="module")
def torch_front():
    return torch_front_end(MODEL)


def test_spliced_embeddings_equal_the_reference_row_for_row(engine, torch_front, media_clip):
    with FrontEnd.from_engine(engine) as front:
        prompt, _ = front.prompt(QUESTION, media_clip)
        expected, _ = torch_front.prompt(QUESTION, media_clip)
    # the layout the builder computed, with this prompt's text ends
    prefix = int(np.argmax(prompt.input_ids == engine.media.placeholder_id))
    suffix = prompt.layout.segments[-1].length
    assert prompt.layout == engine.layout.with_prompt_text(prefix, suffix) == expected.layout
    np.testing.assert_array_equal(prompt.input_ids, expected.input_ids)
    np.testing.assert_allclose(prompt.mm_embeds, expected.mm_embeds, rtol=0, atol=1e-4)

    table = tiny_model(MODEL).model.embed_tokens.weight.detach()
    embeds = expected.splice(table[torch.from_numpy(expected.text_ids())])[0]
    kinds = expected.layout.kind_codes()
    text = kinds == KIND_CODES["text"]
    torch.testing.assert_close(embeds[torch.from_numpy(text)], table[torch.from_numpy(expected.input_ids[text])])
    video_rows = torch_front.encoders.video(_pixels(media_clip))
    torch.testing.assert_close(embeds[torch.from_numpy(kinds == KIND_CODES["video"])], torch.from_numpy(video_rows))
    assert int((kinds == KIND_CODES["audio"]).sum()) == get_model_spec(MODEL).default_layout().count("audio")


def _pixels(clip):
    from fastav_export.media.decode import read_video_frames
    from fastav_export.media.frames import preprocess_frames

    video = get_model_spec(MODEL).video
    return preprocess_frames(read_video_frames(clip, video.num_frames), video)
