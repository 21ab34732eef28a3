"""Serving config, the application builder, image decoding and engine choice (no Ray cluster needed)."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from serve_support import png_claiming

from serve.app import build_app, detector_options
from serve.config import ModelSettings, ServeAppConfig
from serve.images import ImageError, ImageHeader, check_image, decode_image
from serve.runtime import ModelSourceError, choose_backend, resolve_source
from yolov12.config.base import ConfigError
from yolov12.infer.image_io import read_image
from yolov12.infer.samples import sample_images


def test_config_parses_cli_text_and_rejects_typos_with_a_hint() -> None:
    config = ServeAppConfig.from_overrides({"model": "w.safetensors", "max_batch_size": "4",
                                            "models": "{b: other.safetensors}",
                                            "autoscaling": "{min_replicas: 1, max_replicas: 3}"})
    assert config.max_batch_size == 4 and config.models == {"b": "other.safetensors"}
    assert config.autoscaling.max_replicas == 3 and config.detector_max_ongoing_requests == 16 + 16  # + sessions
    with pytest.raises(ConfigError, match="did you mean 'max_batch_size'"):
        ServeAppConfig.from_overrides({"model": "w", "max_batch": 4})
    with pytest.raises(ConfigError, match="min_replicas=3 is above max_replicas=1"):
        ServeAppConfig.from_overrides({"model": "w", "autoscaling": {"min_replicas": 3, "max_replicas": 1}})
    with pytest.raises(ConfigError, match="device"):
        ServeAppConfig.from_overrides({"model": "w", "device": "tpu"})
    assert config.source_for("") == "w.safetensors" and config.source_for("b") == "other.safetensors"
    with pytest.raises(KeyError, match="serves: default, b"):
        config.source_for("c")


def test_build_app_maps_config_to_deployment_options() -> None:
    config = ServeAppConfig.from_overrides({"model": "models:/m@champion", "max_batch_size": 16, "num_gpus": 1,
                                            "autoscaling": {"min_replicas": 1, "max_replicas": 4,
                                                            "target_ongoing_requests": 12}})
    options = detector_options(config)
    assert options["max_ongoing_requests"] == 32 + 16  # 2 x max_batch_size, and one per tracking session
    assert options["ray_actor_options"] == {"num_cpus": 1.0, "num_gpus": 1}
    assert options["autoscaling_config"]["max_replicas"] == 4 and "num_replicas" not in options
    assert ModelSettings.model_validate(options["user_config"]).model == "models:/m@champion"
    app = build_app({"model": "models:/m@champion", "num_replicas": 2})
    assert type(app).__name__ == "Application"
    with pytest.raises(ConfigError, match="unknown key"):
        build_app({"model": "x", "bogus": 1})


def test_the_default_layout_is_one_detector_that_serves_http_and_multiplexes() -> None:
    from serve.http_api import Ingress

    single = build_app({"model": "w", "models": "{b: x.safetensors}", "num_cpus": 2})._bound_deployment
    assert single.name == "Detector" and single.func_or_class is Ingress.func_or_class
    detector_handle, _, model_config = single.init_args
    assert detector_handle is None and model_config["model"] == "w"
    assert single.ray_actor_options["num_cpus"] == 2  # the model's resources, not the ingress's
    user_config = ModelSettings.model_validate(single._deployment_config.user_config)
    assert user_config.model == "w" and user_config.models == {"b": "x.safetensors"}  # reconfigure loads them
    # batching's 16 plus one slot per tracking session the replica may hold
    assert single._deployment_config.max_ongoing_requests == 16 + 16

    with pytest.raises(ConfigError, match="ingress_num_cpus configure the separate Ingress deployment"):
        ServeAppConfig.from_overrides({"model": "w", "ingress_num_cpus": 2})  # would do nothing in this layout
    dumped = ServeAppConfig.from_overrides({"model": "w"}).model_dump()
    assert ServeAppConfig.model_validate(dumped).single_deployment  # a full dump (defaults included) round-trips
    split = build_app({"model": "w", "single_deployment": "false"})._bound_deployment
    assert split.name == "Ingress" and type(split.init_args[0]).__name__ == "Application"
    assert split._deployment_config.max_ongoing_requests == 64
    detector = split.init_args[0]._bound_deployment
    assert detector.name == "Detector" and detector._deployment_config.max_ongoing_requests == 16


@pytest.mark.filterwarnings("ignore:The `metrics_interval_s` field:DeprecationWarning")
def test_autoscaling_reaction_keys_reach_ray_only_when_given() -> None:
    from ray.serve.config import AutoscalingConfig

    default = detector_options(ServeAppConfig.from_overrides({"model": "w", "autoscaling": {"max_replicas": 2}}))
    assert not {"look_back_period_s", "metrics_interval_s"} & set(default["autoscaling_config"])  # Ray's defaults
    fast = {"max_replicas": 2, "upscale_delay_s": 1, "look_back_period_s": 2, "metrics_interval_s": 0.5}
    options = detector_options(ServeAppConfig.from_overrides({"model": "w", "autoscaling": fast}))
    ray_config = AutoscalingConfig(**options["autoscaling_config"])
    assert (ray_config.look_back_period_s, ray_config.metrics_interval_s, ray_config.upscale_delay_s) == (2, 0.5, 1)
    with pytest.raises(ConfigError, match="look_back_period_s=0.5 must be above metrics_interval_s=1.0"):
        ServeAppConfig.from_overrides({"model": "w", "autoscaling": {"look_back_period_s": 0.5,
                                                                     "metrics_interval_s": 1}})


def test_decode_gives_the_pixels_read_image_gives_and_refuses_the_rest() -> None:
    path = sample_images()[0]
    np.testing.assert_array_equal(decode_image(Path(path).read_bytes(), 10**8), read_image(path))
    image = read_image(path)
    for fmt in ("PNG", "BMP", "WEBP"):
        buffer = io.BytesIO()
        Image.fromarray(image[..., ::-1]).save(buffer, fmt, **({"lossless": True} if fmt == "WEBP" else {}))
        np.testing.assert_array_equal(decode_image(buffer.getvalue(), 10**8), image)
    cases = [(b"", 400, "no image"), (b"hello world", 415, "not a JPEG"),
             (png_claiming(20000, 20000), 413, "above the limit"),
             (png_claiming(5000, 5000), 413, "above the limit"),
             (Path(path).read_bytes()[:300], 400, "not a valid image")]
    for data, status, fragment in cases:
        with pytest.raises(ImageError, match=fragment) as error:
            decode_image(data, max_pixels=4000 * 4000)
        assert error.value.status == status
    gray = cv2.imencode(".png", np.full((20, 30), 7, np.uint8))[1].tobytes()
    assert decode_image(gray, 10**6).shape == (20, 30, 3)


def test_header_check_refuses_without_decoding_and_errors_keep_their_status_across_processes() -> None:
    height, width = read_image(sample_images()[0]).shape[:2]
    assert check_image(Path(sample_images()[0]).read_bytes(), 10**8) == ImageHeader("JPEG", width, height, 3, 8)
    for data, status in [(b"", 400), (b"hello world", 415), (png_claiming(5000, 5000), 413)]:
        with pytest.raises(ImageError) as error:
            check_image(data, max_pixels=4000 * 4000)
        assert error.value.status == status
    cut_short = png_claiming(64, 64)  # the header is fine (the ingress lets it through), the pixels are missing
    assert check_image(cut_short, 10**6) == ImageHeader("PNG", 64, 64, 3, 8)
    with pytest.raises(ImageError, match="not a valid image") as error:
        decode_image(cut_short, 10**6)
    returned = pickle.loads(pickle.dumps(ImageError("too large", 413)))  # as the Detector returns it to the ingress
    assert isinstance(returned, ImageError) and returned.status == 413 and str(returned) == "too large"


def test_engine_choice_follows_artifact_and_hardware(tmp_path: Path) -> None:
    weights = tmp_path / "m.safetensors"
    weights.write_bytes(b"x")
    assert choose_backend("auto", weights, "cpu") == "openvino"  # OpenVINO is installed; no GPU here
    assert choose_backend("torch", weights, "cpu") == "torch"
    assert choose_backend("auto", tmp_path / "m.onnx", "cpu") == "onnxruntime"
    assert choose_backend("openvino", tmp_path / "m.onnx", "cpu") == "openvino"
    with pytest.raises(ModelSourceError, match="onnxruntime artifact"):
        choose_backend("tensorrt", tmp_path / "m.onnx", "cuda")
    source = resolve_source(str(weights))
    assert source.name == "m" and len(source.version) == 12
    with pytest.raises(ModelSourceError, match="does not exist"):
        resolve_source(str(tmp_path / "missing.safetensors"))


@pytest.mark.slow
def test_native_weights_are_exported_once_for_the_cpu_engine_and_agree_with_torch(
        confident_weights: Path, tmp_path: Path) -> None:
    import time

    from serve.runtime import InferenceRequest, RequestError, load_serving_model

    image = read_image(sample_images()[0])
    request = [InferenceRequest(image, conf=0.3, iou=0.6, max_det=300)]
    torch_model = load_serving_model(str(confident_weights), backend="torch", imgsz=64, threads=1)
    built = load_serving_model(str(confident_weights), imgsz=64, max_batch=4, threads=1, cache_dir=str(tmp_path))
    assert built.describe()["backend"] == "openvino" and str(tmp_path) in built.describe()["artifact"]
    started = time.perf_counter()
    cached = load_serving_model(str(confident_weights), imgsz=64, max_batch=4, threads=1, cache_dir=str(tmp_path))
    assert cached.describe()["artifact"] == built.describe()["artifact"] and time.perf_counter() - started < 20
    assert len(list(tmp_path.iterdir())) == 1  # one cache entry, no leftovers of the staging folder
    reference, exported = torch_model.predict(request)[0], cached.predict(request)[0]
    assert len(reference.detections) > 0
    assert abs(len(exported.detections) - len(reference.detections)) <= 1
    count = min(len(exported.detections), len(reference.detections))
    np.testing.assert_allclose(-np.sort(-exported.detections[:, 4])[:count],
                               -np.sort(-reference.detections[:, 4])[:count], atol=1e-3)
    refused = cached.predict([InferenceRequest(image, 0.3, 0.6, 300, imgsz=128)])[0]
    assert isinstance(refused, RequestError) and "runs 64x64 only" in str(refused)


def test_serve_command_checks_its_arguments_before_starting_anything() -> None:
    from serve.cli import SERVE_COMMAND
    from yolov12.cli.arguments import CommandLineError

    assert SERVE_COMMAND.name == "serve"
    with pytest.raises(CommandLineError, match="needs a model"):
        SERVE_COMMAND.run([])
    with pytest.raises(CommandLineError, match="did you mean 'imgsz'"):
        SERVE_COMMAND.run(["model=w.safetensors", "imgszz=320"])
    with pytest.raises(ConfigError, match="max_batch_size"):
        SERVE_COMMAND.run(["model=w.safetensors", "max_batch_size=0"])
    with pytest.raises(CommandLineError, match="on every node instead"):
        SERVE_COMMAND.run(["model=w.safetensors", "haproxy=true", "address=auto"])


def test_api_key_is_required_only_when_configured_and_missing_fails_closed(monkeypatch) -> None:
    from serve.config import IngressSettings, MissingApiKeyError
    from serve.http_api import ApiError, api_key_from, check_api_key

    settings = IngressSettings(api_key_env="YOLOV12_TEST_KEY")
    assert api_key_from(IngressSettings()) is None
    check_api_key(None, api_key_from(IngressSettings()))  # not configured: open
    monkeypatch.delenv("YOLOV12_TEST_KEY", raising=False)
    with pytest.raises(MissingApiKeyError, match="YOLOV12_TEST_KEY is not set"):  # configured but missing: closed
        api_key_from(settings)
    monkeypatch.setenv("YOLOV12_TEST_KEY", "")
    with pytest.raises(MissingApiKeyError, match="YOLOV12_TEST_KEY is empty"):
        api_key_from(settings)
    monkeypatch.setenv("YOLOV12_TEST_KEY", "s3cret")
    check_api_key("s3cret", api_key_from(settings))
    for sent in (None, "", "wrong", "s3cret "):
        with pytest.raises(ApiError) as error:
            check_api_key(sent, api_key_from(settings))
        assert error.value.status == 401
