"""Studio Catalog's machine-learning core: pure Python + torch/numpy/OpenCV, never Qt.

Layout:
    ml.io          image loading (formats, EXIF orientation, ICC -> sRGB, RAW)
    ml.runtime     executors that run foreign model files (TFLite, ONNX) as torch modules
    ml.models      pretrained networks used by the pipeline (BlazePose, U2-Net-p)
    ml.stages      one pipeline stage per module (classify, pose, segment, crops, product, swatch)
    ml.pipeline    the per-photo pipeline that chains the stages
    ml.yolact      the paper's YOLACT with attention / weight-standardised backbones
    ml.openpose    the paper's OpenPose with attention estimators
    ml.training    datasets, training loops and COCO evaluation for the paper's networks
"""
