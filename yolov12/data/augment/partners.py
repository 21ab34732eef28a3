"""Where mosaic and mixup take their extra images from: a bounded buffer of recently decoded ones.

A 4-image mosaic of freshly decoded partners decodes and resizes four images per training sample; three of those
four decodes are what made our loader half as fast as Ultralytics' per process (``benchmarks/dataloader.py``).
Ultralytics keeps the last min(images, 8 x batch, 1000) decoded images of each loader process and draws partners
from them; the same idea here, as two ``SampleDataset`` sources the mixing transforms draw from:

- :class:`MixingBuffer`: only the last ``capacity`` samples added (the Ray Data stream, which has no random access
  to the split);
- :class:`DatasetPartners`: a dataset's samples through such a buffer. Until the buffer is full a partner is loaded
  from the dataset (and kept); from then on partners come from the buffer, and every image the mosaic starts from
  replaces the oldest one, so the buffer keeps moving through the epoch's shuffled order. An image still in the
  buffer is not decoded again when the dataset loads it as a mosaic's first image (on a split no larger than the
  buffer, nothing is decoded twice in an epoch).

Both lend copies: the augmentation of one image never alters a buffered partner. Memory: one resized image per slot
(about 0.9 MB at 640 px), per loader process.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from itertools import islice
from typing import TYPE_CHECKING

import numpy as np

from yolov12.data.augment.compose import replace_sample
from yolov12.data.augment.mosaic import SampleDataset, resize_long_side

if TYPE_CHECKING:
    from yolov12.data.types import Sample

__all__ = ["MAX_PARTNER_BUFFER", "DatasetPartners", "MixingBuffer", "partner_buffer_size"]

MAX_PARTNER_BUFFER = 1000  # images; Ultralytics' cap too
BATCHES_BUFFERED = 8  # the automatic size holds this many of a process's batches


def partner_buffer_size(images: int, batch: int) -> int:
    """The automatic buffer size of a loader process: min(images, 8 x its batch, 1000), Ultralytics' rule."""
    return max(1, min(images, BATCHES_BUFFERED * batch, MAX_PARTNER_BUFFER))


class MixingBuffer:
    """The last ``capacity`` samples added (already resized), as the ``SampleDataset`` mosaic and mixup draw from.

    Index ``i`` names one of the buffered samples (0 = the oldest kept), not an image of the split.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"a mixing buffer holds at least 1 image, got capacity={capacity}")
        self.samples: deque[Sample] = deque(maxlen=capacity)

    @property
    def capacity(self) -> int:
        """The most samples kept."""
        return self.samples.maxlen or 0

    def add(self, sample: Sample) -> None:
        """Keep ``sample``; the oldest one leaves when the buffer is full."""
        self.samples.append(sample)

    def clear(self) -> None:
        """Forget every sample."""
        self.samples.clear()

    def __len__(self) -> int:
        return len(self.samples)

    def load_sample(self, index: int) -> Sample:
        """A copy of buffered sample ``index``."""
        return _lend(self.samples[index])


class DatasetPartners:
    """``dataset``'s samples, resized to ``imgsz`` on the long side, through a buffer of the last ``capacity``.

    The buffer holds distinct images (by path), oldest first. ``len`` is the dataset's, so the transforms draw
    indices over the whole split as before; ``load_sample(i)`` loads sample ``i`` while the buffer fills (and keeps
    it), then lends a buffered sample drawn uniformly with numpy's global generator (which the loader seeds per
    worker and epoch; a mapping of ``i`` onto the slots would favour some of them whenever the split is not a
    multiple of the capacity). The mosaic calls :meth:`remember` with the image it starts from, and the dataset
    asks :meth:`lookup` before it decodes an image (``DetectionDataset.partners``), so an image still in the buffer
    is not decoded again, as in Ultralytics.
    """

    def __init__(self, dataset: SampleDataset, capacity: int, imgsz: int) -> None:
        if capacity < 1:
            raise ValueError(f"a partner buffer holds at least 1 image, got capacity={capacity}")
        self.dataset, self.capacity, self.imgsz = dataset, capacity, imgsz
        self.recent: OrderedDict[str, Sample] = OrderedDict()

    def __len__(self) -> int:
        return len(self.dataset)

    def clear(self) -> None:
        """Start empty again (the loader does so before each epoch, so that an epoch's draws depend on the seed of
        that epoch only, and a resumed epoch repeats them)."""
        self.recent.clear()

    def remember(self, sample: Sample) -> None:
        """Keep ``sample`` (resized, and never altered afterwards by the caller) as the newest buffered image."""
        self.recent[sample.path] = sample
        self.recent.move_to_end(sample.path)
        if len(self.recent) > self.capacity:
            self.recent.popitem(last=False)

    def lookup(self, path: str) -> Sample | None:
        """A copy of the buffered image of ``path``, or None."""
        sample = self.recent.get(path)
        return None if sample is None else _lend(sample)

    def load_sample(self, index: int) -> Sample:
        """Sample ``index`` loaded and kept while the buffer fills; a buffered one (a copy) once it is full."""
        if len(self.recent) < self.capacity:
            sample = resize_long_side(self.dataset.load_sample(index), self.imgsz)
            self.remember(sample)
            return _lend(sample)
        slot = int(np.random.randint(0, len(self.recent)))
        return _lend(next(islice(self.recent.values(), slot, None)))

    def __repr__(self) -> str:
        return f"DatasetPartners(capacity={self.capacity}, imgsz={self.imgsz})"


def _lend(sample: Sample) -> Sample:
    return replace_sample(sample, image=sample.image.copy())
