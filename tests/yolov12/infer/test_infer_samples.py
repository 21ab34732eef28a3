"""The bundled sample photos exist, decode, and carry a licence note."""

from __future__ import annotations

from yolov12.infer import read_image, sample_images


def test_sample_images_are_bundled_and_readable() -> None:
    paths = sample_images()
    assert [p.name for p in paths] == ["astronaut.jpg", "coffee.jpg"]
    shapes = [read_image(p).shape for p in paths]
    assert shapes == [(512, 512, 3), (400, 600, 3)]
    readme = (paths[0].parent / "README.md").read_text()
    assert "scikit-image 0.26.0" in readme and "Public domain" in readme and "CC0" in readme
