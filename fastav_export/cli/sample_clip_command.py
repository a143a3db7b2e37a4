"""Write a sample video clip to try `run --video` on: moving coloured frames with a 440 Hz tone.

The clip is an MP4 (H.264 video at 8 fps, 64 x 48, and an AAC audio track; MPEG-4 part 2
and Opus where this PyAV lacks those encoders), written through a temporary file, so an
interrupted run leaves no half clip behind.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import FastAVError
from .arg_types import clip_seconds

EXAMPLES = """examples:
  fastav-export sample-clip clip.mp4
  fastav-export sample-clip clip5.mp4 5
  fastav-export run engines/videollama2-tiny-fp32 --video clip.mp4 --question "What is happening?"
"""

log = logging.getLogger("fastav_export")


def add_arguments(parser) -> None:
    from ..media.sample_clip import DEFAULT_SECONDS

    parser.add_argument("out", metavar="OUT", type=Path, help="the .mp4 file to write")
    parser.add_argument("seconds", metavar="SECONDS", nargs="?", type=clip_seconds, default=DEFAULT_SECONDS,
                        help=f"the clip's length (default {DEFAULT_SECONDS:g})")


def main(args) -> int:
    from ..media.sample_clip import DEFAULT_FPS, frame_count, write_sample_clip
    from ..user_io.output_paths import atomic_file
    from .output_checks import check_output_files

    check_output_files(args, {"OUT": args.out})
    if args.out.suffix.lower() != ".mp4":
        raise FastAVError(f"OUT {args.out} must end in .mp4: the clip is an MP4 file")
    if frame_count(args.seconds) < 1:
        raise FastAVError(f"SECONDS {args.seconds:g} gives no frame at {DEFAULT_FPS} fps: give at least "
                          f"{0.5 / DEFAULT_FPS:g} s")
    with atomic_file(args.out) as temporary:
        write_sample_clip(temporary, seconds=args.seconds)
    print(f"wrote {args.out}: {args.seconds:g} s of moving coloured frames with a 440 Hz tone")
    return 0
