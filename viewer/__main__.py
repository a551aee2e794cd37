"""`python -m viewer [streamlit options]`: `streamlit run viewer/app.py` with this checkout on the import path."""

import os
import subprocess
import sys
from pathlib import Path

APP = Path(__file__).resolve().parent / "app.py"


def main(argv: list[str]) -> int:
    root = str(APP.parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "streamlit", "run", str(APP), *argv]
    return subprocess.call(command, cwd=root, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
