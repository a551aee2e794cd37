"""Step hooks for the remote-store test: they make the machine that ran `load_data` 'go away'."""

import os
import shutil


def forget_local_data() -> None:
    """Delete the folder `load_data` read (HAR_TEST_SOURCE_DIR) and every dataset unpacked so far
    (HAR_CLIP_DATA_CACHE), as if each step ran in a fresh pod: later steps can only get the images through the
    artifact store."""
    shutil.rmtree(os.environ["HAR_TEST_SOURCE_DIR"], ignore_errors=True)
    shutil.rmtree(os.environ["HAR_CLIP_DATA_CACHE"], ignore_errors=True)
