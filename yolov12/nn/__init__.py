"""Building blocks of the YOLO model zoo, one family of layers per module.

Attribute names inside blocks (``cv1``, ``m``, ``qkv`` ...) follow the published checkpoints so that
state-dict keys of Ultralytics and official YOLOv12 weights map onto ours one to one.
"""

from yolov12.nn.area_attention import A2C2f, ABlock, AreaAttention
from yolov12.nn.blocks import C3, DFL, SPPF, Bottleneck, C2f, C3k, C3k2
from yolov12.nn.conv import Concat, Conv, DWConv, autopad
from yolov12.nn.heads import Classify, Detect
from yolov12.nn.psa import C2PSA, PositionSensitiveAttention, PSABlock

__all__ = [
    "A2C2f", "ABlock", "AreaAttention", "Bottleneck", "C2PSA", "C2f", "C3", "C3k", "C3k2", "Classify", "Concat",
    "Conv", "DFL", "DWConv", "Detect", "PSABlock", "PositionSensitiveAttention", "SPPF", "autopad",
]
