"""Read a `torch.save` weights file (`*.bin`) without running code from it.

VideoLLaMA2-AV snapshots keep the audio tower and its projector in plain `torch.save`
files (`audio_tower.bin`, `mm_projector_a.bin`). Full unpickling of such a file can run
arbitrary code, so they are read only with `torch.load(weights_only=True)`, whose
restricted unpickler accepts tensors and plain containers and refuses any other object.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch

from ..errors import FastAVError

# What the loading report says about these files.
HOW = "torch.load(weights_only=True): tensors only, no code run"


def load_weights_only(path: str | Path) -> dict[str, torch.Tensor]:
    """key -> tensor (CPU) of a `torch.save`d state dict, or one FastAVError line.

    A file holding anything but a flat dict of named tensors is refused, naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FastAVError(f"{path} does not exist: re-download the snapshot")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True, mmap=False)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        what = f" (a {found.group(1)})" if found else ""
        raise FastAVError(f"refused {path.name}: it holds a pickled object other than tensors{what}, which could run "
                          f"code when loaded; fastav-export reads .bin weights with {HOW}: re-save the file as a "
                          "plain state dict or as safetensors") from None
    except Exception as exc:  # a truncated or non-torch file: torch raises RuntimeError, EOFError, ...
        raise FastAVError(f"cannot read {path.name} as torch.save weights ({type(exc).__name__}): "
                          "re-download the snapshot") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                             for k, v in data.items()):
        raise FastAVError(f"{path.name} is not a flat state dict of named tensors: re-save it as one "
                          "(torch.save(module.state_dict(), ...))")
    return data
