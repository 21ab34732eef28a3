"""Prediction results with an Ultralytics-like API: ``Results`` holding ``Boxes`` (detection) or ``Probs``."""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from yolov12.infer import results_files
from yolov12.infer.annotate import class_colour, default_line_width, draw_box, draw_text_lines, show_image, write_image
from yolov12.utils.boxes import xyxy_to_cxcywh

logger = logging.getLogger(__name__)

Array = torch.Tensor | np.ndarray


def _to_cpu(data: Array) -> Array:
    return data.cpu() if isinstance(data, torch.Tensor) else data


def _to_numpy(data: Array) -> np.ndarray:
    return data.detach().cpu().numpy() if isinstance(data, torch.Tensor) else data


def _normalise(boxes: Array, width: int, height: int) -> Array:
    out = boxes.clone() if isinstance(boxes, torch.Tensor) else boxes.copy()
    out[..., 0::2] /= width
    out[..., 1::2] /= height
    return out


class Boxes:
    """Detections of one image: ``data`` is (n, 6) x1, y1, x2, y2, confidence, class in original-image pixels, or
    (n, 7) x1, y1, x2, y2, track id, confidence, class for tracked detections (Ultralytics' layout).

    Example:
        >>> boxes = Boxes(torch.tensor([[10.0, 20.0, 50.0, 60.0, 0.9, 2.0]]), orig_shape=(100, 200))
        >>> boxes.xywh, boxes.cls, boxes.id
        (tensor([[30., 40., 40., 40.]]), tensor([2.]), None)
    """

    def __init__(self, data: Array, orig_shape: tuple[int, int]) -> None:
        if data.ndim != 2 or data.shape[1] not in (6, 7):
            raise ValueError(f"Boxes data must be (n, 6) x1, y1, x2, y2, conf, cls or (n, 7) with a track id before "
                             f"conf; got shape {tuple(data.shape)}")
        self.data = data
        self.orig_shape = (int(orig_shape[0]), int(orig_shape[1]))

    @property
    def is_track(self) -> bool:
        """Whether the boxes carry track ids (``model.track``)."""
        return self.data.shape[1] == 7

    @property
    def id(self) -> Array | None:
        """(n,) track ids (float, as in Ultralytics; ``boxes.id.int()``) of tracked boxes, else None."""
        return self.data[:, 4] if self.is_track else None

    @property
    def xyxy(self) -> Array:
        """(n, 4) corners in pixels."""
        return self.data[:, :4]

    @property
    def conf(self) -> Array:
        """(n,) confidences."""
        return self.data[:, -2]

    @property
    def cls(self) -> Array:
        """(n,) class ids (float, as in Ultralytics)."""
        return self.data[:, -1]

    @property
    def xywh(self) -> Array:
        """(n, 4) centre and size (cx, cy, w, h) in pixels: Ultralytics' ``xywh`` is a centre box."""
        return xyxy_to_cxcywh(self.xyxy)

    @property
    def xyxyn(self) -> Array:
        """(n, 4) corners normalised by the image width and height."""
        return _normalise(self.xyxy, self.orig_shape[1], self.orig_shape[0])

    @property
    def xywhn(self) -> Array:
        """(n, 4) centre and size normalised by the image width and height."""
        return _normalise(self.xywh, self.orig_shape[1], self.orig_shape[0])

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int | slice | Array) -> Boxes:
        data = self.data[index]
        return Boxes(data.reshape(1, -1) if data.ndim == 1 else data, self.orig_shape)

    def cpu(self) -> Boxes:
        return Boxes(_to_cpu(self.data), self.orig_shape)

    def numpy(self) -> Boxes:
        return Boxes(_to_numpy(self.data), self.orig_shape)

    def __repr__(self) -> str:
        tracked = ", tracked" if self.is_track else ""
        return f"Boxes(n={len(self)}, orig_shape={self.orig_shape}{tracked})"


