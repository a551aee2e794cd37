"""The documented entry point: `python run.py --pipeline training` (the same command as `har-clip run`).

The command itself is `cli.main.main`; the `har-clip` console script (`cli.main.cli`) adds subcommands beside it.
"""

import sys

from cli.main import DEFAULT_CONFIGS, EXPORT_FORMATS, PROJECT_ROOT, main

__all__ = ["DEFAULT_CONFIGS", "EXPORT_FORMATS", "PROJECT_ROOT", "main"]

if __name__ == "__main__":
    sys.exit(main())
