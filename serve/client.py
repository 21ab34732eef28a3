"""A small client for a running endpoint with the ``YOLO`` calls the demo uses: ``predict(image) -> [Results]``.

Only the standard library and ``yolov12`` (no Ray): images go as lossless PNG to ``/v1/detect`` (or
``/v1/classify``) and the JSON answer becomes a :class:`yolov12.infer.Results`, so ``plot()`` / ``summary()`` work
as for a local model.

Example:
    >>> model = RemoteModel("http://127.0.0.1:8000")            # doctest: +SKIP
    >>> model.predict(image_bgr, conf=0.3)[0].summary()         # doctest: +SKIP
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import cv2
import numpy as np
import torch

from yolov12.infer.results import Boxes, Probs, Results


class EndpointError(RuntimeError):
    """The endpoint answered with an error (its message is kept) or could not be reached."""


class RemoteModel:
    """A Serve endpoint (``serve.app``) seen as a model: ``task``, ``names`` and ``predict``."""

    def __init__(self, url: str, model_id: str | None = None, api_key: str | None = None, timeout: float = 60.0):
        self.url = url.rstrip("/")
        self.headers = {**({"serve_multiplexed_model_id": model_id} if model_id else {}),
                        **({"x-api-key": api_key} if api_key else {})}
        self.timeout = timeout
        metadata = self._call("GET", f"/v2/models/{model_id or 'default'}")
        self.task: str = metadata["parameters"]["task"]
        self.names: dict[int, str] = {int(k): v for k, v in metadata["parameters"]["names"].items()}
        self.description = (f"{self.url} ({metadata['parameters']['model_name']} v{metadata['versions'][0]}, "
                            f"{metadata['platform']})")

    def _call(self, method: str, path: str, body: bytes | None = None, query: dict[str, Any] | None = None,
              content_type: str | None = None) -> dict[str, Any]:
        url = f"{self.url}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        headers = {**self.headers, **({"Content-Type": content_type} if content_type else {})}
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("error", exc.reason)
            except ValueError:
                message = exc.reason
            raise EndpointError(f"{url}: {exc.code} {message}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise EndpointError(f"cannot reach {url}: {exc}") from None

    def predict(self, source: np.ndarray, conf: float | None = None, iou: float | None = None,
                imgsz: int | None = None, max_det: int | None = None, **_: Any) -> list[Results]:
        """Run one (H, W, 3) BGR uint8 image on the endpoint; ``speed`` holds its stage timings."""
        ok, encoded = cv2.imencode(".png", source)
        if not ok:
            raise ValueError("cannot encode the image as PNG")
        query = {key: value for key, value in {"conf": conf, "iou": iou, "imgsz": imgsz, "max_det": max_det}.items()
                 if value is not None}
        answer = self._call("POST", f"/v1/{self.task}", encoded.tobytes(), query, "image/png")
        timing = answer.get("timing_ms", {})
        speed = {"preprocess": timing.get("decode", 0.0) + timing.get("preprocess", 0.0),
                 "inference": timing.get("inference", 0.0), "postprocess": timing.get("postprocess", 0.0)}
        if self.task == "classify":
            probs = np.zeros(len(self.names), np.float32)
            for row in answer["classes"]:
                probs[row["class_id"]] = row["score"]
            return [Results(source, self.url, dict(self.names), probs=Probs(torch.from_numpy(probs)), speed=speed)]
        rows = [[*d["box"], d["score"], d["class_id"]] for d in answer["detections"]]
        data = torch.tensor(rows, dtype=torch.float32).reshape(-1, 6)
        return [Results(source, self.url, dict(self.names), boxes=Boxes(data, source.shape[:2]), speed=speed)]