class Probs:
    """Class probabilities of one image: ``data`` is (nc,).

    Example:
        >>> probs = Probs(torch.tensor([0.1, 0.7, 0.2]))
        >>> probs.top1, probs.top5
        (1, [1, 2, 0])
    """

    def __init__(self, data: Array) -> None:
        if data.ndim != 1:
            raise ValueError(f"Probs data must be (nc,), got shape {tuple(data.shape)}")
        self.data = data

    @property
    def top5(self) -> list[int]:
        """Up to five class ids, most probable first."""
        order = np.argsort(-_to_numpy(self.data).astype(np.float64), kind="stable")
        return [int(i) for i in order[:5]]

    @property
    def top1(self) -> int:
        return self.top5[0]

    @property
    def top5conf(self) -> Array:
        """Probabilities of :attr:`top5`."""
        return self.data[self.top5]

    @property
    def top1conf(self) -> Array:
        return self.data[self.top1]

    def __len__(self) -> int:
        return len(self.data)

    def cpu(self) -> Probs:
        return Probs(_to_cpu(self.data))

    def numpy(self) -> Probs:
        return Probs(_to_numpy(self.data))

    def __repr__(self) -> str:
        return f"Probs(nc={len(self)}, top1={self.top1})"


def _default_speed() -> dict[str, float]:
    return {"preprocess": 0.0, "inference": 0.0, "postprocess": 0.0}


