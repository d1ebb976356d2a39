"""Settings of the classifier backends (the node's ``classifier:`` section), one model each.

Every backend shares ``ClassifierSettings`` (model folder, threads, hop) and adds its own
fields in a subclass whose ``backend`` is a ``Literal`` naming it; ``BackendSettings`` is the
union of those, discriminated by ``backend``, so a setting of another backend (``gate`` under
``backend: yamnet``, say) or a misspelt backend name is refused when the file is loaded.
``backend`` may be left out and means ``auto``: the cascade where the AudioSet teachers are
installed, the bundled ouie-compact elsewhere (``ouie.node.classifiers.auto``). It used to
mean ``compact``; a node that must run ouie-compact alone says ``backend: compact``.

The models live here, not beside each backend in ``ouie.node.classifiers``, because config
sits below the node in the layers: the node's settings tree must be readable (``ouie
check``) without importing any backend. Adding a backend therefore touches its module and
this one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import Discriminator, Field, Tag

from ouie.config.base import Section
from ouie.core.labels import EventLabel

DEFAULT_BACKEND = "auto"


class ClassifierSettings(Section):
    """What every backend takes. As such (``backend`` any name) it is a request that the
    registry turns into the named backend's own model (``resolve``)."""

    backend: str = Field(default=DEFAULT_BACKEND, description="registered backend name")
    model_dir: Path | None = Field(default=None, description="overrides OUIE_MODEL_DIR")
    threads: int = Field(default=1, ge=1, le=64, description="inference threads")
    hop_s: float | None = Field(default=None, gt=0.0, le=2.0, description="override the hop")


class CompactSettings(ClassifierSettings):
    """ouie-compact (bundled); ``model_dir`` may hold a locally trained build."""

    backend: Literal["compact"] = "compact"


class YamnetSettings(ClassifierSettings):
    backend: Literal["yamnet"] = "yamnet"


class Mn04Settings(ClassifierSettings):
    backend: Literal["mn04"] = "mn04"
    device: Literal["cpu", "cuda"] = Field(
        default="cpu", description="onnxruntime provider; cuda needs onnxruntime-gpu"
    )


class GatedSettings(ClassifierSettings):
    """The backends that run the cascade (``cascade``, and ``auto`` when the teachers are
    installed)."""

    gate: float = Field(
        default=0.05,
        gt=0.0,
        lt=1.0,
        description="a window goes to the teachers when some label's compact score reaches "
        "this (chosen on the source-disjoint builds, docs/benchmarks.md)",
    )
    teacher_mix: Literal["mean", "logit"] = Field(
        default="mean",
        description="how YAMNet's and mn04's mapped scores are combined on a candidate: their "
        "mean, or the mean of their logits (measured, not the default; the shipped thresholds "
        "are the mean's, so tune them again for it: docs/eval.md, session 15)",
    )
    compact_labels: list[EventLabel] = Field(
        default_factory=list,
        description="labels whose score on a candidate is the larger of the teachers' and "
        "ouie-compact's own, for a class the student hears where the teachers do not (none by "
        "default; measured in docs/eval.md, session 19; tune the thresholds again for it)",
    )


class CascadeSettings(GatedSettings):
    backend: Literal["cascade"] = "cascade"


class AutoSettings(GatedSettings):
    backend: Literal["auto"] = "auto"


def _backend_of(value: Any) -> str:
    """The tag of a raw section (dict) or a model; a section without one is ``auto``."""
    if isinstance(value, dict):
        return str(value.get("backend", DEFAULT_BACKEND))
    return str(getattr(value, "backend", DEFAULT_BACKEND))


BackendSettings = Annotated[
    Annotated[CompactSettings, Tag("compact")]
    | Annotated[YamnetSettings, Tag("yamnet")]
    | Annotated[Mn04Settings, Tag("mn04")]
    | Annotated[CascadeSettings, Tag("cascade")]
    | Annotated[AutoSettings, Tag("auto")],
    Discriminator(_backend_of),
]


def _models_by_tag() -> dict[str, type[ClassifierSettings]]:
    # read from the union itself, so the list of backends is written down once
    (union, _discriminator) = get_args(BackendSettings)
    out: dict[str, type[ClassifierSettings]] = {}
    for member in get_args(union):
        model, tag = get_args(member)
        out[tag.tag] = model
    return out


#: Each backend's own settings model, by name (the registry's list of backends).
BACKEND_MODELS: dict[str, type[ClassifierSettings]] = _models_by_tag()


def resolve(settings: ClassifierSettings) -> ClassifierSettings:
    """``settings`` as its backend's own model. A plain ``ClassifierSettings`` (or one whose
    ``backend`` was changed with ``model_copy``) keeps every field the target model has;
    the backend's other fields take their defaults. Raises ``KeyError`` for an unknown name
    and pydantic's ``ValidationError`` for values the backend refuses."""
    model = BACKEND_MODELS[settings.backend]
    if type(settings) is model:
        return settings
    fields = {k: v for k, v in settings.model_dump().items() if k in model.model_fields}
    return model.model_validate(fields)
