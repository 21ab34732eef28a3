"""Datasets: data.yaml / COCO / VOC / VisDrone readers, verified labels with a cache, torch datasets, S3 mirror,
the offline sample dataset, digests for lineage and the COCO-Lite subset tool.

Import the submodule you need (``from yolov12.data.detection_dataset import build_datasets``); this package file
imports nothing so that ``import yolov12.data`` stays cheap. The shared records are in :mod:`yolov12.data.types`.
"""
