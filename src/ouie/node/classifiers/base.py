"""The one interface every classifier backend implements.

A backend takes fixed-length windows of mono float32 audio at its own sample rate and
returns one row of scores per window, one column per ouie event label (``EVENT_LABELS``
order). Backends built on AudioSet taggers map their classes to ouie labels themselves
(``ouie.node.classifiers.audioset_map``) so that nothing downstream ever sees, or could
emit, an AudioSet class such as Speech.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from ouie.core.labels import EVENT_LABELS, EventLabel

FloatArray = npt.NDArray[np.float32]


@runtime_checkable
class Classifier(Protocol):
    """A sound event classifier over fixed windows."""

    @property
    def model_id(self) -> str:
        """Stable identifier of the model and its version, e.g. ``yamnet-tflite@<sha8>``."""
        ...

    @property
    def sample_rate(self) -> int:
        """Sample rate (Hz) the windows must have."""
        ...

    @property
    def window_samples(self) -> int:
        """Length of one analysis window, in samples at ``sample_rate``."""
        ...

    @property
    def hop_samples(self) -> int:
        """Recommended hop between windows in streaming use, in samples."""
        ...

    def scores(self, frames: FloatArray) -> FloatArray:
        """Score a batch of windows.

        ``frames``: float32 ``[n, window_samples]`` in [-1, 1].
        Returns float32 ``[n, len(EVENT_LABELS)]`` with values in [0, 1].
        """
        ...


class ClassifierBase(ABC):
    """Base of the backends and of the classifiers that wrap one: the model id and window
    geometry, fixed when the classifier is made, behind the ``Classifier`` properties;
    subclasses give ``scores``."""

    def __init__(
        self, model_id: str, sample_rate: int, window_samples: int, hop_samples: int
    ) -> None:
        self._model_id = model_id
        self._sample_rate = sample_rate
        self._window_samples = window_samples
        self._hop_samples = hop_samples

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @property
    def window_samples(self) -> int:
        return self._window_samples

    @property
    def hop_samples(self) -> int:
        return self._hop_samples

    @abstractmethod
    def scores(self, frames: FloatArray) -> FloatArray:
        """Scores ``[n, len(EVENT_LABELS)]`` of windows ``[n, window_samples]``."""


class ClassifierWrapper(ClassifierBase):
    """Base of classifiers that wrap another (serialise, record, prefetch scores): the
    window geometry and model id are the inner classifier's; ``scores`` passes through."""

    def __init__(self, inner: Classifier) -> None:
        super().__init__(inner.model_id, inner.sample_rate, inner.window_samples, inner.hop_samples)
        self.inner = inner

    def scores(self, frames: FloatArray) -> FloatArray:
        return self.inner.scores(frames)


def labels() -> tuple[EventLabel, ...]:
    return EVENT_LABELS


class ClassifierError(RuntimeError):
    """A backend could not be created or run (missing model, wrong input, ...)."""
