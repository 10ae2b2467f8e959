"""``python -m bench``: seed, read, explain and ingest, then report.

The run goes on in a frozen copy of the code (see ``snapshot``) unless
``--no-snapshot`` is given.
"""

import os
import sys

from .snapshot import exec_in_snapshot

if __name__ == "__main__":
    if "--no-snapshot" not in sys.argv and not os.environ.get("BENCH_SNAPSHOT"):
        exec_in_snapshot(sys.argv[1:])
    from .cli import run

    run([arg for arg in sys.argv[1:] if arg != "--no-snapshot"])
