"""The tiny tokenizer and load_tokenizer / end_of_turn_ids / decode_text."""

from __future__ import annotations

import json

import pytest

from fastav_export.errors import FastAVError
from fastav_export.text.tiny_tokenizer import SPECIAL_TOKENS, write_tiny_tokenizer
from fastav_export.text.tokenizer import decode_text, end_of_turn_ids, load_tokenizer


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return write_tiny_tokenizer(tmp_path_factory.mktemp("tiny-tokenizer"))


@pytest.fixture(scope="module")
def tokenizer(tiny_dir):
    return load_tokenizer(tiny_dir)


def test_tiny_tokenizer_has_exactly_the_decoder_vocabulary_and_every_id_decodes(tokenizer):
    from fastav_export.models import get_model_spec

    vocab_size = get_model_spec("videollama2-tiny").dims.vocab_size
    assert len(tokenizer) == vocab_size == 256
    assert sorted(tokenizer.get_vocab().values()) == list(range(vocab_size))
    for token_id in range(vocab_size):
        text = tokenizer.decode([token_id])
        assert isinstance(text, str) and text, token_id
    # the specials sit in the last ids; eos/pad as in Qwen2-Instruct
    assert tokenizer.convert_ids_to_tokens([253, 254, 255]) == list(SPECIAL_TOKENS)
    assert (tokenizer.eos_token, tokenizer.pad_token) == ("<|im_end|>", "<|endoftext|>")


def test_tiny_tokenizer_is_deterministic(tiny_dir, tmp_path):
    again = write_tiny_tokenizer(tmp_path / "again")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        assert (again / name).read_bytes() == (tiny_dir / name).read_bytes()


@pytest.mark.parametrize("vocab_size", [246, 259])
def test_tiny_tokenizer_other_sizes(tmp_path, vocab_size):
    assert len(load_tokenizer(write_tiny_tokenizer(tmp_path, vocab_size))) == vocab_size


def test_tiny_tokenizer_rejects_a_size_that_cannot_hold_utf8(tmp_path):
    with pytest.raises(ValueError, match="vocab_size"):
        write_tiny_tokenizer(tmp_path, 100)


@pytest.mark.parametrize("text", ["What is the man doing in the video?", "Who plays louder?\n\tTabs, wörds & 🎉."])
def test_round_trip(tokenizer, text):
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert all(0 <= i < 253 for i in ids)  # plain text never becomes a special token
    assert tokenizer.decode(ids) == text


def test_end_of_turn_ids(tokenizer):
    assert end_of_turn_ids(tokenizer) == [tokenizer.convert_tokens_to_ids("<|im_end|>")] == [255]


def test_decode_text_stops_at_the_end_of_the_turn_and_skips_specials(tokenizer):
    stop = end_of_turn_ids(tokenizer)
    reply = tokenizer.encode(" A dog barks.", add_special_tokens=False)
    after = tokenizer.encode("ignored", add_special_tokens=False)
    im_start = tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert decode_text(tokenizer, [*reply, im_start, *stop, *after], stop) == "A dog barks."
    assert decode_text(tokenizer, reply, stop) == "A dog barks."  # no stop: everything
    assert decode_text(tokenizer, [*stop, *reply], stop) == ""


def test_load_tokenizer_names_the_missing_files(tmp_path):
    with pytest.raises(FastAVError, match=r"missing tokenizer_config.json and tokenizer.json "
                                          r"\(or vocab.json \+ merges.txt\)") as info:
        load_tokenizer(tmp_path)
    assert "\n" not in str(info.value)
    (tmp_path / "tokenizer_config.json").write_text("{}")
    (tmp_path / "vocab.json").write_text("{}")
    with pytest.raises(FastAVError, match=r"missing tokenizer.json \(or merges.txt\)"):
        load_tokenizer(tmp_path)


def test_load_tokenizer_errors_on_a_missing_directory(tmp_path):
    with pytest.raises(FastAVError, match="does not exist"):
        load_tokenizer(tmp_path / "nope")


def test_load_tokenizer_needs_a_chat_template(tiny_dir, tmp_path):
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (tmp_path / name).write_bytes((tiny_dir / name).read_bytes())
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    del config["chat_template"]
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(FastAVError, match="no chat template"):
        load_tokenizer(tmp_path)


def test_load_tokenizer_reports_a_broken_file_in_one_line(tiny_dir, tmp_path):
    (tmp_path / "tokenizer_config.json").write_bytes((tiny_dir / "tokenizer_config.json").read_bytes())
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(FastAVError, match="cannot load the tokenizer") as info:
        load_tokenizer(tmp_path)
    assert "\n" not in str(info.value)
