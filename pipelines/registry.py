"""The MLflow model registry for native weights: register, promote by alias, resolve ``models:/`` URIs to files.

A registered version's files are an MLflow 3 *LoggedModel* (``models:/<model_id>``) holding the native checkpoint
(``best.safetensors``: safetensors + JSON, never a pickle) and is linked to its training run. Version tags tie it
to the data: ``run_id``, ``model_id``, ``dataset_digest``, ``dataset_source``, ``weights_file``,
``weights_sha256``. Serving deploys by alias: ``candidate`` is set on registration, ``promote`` moves another
alias (``champion``) to a version.

Example:
    >>> path = resolve_model_uri("models:/yolov12n-sample@champion")  # doctest: +SKIP
    >>> model, meta = load_weights(path)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.artifacts import download_artifacts
from mlflow.entities import LoggedModelOutput, LoggedModelStatus
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, RESOURCE_DOES_NOT_EXIST, ErrorCode

from yolov12.data.digest import file_sha256
from yolov12.data.object_keys import MAX_SEGMENT_BYTES, segment_problem
from yolov12.data.remote import cache_root

logger = logging.getLogger(__name__)

CANDIDATE_ALIAS = "candidate"
CHAMPION_ALIAS = "champion"
WEIGHTS_FORMAT = "yolov12-safetensors"
EMBEDDED_STORE = Path("mlruns") / "mlflow.db"  # under the working folder when MLFLOW_TRACKING_URI is unset
_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>[^/]+))$")


class RegistryError(ValueError):
    """A registry request cannot be served (bad URI, unknown model, version or alias); the message says the fix."""


class ModelNotFoundError(RegistryError):
    """The registered model, version or alias does not exist."""


def resolve_uri(explicit: str | None = None) -> str:
    """The tracking/registry URI: ``explicit``, else ``$MLFLOW_TRACKING_URI``, else the embedded sqlite store.

    The embedded store is ``sqlite:///<cwd>/mlruns/mlflow.db``. Relative sqlite paths become absolute, so that a
    Ray worker whose working folder differs still writes to the same database.
    """
    uri = explicit or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(Path.cwd() / EMBEDDED_STORE)}"
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////") and ":memory:" not in uri:
        uri = f"sqlite:///{(Path.cwd() / uri[len('sqlite:///'):]).resolve()}"
    elif "://" not in uri or uri.startswith("file:"):
        logger.warning("tracking URI %r is an MLflow file store, which MLflow 3 keeps for maintenance only; "
                       "use sqlite:///path/mlflow.db or an mlflow server", uri)
    return uri


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:////abs/path.db`` URI, else None."""
    return Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") and ":memory:" not in uri else None


class TrackingServerError(RuntimeError):
    """No MLflow server answers at the tracking URI."""


def mlflow_client(tracking_uri: str | None = None) -> MlflowClient:
    """An explicit client for the tracking store and the registry (same URI).

    Creates an embedded database's folder; for an ``http(s)`` URI, checks that the server answers first (MLflow's
    own client would retry for minutes before failing).
    """
    uri = resolve_uri(tracking_uri)
    database = sqlite_path(uri)
    if database is not None:
        database.parent.mkdir(parents=True, exist_ok=True)
    elif uri.startswith(("http://", "https://")):
        require_server(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def require_server(uri: str, timeout: float = 10.0) -> None:
    """Raise :class:`TrackingServerError` unless ``uri``/health answers."""
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout):  # noqa: S310 - the user's URI
            return
    except urllib.error.HTTPError:
        return  # it answers (auth or a proxy in front): let MLflow's client deal with it
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
    raise TrackingServerError(f"no MLflow server answers at {uri} ({reason}); start one (bash "
                              "infra/local/start-stack.sh) or unset MLFLOW_TRACKING_URI for the embedded store")


def is_not_found(exc: MlflowException) -> bool:
    return exc.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST)


