"""What the two media-path test modules (VideoLLaMA2-AV, video-SALMONN 2) both do: run the CLI on a clip
and read its --json, and build a model's PyTorch front end."""

from __future__ import annotations

import json

from fastav_export.cli import main
from fastav_export.models import get_model_spec
from fastav_export.models.families import load_media_parts
from fastav_export.runtime.front_end import FrontEnd


def run_json(capsys, tmp_path, clip, question: str, name: str, *argv) -> tuple[dict, str]:
    """`fastav-export run *argv --video clip --question question` with rollout and 8 new tokens:
    (its --json, what it printed); the run must succeed."""
    out = tmp_path / f"{name}.json"
    code = main(["run", *argv, "--video", str(clip), "--question", question,
                 "--global-policy", "rollout", "--max-new-tokens", "8", "--json", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    return json.loads(out.read_text()), printed


def torch_front_end(model: str) -> FrontEnd:
    """The reference's front end of a registered model: its own encoders (seed 0) and tokenizer."""
    spec = get_model_spec(model)
    return FrontEnd.from_parts(spec, load_media_parts(spec, spec.dims))
