"""keras_pt: pre-train -> fine-tune models for TensorFlow / Keras 3."""

__version__ = "0.1.0"
