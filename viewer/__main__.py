"""`python -m viewer [streamlit options]`: `streamlit run viewer/app.py` with this checkout on the import path.

The viewer answers on 127.0.0.1 only unless told otherwise (`--server.address 0.0.0.0`, or `HAR_CLIP_VIEWER_ADDRESS`):
it reads the ZenML store, runs models on uploads and shows every run's data, with no login of its own (docs/viewer.md,
"Who can reach it").
"""

import os
import subprocess
import sys
from pathlib import Path

APP = Path(__file__).resolve().parent / "app.py"
ADDRESS_ENV = "HAR_CLIP_VIEWER_ADDRESS"
DEFAULT_ADDRESS = "127.0.0.1"


def main(argv: list[str]) -> int:
    root = str(APP.parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    chosen = any(arg.startswith("--server.address") for arg in argv) or "STREAMLIT_SERVER_ADDRESS" in os.environ
    address = [] if chosen else ["--server.address", os.environ.get(ADDRESS_ENV, DEFAULT_ADDRESS)]
    command = [sys.executable, "-m", "streamlit", "run", str(APP), *address, *argv]
    return subprocess.call(command, cwd=root, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
