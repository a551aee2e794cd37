"""From a source (folder, Hub, DVC, synthetic) to a checked, split dataset manifest."""
