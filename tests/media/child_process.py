"""Run a snippet of Python in a fresh interpreter and read what it measured, peak memory included.

Memory bounds are checked in a child so that its peak resident set belongs to the snippet alone,
not to whatever the test process imported or allocated before.
"""

from __future__ import annotations

import json
import subprocess
import sys

# The peak is VmHWM, the high-water mark of this process image's memory: getrusage's ru_maxrss
# survives exec, so a child of a large test process would report its parent's peak.
_REPORT = """
import json as _json, re as _re
_peak_kb = int(_re.search(r"VmHWM:\\s*(\\d+) kB", open("/proc/self/status").read()).group(1))
print(_json.dumps({**result, "peak_mb": _peak_kb / 1024}))
"""


def measure_in_child(snippet: str, *args, timeout: float = 300) -> dict:
    """The `result` dict the snippet sets (reading its arguments from sys.argv[1:]) plus `peak_mb`,
    the child's peak resident set in MiB (Linux: /proc/self/status). The timeout is generous: the CPUs may be shared."""
    done = subprocess.run([sys.executable, "-c", snippet + _REPORT, *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])
