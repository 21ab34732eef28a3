"""``YOLO.track`` and ``yolov12 track`` end to end: a video file through sources, predictor, a detector and the
trackers, with ids on the results, drawn by ``plot`` and kept across calls with ``persist``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from yolov12.cli.main import main
from yolov12.infer.results import Boxes, Results
from yolov12.track import TRACKERS
from yolov12.track.metrics import evaluate_tracks

END_TO_END_IDF1_FLOOR = 0.8  # merged blobs of crossing digits cost a little; a broken tracker scores far lower


@pytest.mark.parametrize("tracker", [f"{name}.yaml" for name in TRACKERS])
def test_track_a_video_file(blob_model, digits_video, tracker) -> None:
    path, video = digits_video
    results = blob_model.track(str(path), tracker=tracker)
    assert [r.path for r in results] == [f"{path}:frame{i}" for i in range(len(video))]
    assert all(r.boxes.is_track and r.boxes.id.dtype == torch.float32 for r in results)
    truth = [(t.boxes, t.ids) for t in (video.truth(i) for i in range(len(video)))]
    tracks = [(r.boxes.xyxy.numpy(), r.boxes.id.int().numpy()) for r in results]
    metrics = evaluate_tracks(truth, tracks)
    assert metrics.idf1 >= END_TO_END_IDF1_FLOOR, metrics


def test_track_streams_results_lazily(blob_model, digits_video) -> None:
    path, _ = digits_video
    generator = blob_model.track(str(path), stream=True)
    first = next(generator)
    assert first.path.endswith(":frame0") and sorted(first.boxes.id.int().tolist()) == [1, 2, 3, 4, 5]
    generator.close()


def test_persist_keeps_tracks_across_calls_and_without_it_they_restart(blob_model, digits_video) -> None:
    _, video = digits_video
    frames = [video.frame(i)[0] for i in range(6)]
    persisted = [blob_model.track(frame, persist=True)[0] for frame in frames]
    assert blob_model._tracking.trackers["<images>"].frame == 6  # one tracker saw all six frames
    fresh = [blob_model.track(frame)[0] for frame in frames]
    assert blob_model._tracking.trackers["<images>"].frame == 1  # each call without persist starts anew
    first_ids = persisted[0].boxes.id.int().tolist()
    assert sorted(first_ids) == [1, 2, 3, 4, 5]
    assert all(set(r.boxes.id.int().tolist()) <= {1, 2, 3, 4, 5} for r in persisted)  # no new track: same objects
    centre = persisted[0].boxes.xywh[first_ids.index(1), :2]
    later = persisted[-1].boxes.xywh[persisted[-1].boxes.id.int().tolist().index(1), :2]
    assert float((later - centre).abs().max()) < 5 * 4.0 + 3  # id 1 is still the same digit (4 px a frame at most)
    assert all(sorted(r.boxes.id.int().tolist()) == list(range(1, len(r.boxes) + 1)) for r in fresh)  # restarts
    blob_model.track(frames[0], persist=True)
    assert blob_model._tracking.trackers["<images>"].frame == 2  # persist continues the last call's tracker
    blob_model.track(frames[0], persist=True, tracker="botsort.yaml")
    assert blob_model._tracking.trackers["<images>"].frame == 1  # another tracker config starts anew


def test_track_refuses_a_classifier(blob_model) -> None:
    blob_model.engine.info = type(blob_model.engine.info)(**{**vars(blob_model.engine.info), "task": "classify"})
    with pytest.raises(ValueError, match="cannot track with a 'classify' model"):
        blob_model.track(np.zeros((32, 32, 3), np.uint8))


def test_tracked_results_plot_summarise_and_tabulate_ids() -> None:
    image = np.full((80, 120, 3), 200, np.uint8)
    untracked = Results(image, "a.jpg", {0: "digit"}, boxes=Boxes(torch.tensor([[10.0, 20.0, 50.0, 60.0, 0.9, 0]]),
                                                                   (80, 120)))
    tracked = Results(image, "a.jpg", {0: "digit"}, boxes=Boxes(torch.tensor([[10.0, 20.0, 50.0, 60.0, 7, 0.9, 0]]),
                                                                 (80, 120)))
    assert untracked.boxes.id is None and tracked.boxes.id.tolist() == [7.0]
    assert tracked.boxes.conf.tolist() == pytest.approx([0.9]) and tracked.boxes.cls.tolist() == [0.0]
    assert not np.array_equal(tracked.plot(), untracked.plot())  # the label gains "id:7"
    assert np.array_equal(tracked.plot(labels=False), untracked.plot(labels=False))
    assert tracked.summary()[0]["track_id"] == 7 and "track_id" not in untracked.summary()[0]
    assert tracked.to_csv().splitlines()[0].endswith(",track_id") and tracked.to_csv().splitlines()[1].endswith(",7")
    assert "tracked" in repr(tracked.boxes) and len(tracked.boxes[0]) == 1


def test_cli_track(blob_model, digits_video, capsys) -> None:
    path, video = digits_video
    assert main(["track", f"model={blob_model.source}", f"source={path}", "tracker=botsort.yaml",
                 "gmc_method=none", "track_buffer=10"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith(f"{path}:frame0: 5 tracked, ids [") and lines[-1] == f"{len(video)} frame(s) done"


@pytest.mark.parametrize(("argument", "message"), [
    ("track_bufer=3", "unknown key 'track_bufer'; did you mean 'track_buffer'?"),
    ("tracker=nope.yaml", "tracker file nope.yaml does not exist"),
    ("gmc_method=orb", "gmc_method='orb'"),
])
def test_cli_track_errors_are_one_line(blob_model, digits_video, capsys, argument, message) -> None:
    path, _ = digits_video
    assert main(["track", f"model={blob_model.source}", f"source={path}", argument]) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1


def test_each_video_of_a_folder_is_tracked_on_its_own(blob_model, digits_video, tmp_path) -> None:
    import shutil  # noqa: PLC0415

    path, video = digits_video
    for name in ("a.avi", "b.avi"):
        shutil.copy(path, tmp_path / name)
    results = blob_model.track(str(tmp_path))
    second = results[len(video)]
    assert second.path == f"{tmp_path / 'b.avi'}:frame0"
    assert sorted(second.boxes.id.int().tolist()) == [1, 2, 3, 4, 5]  # not the first video's tracks
    assert set(blob_model._tracking.trackers) == {str(tmp_path / "a.avi"), str(tmp_path / "b.avi")}
