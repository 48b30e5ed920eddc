"""YOLACT instance segmentation with the paper's switchable backbone (plain ResNet, weight
standardisation, split attention). See docs/yolact.md."""
from .config import TABLE1_CONFIGS, BackboneConfig, YolactConfig, get_config
from .detect import Detections

__all__ = ["YolactConfig", "BackboneConfig", "get_config", "TABLE1_CONFIGS", "Detections", "Yolact"]


def __getattr__(name):   # keep `import ml.yolact` light; the model pulls in cv2 and torch modules
    if name == "Yolact":
        from .model import Yolact
        return Yolact
    raise AttributeError(name)