def register_weights(client: MlflowClient, *, name: str, run_id: str, weights: str | Path,
                     tags: dict[str, Any] | None = None, alias: str | None = CANDIDATE_ALIAS) -> ModelVersion:
    """Register the native checkpoint ``weights`` (produced by run ``run_id``) as a new version of ``name``.

    The file becomes a READY LoggedModel of the run's experiment (an output of the run), the version is created
    from ``models:/<model_id>`` with ``tags`` plus ``run_id``/``weights_file``/``weights_sha256``/``format``, and
    ``alias`` (default ``candidate``) is moved to it.
    """
    weights = Path(weights)
    if not weights.is_file():
        raise FileNotFoundError(f"weights to register not found: {weights}")
    run = client.get_run(run_id)
    sha256 = file_sha256(weights)
    logged = client.create_logged_model(run.info.experiment_id, name=name, source_run_id=run_id,
                                        tags={"format": WEIGHTS_FORMAT}, model_type="yolov12")
    version_tags = {**(tags or {}), "run_id": run_id, "weights_file": weights.name, "weights_sha256": sha256,
                    "format": WEIGHTS_FORMAT, "model_id": logged.model_id}
    try:
        client.log_model_artifact(logged.model_id, str(weights))
    except Exception:
        client.finalize_logged_model(logged.model_id, LoggedModelStatus.FAILED)
        raise
    client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
    client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=0)])
    _ensure_registered_model(client, name)
    # source = the LoggedModel's storage location, not models:/<id>: MLflow's sqlite registry resolves models:/<id>
    # through the *global* tracking URI (a TODO in its sqlalchemy_store), which breaks explicit clients
    version = client.create_model_version(name, source=logged.artifact_location, run_id=run_id,
                                          tags={k: str(v) for k, v in version_tags.items()},
                                          model_id=logged.model_id)
    if alias:
        client.set_registered_model_alias(name, alias, version.version)
    logger.info("registered %s as %s version %s%s", weights, name, version.version, f" @{alias}" if alias else "")
    return client.get_model_version(name, version.version)


def _ensure_registered_model(client: MlflowClient, name: str) -> None:
    try:
        client.create_registered_model(name, description="YOLOv12 native weights (safetensors + JSON)")
    except MlflowException as exc:
        if exc.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
            raise


def promote(name: str, version: str | int, alias: str = CHAMPION_ALIAS, *,
            tracking_uri: str | None = None) -> ModelVersion:
    """Point ``alias`` of registered model ``name`` at ``version`` (serving deploys ``models:/name@alias``)."""
    client = mlflow_client(tracking_uri)
    model_version = get_version(client, name, str(version))
    client.set_registered_model_alias(name, alias, model_version.version)
    logger.debug("models:/%s@%s -> version %s", name, alias, model_version.version)
    return client.get_model_version(name, model_version.version)


@dataclass(frozen=True)
class ModelURI:
    """A parsed ``models:/NAME@alias`` or ``models:/NAME/VERSION`` URI."""

    name: str
    alias: str | None = None
    version: str | None = None

    @classmethod
    def parse(cls, uri: str) -> ModelURI:
        match = _URI.match(uri.strip())
        if match is None:
            raise RegistryError(f"{uri!r} is not a registered-model URI; use models:/NAME@alias or models:/NAME/3")
        return cls(match["name"], match["alias"], match["version"])

    def __str__(self) -> str:
        return f"models:/{self.name}@{self.alias}" if self.alias else f"models:/{self.name}/{self.version}"


def get_version(client: MlflowClient, name: str, version: str) -> ModelVersion:
    """The model version, or :class:`ModelNotFoundError` naming the versions that exist."""
    _require_model(client, name)
    try:
        return client.get_model_version(name, version)
    except MlflowException as exc:
        if not (is_not_found(exc) or exc.error_code == "INVALID_PARAMETER_VALUE"):
            raise
    known = sorted((str(v.version) for v in client.search_model_versions(f"name = '{name}'")), key=int)
    raise ModelNotFoundError(f"model {name!r} has no version {version!r}; versions: {', '.join(known) or 'none'}")


