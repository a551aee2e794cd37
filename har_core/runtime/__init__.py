"""Everything a deployed model needs; imports neither torch (for ONNX formats) nor the training side."""
