"""Tracker YAMLs load into a typed TrackerConfig; bad keys and values are refused in one line."""

from __future__ import annotations

import pytest

from yolov12.config.base import ConfigError
from yolov12.config.tracker import TrackerConfig, load_tracker_config

ULTRALYTICS_BOTSORT = """\
tracker_type: botsort
track_high_thresh: 0.25
track_low_thresh: 0.1
new_track_thresh: 0.25
track_buffer: 30
match_thresh: 0.8
fuse_score: True
gmc_method: sparseOptFlow
proximity_thresh: 0.5
appearance_thresh: 0.8
with_reid: False
model: auto
"""


@pytest.mark.parametrize("name", ["bytetrack.yaml", "botsort.yaml", "bytetrack", "botsort"])
def test_shipped_trackers_load(name) -> None:
    config = load_tracker_config(name)
    assert config.tracker_type == name.removesuffix(".yaml")
    assert config.track_buffer == 30 and config.match_thresh == 0.8 and config.fuse_score


def test_an_ultralytics_botsort_yaml_loads_unchanged(tmp_path) -> None:
    path = tmp_path / "botsort.yaml"
    path.write_text(ULTRALYTICS_BOTSORT)
    config = load_tracker_config(path)
    assert config.tracker_type == "botsort" and config.gmc_method == "sparseOptFlow" and config.model == "auto"


def test_overrides_replace_file_keys() -> None:
    config = load_tracker_config("botsort.yaml", gmc_method=None, track_buffer=60)
    assert config.gmc_method == "none" and config.track_buffer == 60
    assert load_tracker_config(config) is config


@pytest.mark.parametrize(("text", "message"), [
    ("tracker_type: bytetrack\ntrack_bufer: 10\n", "unknown key 'track_bufer'; did you mean 'track_buffer'?"),
    ("tracker_type: deepsort\n", "tracker_type='deepsort'"),
    ("track_high_thresh: 1.5\n", "track_high_thresh=1.5 is out of range: use 0.0 <= track_high_thresh <= 1.0"),
    ("track_high_thresh: 0.2\ntrack_low_thresh: 0.3\n", "track_low_thresh=0.3 is above track_high_thresh=0.2"),
    ("with_reid: true\n", "re-identification is not implemented"),
    ("appearance_thresh: 0.25\n", "appearance_thresh=0.25 acts only with re-identification"),
    ("proximity_thresh: 0.3\n", "remove proximity_thresh (or set it to 0.5)"),
    ("model: osnet_x0_25.pt\n", "model='osnet_x0_25.pt' acts only with re-identification"),
    ("gmc_method: orb\n", "gmc_method='orb'"),
    ("- a list\n", "must be a mapping of tracker settings"),
    ("track_buffer: [\n", "is not valid YAML"),
])
def test_bad_tracker_files_are_refused_in_one_line(tmp_path, text, message) -> None:
    path = tmp_path / "tracker.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_tracker_config(path)
    assert message in str(info.value) and str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_a_missing_tracker_file_names_the_shipped_ones() -> None:
    with pytest.raises(ConfigError, match="tracker file nope.yaml does not exist; use bytetrack.yaml or botsort.yaml"):
        load_tracker_config("nope.yaml")


def test_defaults_are_ultralytics_bytetrack() -> None:
    assert TrackerConfig() == load_tracker_config("bytetrack.yaml")
