"""Write a small dataset to try `fastav-export eval` on: clips and questions.jsonl.

Each clip (2-4 s, moving colours, a tone of 220, 440 or 880 Hz) gets three questions whose
answers follow from how it was made: its length (multiple choice), whether it has sound (yes/no)
and the tone's pitch (open-ended).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import FastAVError
from .arg_types import positive_int

EXAMPLES = """examples:
  fastav-export sample-dataset avdata
  fastav-export eval engines/videollama2-tiny-fp32 --data avdata/questions.jsonl --out eval-run
"""
MOST_CLIPS = 100


def add_arguments(parser) -> None:
    parser.add_argument("out", metavar="DIR", type=Path, help="directory to write the clips and questions.jsonl into")
    parser.add_argument("--clips", type=positive_int, default=3, help=f"clips to write, at most {MOST_CLIPS} (default 3)")


def main(args) -> int:
    from ..evaluation.sample_dataset import QUESTIONS, write_sample_dataset
    from .output_checks import check_output_dirs

    if args.clips > MOST_CLIPS:
        raise FastAVError(f"--clips {args.clips} is more than {MOST_CLIPS}: a sample dataset is for trying eval")
    check_output_dirs(args, {"DIR": args.out})
    if (args.out / QUESTIONS).exists():
        raise FastAVError(f"{args.out / QUESTIONS} exists: choose another DIR")
    questions = write_sample_dataset(args.out, args.clips)
    print(f"wrote {questions}: {3 * args.clips} questions about {args.clips} clips")
    return 0