def get_version_by_alias(client: MlflowClient, name: str, alias: str) -> ModelVersion:
    """The version ``alias`` points at, or :class:`ModelNotFoundError` naming the aliases that exist."""
    model = _require_model(client, name)
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if not (is_not_found(exc) or exc.error_code == "INVALID_PARAMETER_VALUE"):
            raise
    aliases = ", ".join(f"{a}->{v}" for a, v in sorted(model.aliases.items())) or "none"
    raise ModelNotFoundError(f"model {name!r} has no alias {alias!r} (aliases: {aliases}); "
                             f"set it with: yolov12 promote {name} VERSION --alias {alias}")


def _require_model(client: MlflowClient, name: str):
    try:
        return client.get_registered_model(name)
    except MlflowException as exc:
        if not is_not_found(exc):
            raise
    known = [m.name for m in client.search_registered_models(max_results=50)]
    raise ModelNotFoundError(f"no registered model {name!r} at {client.tracking_uri}; "
                             f"registered: {', '.join(sorted(known)) or 'none'}")


def lookup(uri: str | ModelURI, client: MlflowClient) -> ModelVersion:
    """The model version a ``models:/`` URI names (aliases are resolved now: they move)."""
    parsed = uri if isinstance(uri, ModelURI) else ModelURI.parse(uri)
    if parsed.alias:
        return get_version_by_alias(client, parsed.name, parsed.alias)
    return get_version(client, parsed.name, str(parsed.version))


def resolve_model_uri(uri: str, *, tracking_uri: str | None = None, cache_dir: str | Path | None = None) -> Path:
    """Download the native weights a ``models:/NAME@alias`` / ``models:/NAME/3`` URI names; return the local file.

    Files are cached under ``cache_dir`` (default ``$YOLOV12_CACHE/models``) by the LoggedModel id, so a version
    is downloaded once; the alias is looked up on every call. The file's sha256 is checked against the version tag.
    """
    client = mlflow_client(tracking_uri)
    version = lookup(uri, client)
    file_name = version.tags.get("weights_file")
    if not file_name or version.tags.get("format") != WEIGHTS_FORMAT:
        raise RegistryError(f"{uri} (version {version.version}) was not registered by register_weights: its tags "
                            f"lack weights_file/format={WEIGHTS_FORMAT}")
    _require_plain_name(uri, version, "weights_file", file_name)
    model_id = model_id_of(version)
    if model_id:
        folder_name = _safe(model_id)
        _require_plain_name(uri, version, "model_id", folder_name, shown=model_id)
    else:
        folder_name = _safe(f"{version.name}-{version.version}")[:MAX_SEGMENT_BYTES]  # never '.' or '..': has '-'
    folder = Path(cache_dir or cache_root() / "models") / folder_name
    target = folder / file_name
    expected = version.tags.get("weights_sha256")
    if target.is_file() and (not expected or file_sha256(target) == expected):
        return target
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".download-", dir=folder.parent))
    try:
        source = f"{version.source.rstrip('/')}/{file_name}"
        local = Path(download_artifacts(artifact_uri=source, dst_path=str(staging), tracking_uri=client.tracking_uri,
                                        registry_uri=client.tracking_uri))
        if not local.is_file():
            raise RegistryError(f"{uri} (version {version.version}): {file_name} missing from {version.source}")
        if expected and file_sha256(local) != expected:
            raise RegistryError(f"{uri} (version {version.version}): downloaded {file_name} does not match its "
                                "registered sha256; the artifact store was changed behind the registry")
        local.rename(staging / f".{file_name}")
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        (staging / f".{file_name}").rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("%s -> %s", uri, target)
    return target


def _require_plain_name(uri: str, version: ModelVersion, tag: str, value: str, shown: str | None = None) -> None:
    """Refuse a tag value (``shown``, as ``value`` once made a file name) that would make a path leave its folder.

    Tags can be edited by anyone with write access to the registry, so they are checked before they name a file.
    """
    problem = segment_problem(value)
    if problem:
        raise RegistryError(f"{uri} (version {version.version}): tag {tag}={shown or value!r} cannot name a file in "
                            f"the model's folder ({problem}); register the weights again with register_weights, "
                            "which sets it to the checkpoint's file name")


def model_id_of(version: ModelVersion) -> str | None:
    """The LoggedModel id behind a version (the sqlite registry does not return it: we also keep it as a tag)."""
    return version.model_id or version.tags.get("model_id")


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)
