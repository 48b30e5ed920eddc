"""Executors that run foreign model files as torch modules (no foreign runtime needed)."""
from ml.runtime.tflite import TFLiteModel, UnsupportedOpError, load_tflite, parse_tflite

__all__ = ["TFLiteModel", "UnsupportedOpError", "load_tflite", "parse_tflite"]