@dataclass(repr=False)
class Results:
    """What the model found in one image.

    Attributes:
        orig_img: (H, W, 3) BGR uint8 original image.
        path: file path, ``<video>:frame<i>``, or ``image<i>`` for in-memory images.
        names: class id -> name.
        boxes: detections (detect models), else None.
        probs: class probabilities (classify models), else None.
        speed: milliseconds per image for 'preprocess', 'inference' and 'postprocess'.
    """

    orig_img: np.ndarray
    path: str
    names: dict[int, str]
    boxes: Boxes | None = None
    probs: Probs | None = None
    speed: dict[str, float] = field(default_factory=_default_speed)

    @property
    def orig_shape(self) -> tuple[int, int]:
        """(height, width) of the original image."""
        return self.orig_img.shape[0], self.orig_img.shape[1]

    def __len__(self) -> int:
        """Number of detections, or of classes for a classification result."""
        if self.boxes is not None:
            return len(self.boxes)
        return len(self.probs) if self.probs is not None else 0

    def cpu(self) -> Results:
        """A copy with tensors on the CPU."""
        return replace(self, boxes=None if self.boxes is None else self.boxes.cpu(),
                       probs=None if self.probs is None else self.probs.cpu())

    def numpy(self) -> Results:
        """A copy with numpy arrays instead of tensors."""
        return replace(self, boxes=None if self.boxes is None else self.boxes.numpy(),
                       probs=None if self.probs is None else self.probs.numpy())

    def plot(self, line_width: int | None = None, labels: bool = True, conf: bool = True) -> np.ndarray:
        """Annotated copy of :attr:`orig_img` (H, W, 3) BGR: class-coloured boxes and labels (``id:7 car 0.91`` for
        tracked boxes), or the top-5 classes."""
        image = np.ascontiguousarray(self.orig_img.copy())
        width = line_width or default_line_width(image.shape)
        if self.boxes is not None:
            for box, score, cls, track_id in _box_rows(self.boxes)[::-1]:  # lowest confidence first: best on top
                name = self.names.get(cls, str(cls))
                text = f"{name} {score:.2f}" if conf else name
                if track_id is not None:
                    text = f"id:{track_id} {text}"
                draw_box(image, box, class_colour(cls), text if labels else "", width)
        if self.probs is not None and labels:
            probabilities = _to_numpy(self.probs.data)
            lines = [
                f"{self.names.get(i, str(i))} {float(probabilities[i]):.2f}" if conf else self.names.get(i, str(i))
                for i in self.probs.top5
            ]
            draw_text_lines(image, lines, width)
        return image

    def save(self, filename: str | Path) -> Path:
        """Write :meth:`plot` to ``filename`` (format from its extension; folders are created); returns the path."""
        path = Path(filename)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_image(self.plot(), str(path))
        return path

    def show(self, wait_ms: int = 0) -> None:
        """Show :meth:`plot` in a window (``wait_ms`` 0 waits for a key); headless, it logs a warning and returns."""
        show_image(self.plot(), self.path, wait_ms)

    def summary(self, normalize: bool = False, decimals: int = 5) -> list[dict]:
        """One dict per detection (name, class, confidence, box {x1, y1, x2, y2}, and ``track_id`` for tracked
        boxes) or per top-5 class.

        ``normalize`` divides the corners by the image width and height. For classification, Ultralytics gives the
        top-1 class only; the first row here is that one.
        """
        if self.probs is not None:
            probabilities = _to_numpy(self.probs.data)
            return [
                {"name": self.names.get(i, str(i)), "class": i, "confidence": round(float(probabilities[i]), decimals)}
                for i in self.probs.top5
            ]
        if self.boxes is None:
            return []
        height, width = self.orig_shape
        scale = np.array([width, height, width, height], dtype=np.float64) if normalize else np.ones(4)
        rows = []
        for box, score, cls, track_id in _box_rows(self.boxes):
            coordinates = np.asarray(box) / scale
            rows.append({
                "name": self.names.get(cls, str(cls)),
                "class": cls,
                "confidence": round(score, decimals),
                "box": {key: round(float(v), decimals) for key, v in zip(("x1", "y1", "x2", "y2"), coordinates)},
                **({"track_id": track_id} if track_id is not None else {}),
            })
        return rows

    def to_json(self, normalize: bool = False, decimals: int = 5) -> str:
        """:meth:`summary` as a JSON string."""
        return json.dumps(self.summary(normalize=normalize, decimals=decimals), indent=2)

    def to_df(self, normalize: bool = False, decimals: int = 5) -> Any:
        """A pandas DataFrame, one row per detection (name, class, confidence, x1, y1, x2, y2) or top-5 class.

        Unlike Ultralytics, whose frame keeps the box as one column of dicts, the corners are columns of their own.

        Example:
            >>> result.to_df()[["name", "confidence"]].head(1)  # doctest: +SKIP
        """
        return results_files.to_dataframe(self, normalize, decimals)

    def to_csv(self, path: str | Path | None = None, normalize: bool = False, decimals: int = 5) -> str:
        """The rows of :meth:`to_df` as CSV text with a header (no pandas needed); written to ``path`` if given."""
        text = results_files.csv_text(self, normalize, decimals)
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text, encoding="utf-8")
        return text

    def save_txt(self, txt_file: str | Path, save_conf: bool = False) -> Path:
        """Append YOLO label lines to ``txt_file``: ``class cx cy w h [conf]`` normalised, one per detection, or
        ``conf name`` for each top-5 class; as Ultralytics, nothing is written for an image without detections."""
        return results_files.append_lines(txt_file, results_files.label_lines(self, save_conf))

    def save_crop(self, save_dir: str | Path, file_name: str | Path | None = None) -> list[Path]:
        """Save each detection's box as ``save_dir/<class name>/<file_name>.jpg``; returns the written paths.

        ``file_name`` defaults to the stem of :attr:`path`; a name already taken gets a number (``im2.jpg``), so
        nothing is overwritten. The crop is the box itself, grown to whole pixels (Ultralytics also pads it by 2 %
        and 10 px). A classification result has no boxes: it logs a warning and saves nothing.
        """
        return results_files.save_crops(self, save_dir, file_name)

    def verbose(self) -> str:
        """One line: ``"2 persons, 1 car"`` for detections, ``"cat 0.91, dog 0.05, ..."`` for classification.

        Counts go by class id; Ultralytics' line is the same with a trailing ``", "``.
        """
        if self.probs is not None:
            return ", ".join(f"{row['name']} {row['confidence']:.2f}" for row in self.summary())
        if self.boxes is None or len(self.boxes) == 0:
            return "(no detections)"
        counts = Counter(int(c) for c in _to_numpy(self.boxes.cls))
        return ", ".join(
            f"{n} {self.names.get(c, str(c))}{'s' if n > 1 else ''}" for c, n in sorted(counts.items())
        )

    def __repr__(self) -> str:
        content = repr(self.boxes) if self.boxes is not None else repr(self.probs)
        return f"Results(path={self.path!r}, orig_shape={self.orig_shape}, {content})"


def _box_rows(boxes: Boxes) -> list[tuple[tuple[float, ...], float, int, int | None]]:
    """(xyxy corners, confidence, class id, track id or None) of each box, as Python numbers."""
    data = _to_numpy(boxes.data).astype(np.float64)
    ids = data[:, 4].round().astype(np.int64).tolist() if boxes.is_track else [None] * len(data)
    return [(tuple(row[:4].tolist()), float(row[-2]), int(row[-1]), track_id) for row, track_id in zip(data, ids)]
