"""Distil ouie-compact from the AudioSet teachers (YAMNet + mn04), source-disjointly.

    python -m ouie.train.distill --cache DIR --models DIR --out DIR [--exclude-source REPO ...]

Why: ouie-compact trained on our ~1,300 clips with hard labels learns its recording sources
(0.66 recall at 15 % false clips on a holdout of other sources), while the AudioSet taggers,
trained on two million YouTube clips, hear gunshots, glass and sirens from any microphone.
Some dev sources are not even what their labels say to the taggers (many ``glassbreak_ei``
"glass" clips score 0 on YAMNet's Shatter and sound like engines), so hard labels alone
teach the student the source, not the sound.

The student keeps ouie-compact's runtime contract (``logmel`` [n, 96, 64] → ``scores``
[n, 8], onnxruntime, no torch on the node) and learns from every window of every clip in
the teacher cache (``ouie.train.teachers``; clips labelled ``unlabelled``, the game packages'
other effects, through the soft targets alone), three ways:

* **soft targets**: the mean of YAMNet's and mn04's AudioSet scores mapped to ouie's labels
  (``ouie.node.classifiers.audioset_map``), on every window, by binary cross-entropy and
  (weight ``logit_weight``) by a squared error on their logits, clamped to 0.5-99.5 %: the
  operating points are in the tails, where the teachers' ranking of quiet scores matters;
* **hard labels** (weight ``hard_weight``): the window labels of ``ouie.train.teacher_head``
  (target clips' event windows positive, non-target windows negative, the rest left out);
* **embeddings** (weight ``aux_weight``): a training-only head regresses the teachers'
  z-scored 1024 + 512-d embeddings (not exported); with ``--aux-target vocabulary``, their
  z-scored logits over every AudioSet class either teacher scores at least
  ``VOCABULARY_MIN_SCORE`` somewhere in the training windows instead (session 21).

Augmentation works on the log-mel patches themselves (ln of mel magnitude + 0.001), so no
audio is re-rendered and the teachers' targets stay those of the clean window: gain
(−20…+10 dB), a smooth random EQ (±6 dB), low-pass roll-off (sources recorded at 8 kHz),
mixing with a random non-target window at 0…20 dB event-to-background ratio (targets:
the larger of the two windows' soft targets; no embedding loss on mixtures), and frequency
and time masks; and, on ``comb_probability`` of the rows, a **reflection comb**: the
pavement or a facade returns a copy of the sound 0.2-6 ms late (a lamp-post microphone 4 m
up hears a shot 10 m away with a 3 ms ground echo at 0.7 of the direct level), which notches
the spectrum every 1/delay Hz. The twin's renderer adds exactly this, and the student had
learnt clean, close recordings: a gunshot's score fell from 0.21 to 0.06 at 35 m with the
ground reflection, 0.21 with the direct path alone (docs/eval.md).

Off in the shipped recipe, kept to rebuild the rows of docs/eval.md (sessions 14 to 17)
that measured them: ``--freq-mixstyle`` (each band's statistics over time mixed with another
row's), ``--min-mix-db`` (mixtures below 0 dB event-to-background ratio), ``--hard-veto`` (no
hard negative where the teachers hear the label), ``--teacher-mix logit`` (the mean of the
teachers' logits as the soft target), ``--ema`` (a moving average of the weights
exported), ``--source-balance`` (each source's share of a label's draws, session 16),
``--trust-generated`` (the generator's label, not the teachers', as the soft target of
generated car alarms, spray cans and crashes, session 17), ``--consistent-yamnet`` and
``--consistent-mixtures`` (YAMNet's half of the target taken from the augmented patch, or
from the mixture before the channel augmentations, instead of the clean window: session 18), and
``--pcen`` (a third input channel, the patch's per-channel energy normalisation, session 20).

``--exclude-source`` leaves every clip of those ``source_repo``s out, for the
source-disjoint builds that ``ouie eval --split source --builds`` reads (``build.json``).
Training must fit a 2-core machine: one thread, a fixed number of steps, checkpointed per
epoch in ``--out``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

from ouie.core.labels import EVENT_LABELS
from ouie.eval.builds import BUILD_FILE, BuildInfo
from ouie.node.classifiers.audioset_map import AudioSetMapper, logit_mean, read_class_mids
from ouie.node.classifiers.compact import model_id_for
from ouie.node.frontends import yamnet as frontend
from ouie.train.compact import CompactNet, export_onnx, write_digest
from ouie.train.synth import SPARSE_LABELS, SYNTH_SOURCE
from ouie.train.teacher_head import UNLABELLED, WindowLabels, label_windows, patch_peak_db
from ouie.train.teachers import MN04_CLASSES, YAMNET_CLASSES, TeacherCache, TeacherOutputs

FloatArray = npt.NDArray[np.float32]
LN_FLOOR = float(np.log(0.001))  # the front-end's log offset: silence in a patch
DB = float(np.log(10.0) / 20.0)  # 1 dB in ln-magnitude units
RECIPE_FILE = "recipe.json"
LOGIT_CLAMP = 0.005  # teachers' scores beyond 0.5 % / 99.5 % are not worth copying


class Recipe(BaseModel):
    """``recipe.json`` beside every build: how it was made (the data card reads it)."""

    model_config = ConfigDict(extra="forbid")

    command: str
    excluded_sources: list[str]
    trained_sources: list[str]
    teachers: list[str]
    steps: int
    batch_size: int
    widths: list[int]
    channel_norm: bool
    pcen: bool = False  # builds made before the option existed had no PCEN channel
    aux_target: str = "embeddings"  # builds made before the option existed: embeddings
    hard_weight: float
    aux_weight: float
    mix_probability: float
    min_gain_db: float = -20.0  # builds made before the option existed used -20 dB
    unlabelled_share: float = 0.0  # builds made before unlabelled clips existed had none
    logit_weight: float = 0.0
    comb_probability: float = 0.0  # builds made before the reflection comb existed had none
    teacher_positive: float = 0.0  # builds made before the option existed drew hard labels only
    freq_mixstyle: float = 0.0  # builds made before the option existed had none
    min_mix_db: float = 0.0  # builds made before the option existed mixed at 0-20 dB
    hard_veto: float = 0.0  # builds made before the option existed gave every hard negative
    teacher_mix: str = "mean"  # builds made before the option existed took the mean
    ema: float = 0.0  # builds made before the option existed exported the last weights
    source_balance: float = 1.0  # builds made before the option existed drew windows alike
    trust_generated: float = 0.0  # builds made before the option existed followed the teachers
    consistent_yamnet: float = 0.0  # builds made before the option existed: clean targets only
    consistent_mixtures: float = 0.0  # the same
    seed: int
    windows: int
    clips: int
    parameters: int
    fit_s: int
    losses: list[float]


@dataclass(frozen=True)
class DistillConfig:
    caches: tuple[Path, ...]
    models: Path
    out_dir: Path
    exclude_sources: tuple[str, ...] = ()
    widths: tuple[int, int, int, int] = (16, 32, 64, 128)
    channel_norm: bool = True
    pcen: bool = False
    # What the training-only head regresses (``AUX_TARGETS``): the teachers' embeddings (the
    # shipped recipe), or their logits over the AudioSet classes they use on our windows.
    # YAMNet's logits are a linear map of its embedding, so the second is the same signal
    # weighted towards the directions that name sounds (door, knock, firecracker, shout)
    # rather than all 1 536 alike, most of which describe nothing we detect.
    aux_target: str = "embeddings"
    steps: int = 2400
    epochs: int = 8  # checkpoints; the one-cycle schedule spans all steps
    batch_size: int = 128
    learning_rate: float = 3e-3
    weight_decay: float = 1e-3
    hard_weight: float = 0.25
    aux_weight: float = 0.5
    mix_probability: float = 0.5
    unlabelled_share: float = 0.2
    comb_probability: float = 0.5  # rows given one or two early reflections (``reflection_comb``)
    # A squared error on the teachers' logits beside the soft BCE (docs/eval.md: recall at 2 %
    # false clips out of source 0.236 with it, 0.098 without, the pool of effects in both).
    logit_weight: float = 0.1
    # Gain drawn from [min_gain_db, +10] dB, the soft target staying the clean teachers'. A
    # shot 100 m from a lamp post reaches the microphone 30-40 dB below a near one, but -45
    # lost more than it gained on the source-disjoint yardstick (docs/eval.md): the shipped
    # recipe keeps -20, so scripts/train_compact.sh rebuilds what is bundled.
    min_gain_db: float = -20.0
    # Windows the teachers score ≥ this for a label are drawn with that label's event windows
    # (0: hard-labelled event windows only). A label whose sources are left out has few
    # labelled windows, but the teachers hear it in other clips: game voices, speech, bangs.
    teacher_positive: float = 0.0
    # Rows whose per-band statistics over time are mixed with another row's (Freq-MixStyle,
    # Kim et al. / Schmid et al., DCASE 2022-23 device generalisation): a recording chain
    # colours every band of a clip alike, so borrowing another clip's colouring teaches the
    # student to ignore it. 0: off (the shipped recipe).
    freq_mixstyle: float = 0.0
    # Mixtures are drawn at an event-to-background ratio in [min_mix_db, 20] dB (ratio of the
    # two patches' mean magnitudes). The street puts events under traffic at -6 dB and below,
    # where `ouie eval` scores its mixtures; 0 is the shipped recipe.
    min_mix_db: float = 0.0
    # A non-target clip's window that the teachers score ≥ this for a label gets no hard label
    # for it (0: off, the shipped recipe). With ``teacher_positive`` such a window is drawn as
    # one of that label's and its soft target says yes while its hard label says no: a
    # collection's "other" clips that are gunshots to both teachers (gabemagee's) would teach
    # the student that a gunshot-like sound is not one.
    hard_veto: float = 0.0
    # How the teachers' scores are combined into the soft target (``TEACHER_MIXES``).
    teacher_mix: str = "mean"
    # Within a label, each recording source's share of the event windows drawn is
    # ∝ (its windows)^source_balance (1: every window alike, the shipped recipe; 0: every
    # source alike). One collection's 212 glass clips otherwise teach its recording chain as
    # the sound of glass.
    source_balance: float = 1.0
    # The event windows of generated car alarms, spray cans and crashes (``ouie.train.synth``,
    # the labels the dev data barely has) get this soft target for their own label and at most
    # 1 − this for every other (0: off, the shipped recipe: the teachers' scores). The
    # generator knows what it made; the teachers score its car alarms 0.10 as car alarms and
    # hear them as sirens, so a student that follows them calls the twin's car alarm a siren.
    # Trusted at 0.9 the student is sure of the generators and of no real recording of those
    # labels, and hears them in real non-targets (docs/eval.md, session 17): off.
    trust_generated: float = 0.0
    # Export an exponential moving average of the weights (and batch-norm statistics) with
    # this decay instead of the last step's (0: off, the shipped recipe). Averaging the end of
    # the trajectory is the usual cheap guard against a model that happens to stop somewhere
    # sharp; a rebuild's spread on the yardstick is as large as the gains measured.
    ema: float = 0.0
    # On this share of the rows, YAMNet's half of the soft target is YAMNet's score of the
    # augmented patch the student sees (gain, EQ, reflections, mixture, masks), not of the clean
    # window (0: off, the shipped recipe). YAMNet takes the student's own log-mel patches, so it
    # can teach on exactly the student's input; mn04 (another front-end, at 32 kHz) keeps its
    # clean-window score. A teacher that sees a different input than the student teaches
    # what the clean sound is, not what the augmented one sounds like (Beyer et al. 2022,
    # "Knowledge distillation: a good teacher is patient and consistent").
    consistent_yamnet: float = 0.0
    # The same on mixed rows only, and on the mixture as mixed, before gain, EQ, reflections
    # and masks (0: off): YAMNet says whether the event is still heard over the background it
    # was mixed with, where the shipped target takes the larger of the two windows' scores;
    # the channel augmentations stay invariances the student learns with the clean target.
    consistent_mixtures: float = 0.0
    seed: int = 2026
    threads: int = 1
    command: str = ""


@dataclass
class DistillData:
    patches: npt.NDArray[np.float16]
    soft: FloatArray  # [n, 8] teachers' mapped scores
    labels: WindowLabels
    embedding: FloatArray  # [n, d] the head's z-scored targets (``aux_targets``)
    negative_index: npt.NDArray[np.int64]  # windows of non-target clips (mixing backgrounds)
    hard_mask: FloatArray | None  # [n, 8] 0 where a hard negative is vetoed; None: no veto
    sample_p: npt.NDArray[np.float64]
    sources: list[str]
    n_clips: int
    teacher_ids: tuple[str, str]
    mn04_soft: FloatArray | None = None  # [n, 8] mn04's mapped scores (``consistent_yamnet``)


def _merge(caches: list[TeacherCache]) -> TeacherCache:
    if len(caches) == 1:
        return caches[0]
    offsets = np.cumsum([0] + [len(c.files) for c in caches[:-1]])
    first = caches[0]
    return TeacherCache(
        files=[f for c in caches for f in c.files],
        labels=[x for c in caches for x in c.labels],
        sources=[x for c in caches for x in c.sources],
        clip_of_window=np.concatenate(
            [c.clip_of_window + int(o) for c, o in zip(caches, offsets, strict=True)]
        ),
        patches=np.concatenate([c.patches for c in caches]),
        outputs=type(first.outputs)(
            *(
                np.concatenate([getattr(c.outputs, name) for c in caches])
                for name in type(first.outputs).__annotations__
            )
        ),
        teacher_ids=first.teacher_ids,
    )


#: How the two teachers' mapped scores become one soft target (``--teacher-mix``).
TEACHER_MIXES = ("mean", "logit")
#: What the training-only head regresses (``--aux-target``).
AUX_TARGETS = ("embeddings", "vocabulary")
#: An AudioSet class enters the vocabulary target when either teacher scores it at least this
#: on some training window: the rest of the 1 048 are never heard here, and z-scoring their
#: near-constant logits would only amplify noise.
VOCABULARY_MIN_SCORE = 0.2


def aux_targets(outputs: TeacherOutputs, keep: npt.NDArray[np.bool_], target: str) -> FloatArray:
    """``[kept windows, d]`` z-scored regression targets of the training-only head."""
    if target == "embeddings":
        values = np.concatenate([outputs.yamnet_embedding, outputs.mn04_embedding], axis=1)[keep]
    elif target == "vocabulary":
        scores = np.concatenate([outputs.yamnet_scores, outputs.mn04_scores], axis=1)[keep]
        heard = scores.max(axis=0) >= VOCABULARY_MIN_SCORE
        clamped = np.clip(scores[:, heard].astype(np.float64), 1e-4, 1.0 - 1e-4)
        values = np.log(clamped / (1.0 - clamped))
    else:
        raise ValueError(f"unknown aux target {target!r}: one of {AUX_TARGETS}")
    std = values.std(axis=0)
    varying = std > 1e-3
    return np.asarray(
        (values[:, varying] - values[:, varying].mean(axis=0)) / std[varying], dtype=np.float32
    )


def mapped_teachers(cache: TeacherCache, models: Path) -> tuple[FloatArray, FloatArray]:
    """YAMNet's and mn04's AudioSet scores, each mapped to ouie's eight labels."""
    yamnet = AudioSetMapper(read_class_mids(models / YAMNET_CLASSES))
    mn04 = AudioSetMapper(read_class_mids(models / MN04_CLASSES))
    return yamnet(cache.outputs.yamnet_scores), mn04(cache.outputs.mn04_scores)


def combine_teachers(yamnet: FloatArray, mn04: FloatArray, mix: str = "mean") -> FloatArray:
    """The two teachers' mapped scores as one soft target: their mean (``mean``), or the mean
    of their logits (``logit``, ``audioset_map.logit_mean``)."""
    if mix == "logit":
        return logit_mean([yamnet, mn04])
    if mix != "mean":
        raise ValueError(f"unknown teacher mix {mix!r}; one of {TEACHER_MIXES}")
    out: FloatArray = 0.5 * (yamnet + mn04).astype(np.float32)
    return out


def soft_targets(cache: TeacherCache, models: Path, mix: str = "mean") -> FloatArray:
    """The cached windows' soft targets (``combine_teachers`` of ``mapped_teachers``)."""
    return combine_teachers(*mapped_teachers(cache, models), mix)


class ConsistentYamnet:
    """YAMNet's mapped scores ``[n, 8]`` of log-mel patches as the student sees them."""

    def __init__(self, models: Path, threads: int) -> None:
        from ouie.models.store import resolve
        from ouie.train.compact import YAMNET_FILE, YamnetEmbeddings

        self._yamnet = YamnetEmbeddings(resolve(YAMNET_FILE, models), threads, with_scores=True)
        self._map = AudioSetMapper(read_class_mids(models / YAMNET_CLASSES))

    def __call__(self, patches: FloatArray) -> FloatArray:
        return self._map(self._yamnet.both(patches)[1]).astype(np.float32)


def mixed_targets(
    table: torch.Tensor,
    index: npt.NDArray[np.int64],
    back_index: npt.NDArray[np.int64],
    mix: torch.Tensor,
) -> torch.Tensor:
    """Each row's target from ``table``: its window's, or on mixed rows the larger of its
    window's and its background's."""
    return torch.where(mix[:, None], torch.maximum(table[index], table[back_index]), table[index])


def consistent_targets(
    target: torch.Tensor,
    yamnet_augmented: torch.Tensor,
    mn04_clean: torch.Tensor,
    rows: torch.Tensor,
) -> torch.Tensor:
    """The mean target with YAMNet's half taken from the augmented patch on ``rows``."""
    return torch.where(rows[:, None], 0.5 * (yamnet_augmented + mn04_clean), target)


def trusted_generated_targets(
    soft: FloatArray, targets: FloatArray, window_sources: npt.NDArray[np.str_], trust: float
) -> FloatArray:
    """``soft`` with the event windows of generated sparse-label clips set to their label:
    ``trust`` or the teachers' score if higher for it, at most ``1 − trust`` for the others."""
    sparse = [EVENT_LABELS.index(label) for label in SPARSE_LABELS]
    rows = (window_sources == SYNTH_SOURCE) & (targets[:, sparse] > 0).any(axis=1)
    out = soft.copy()
    out[rows] = np.where(
        targets[rows] > 0, np.maximum(soft[rows], trust), np.minimum(soft[rows], 1.0 - trust)
    )
    return out


def load_data(config: DistillConfig) -> DistillData:
    cache = _merge([TeacherCache.load(path) for path in config.caches])
    keep_clip = np.array([s not in config.exclude_sources for s in cache.sources])
    missing = set(config.exclude_sources) - set(cache.sources)
    if missing:
        raise ValueError(f"--exclude-source not in the cache: {sorted(missing)}")
    keep = keep_clip[cache.clip_of_window]
    labels = label_windows(cache.labels, cache.clip_of_window, patch_peak_db(cache.patches))
    embedding = aux_targets(cache.outputs, keep, config.aux_target)
    targets, weights = labels.targets[keep], labels.weights[keep]
    clip_targets = np.array([label in {str(x) for x in EVENT_LABELS} for label in cache.labels])
    # Mixing backgrounds come from labelled non-targets only: an unlabelled effect may be a shot.
    clip_unlabelled = np.array([label == UNLABELLED for label in cache.labels])
    is_negative = ~(clip_targets | clip_unlabelled)[cache.clip_of_window][keep]
    # Sampling: half the batch from event windows, balanced over the labels present; the rest
    # from every other window (negatives, and target clips' other windows for the soft loss),
    # ``unlabelled_share`` of the batch from unlabelled clips when there are any, so that a
    # large pool of effects does not crowd out the real negatives.
    yamnet, mn04 = mapped_teachers(cache, config.models)
    soft = combine_teachers(yamnet, mn04, config.teacher_mix)[keep]
    window_sources = np.asarray(cache.sources)[cache.clip_of_window][keep]
    if config.trust_generated > 0:
        soft = trusted_generated_targets(soft, targets, window_sources, config.trust_generated)
    p = np.zeros(len(targets), dtype=np.float64)
    event = targets > 0
    if config.teacher_positive > 0:
        event |= soft >= config.teacher_positive
    active = event.any(axis=1)
    present = [c for c in range(event.shape[1]) if event[:, c].any()]
    for c in present:
        members = event[:, c]
        if config.source_balance == 1.0:  # the shipped recipe: every window of the label alike
            p[members] += 0.5 / len(present) / members.sum()
            continue
        # Each source's share of the label ∝ (its windows)^source_balance, spread evenly
        # over its windows: 0 gives every source the same share, 1 every window.
        _, source_of, counts = np.unique(
            window_sources[members], return_inverse=True, return_counts=True
        )
        shares = counts.astype(np.float64) ** config.source_balance
        p[members] += 0.5 / len(present) * (shares / shares.sum() / counts)[source_of]
    hard_mask = None
    if config.hard_veto > 0:
        hard_mask = np.where(is_negative[:, None] & (soft >= config.hard_veto), 0.0, 1.0).astype(
            np.float32
        )
    unlabelled = clip_unlabelled[cache.clip_of_window][keep]
    share = config.unlabelled_share if unlabelled.any() else 0.0
    rest = ~active & ~unlabelled
    p[rest] += (0.5 - share) / max(1, int(rest.sum()))
    p[unlabelled] += share / max(1, int(unlabelled.sum()))
    return DistillData(
        patches=cache.patches[keep],
        soft=soft,
        labels=WindowLabels(targets, weights),
        embedding=embedding.astype(np.float32),
        negative_index=np.flatnonzero(is_negative),
        hard_mask=hard_mask,
        sample_p=p / p.sum(),
        sources=sorted({s for s, k in zip(cache.sources, keep_clip, strict=True) if k}),
        n_clips=int(keep_clip.sum()),
        teacher_ids=cache.teacher_ids,
        mn04_soft=mn04[keep] if config.consistent_yamnet or config.consistent_mixtures else None,
    )


def reflection_comb(n: int, rng: np.random.Generator) -> FloatArray:
    """``[n, N_MELS]`` ln-gains of one or two specular reflections per row, as the front-end's
    mel bands see them: |1 + Σ r·exp(−2πifτ)| averaged over each band's FFT bins (the 25 ms
    frame holds the direct sound and its echo, so the comb acts on the frame's spectrum).

    Delays log-uniform in 0.2-6 ms (path differences of 7 cm to 2 m), relative levels 0.3-0.95
    (spreading times a hard surface's reflection)."""
    weights = frontend.mel_matrix().astype(np.float64)  # [bins, bands]
    freqs = np.linspace(0.0, frontend.SAMPLE_RATE / 2.0, weights.shape[0])
    response = np.ones((n, freqs.size), dtype=np.complex128)
    for echo in range(2):
        present = np.ones(n, dtype=bool) if echo == 0 else rng.random(n) < 0.3
        delay = np.exp(rng.uniform(np.log(0.2e-3), np.log(6e-3), n))
        level = rng.uniform(0.3, 0.95, n) * present
        response += level[:, None] * np.exp(-2j * np.pi * freqs[None, :] * delay[:, None])
    band_gain = np.abs(response) @ weights / weights.sum(axis=0)
    return np.asarray(np.log(np.maximum(band_gain, 1e-3)), dtype=np.float32)


FREQ_MIXSTYLE_ALPHA = 0.4  # Beta(α, α) mixing weight, as in the DCASE systems that use it


def freq_mixstyle(x: torch.Tensor, rng: np.random.Generator, probability: float) -> torch.Tensor:
    """On ``probability`` of the rows of a log-mel batch [n, frames, bands], replace each
    band's mean and standard deviation over time by a mix of the row's and another row's."""
    n = int(x.shape[0])
    rows = rng.random(n) < probability
    if not rows.any():
        return x
    other = torch.from_numpy(rng.permutation(n))
    weight = torch.from_numpy(
        rng.beta(FREQ_MIXSTYLE_ALPHA, FREQ_MIXSTYLE_ALPHA, n).astype(np.float32)
    )[:, None, None]
    mean = x.mean(dim=1, keepdim=True)
    std = (x.var(dim=1, keepdim=True) + 1e-6).sqrt()
    mixed = (x - mean) / std * (weight * std + (1 - weight) * std[other]) + (
        weight * mean + (1 - weight) * mean[other]
    )
    return torch.where(torch.from_numpy(rows)[:, None, None], mixed, x)


def augment(
    x: torch.Tensor,
    background: torch.Tensor,
    mix: torch.Tensor,
    rng: np.random.Generator,
    min_gain_db: float = -20.0,
    comb_probability: float = 0.0,
    mixstyle_probability: float = 0.0,
    min_mix_db: float = 0.0,
    mixed: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Gain, EQ, low-pass, reflections, mixing (rows where ``mix``) and masks, in the log-mel
    domain. ``mixed``, when given, receives the patches as mixed, before the rest."""
    n, frames, bands = (int(size) for size in x.shape)
    magnitude = torch.exp(x) - 0.001
    if bool(mix.any()):
        ratio_db = torch.from_numpy(rng.uniform(min_mix_db, 20.0, n).astype(np.float32))
        level_x = magnitude.mean(dim=(1, 2))
        back = torch.exp(background) - 0.001
        level_b = back.mean(dim=(1, 2)).clamp(min=1e-6)
        scale = (level_x / level_b) * torch.exp(-ratio_db * DB)
        magnitude = (
            magnitude + torch.where(mix, scale, torch.zeros_like(scale))[:, None, None] * back
        )
    if mixed is not None:
        mixed.append(torch.log(magnitude.clamp(min=0.0) + 0.001))
    gain = torch.from_numpy(rng.uniform(min_gain_db, 10.0, n).astype(np.float32)) * DB
    band = torch.linspace(0.0, np.pi, bands)
    eq = torch.zeros(n, bands)
    for _ in range(3):
        amp = torch.from_numpy(rng.uniform(-2.0, 2.0, n).astype(np.float32)) * DB
        freq = torch.from_numpy(rng.uniform(0.5, 3.0, n).astype(np.float32))
        phase = torch.from_numpy(rng.uniform(0.0, np.pi, n).astype(np.float32))
        eq += amp[:, None] * torch.cos(freq[:, None] * band[None] + phase[:, None])
    lowpass = rng.random(n) < 0.25
    if lowpass.any():
        cutoff = rng.integers(28, 60, n)
        roll = torch.zeros(n, bands)
        for row in np.flatnonzero(lowpass):
            over = torch.arange(bands) - int(cutoff[row])
            roll[row] = torch.clamp(over.float(), min=0.0) * -6.0 * DB
        eq += roll
    combed = rng.random(n) < comb_probability
    if combed.any():
        eq[torch.from_numpy(combed)] += torch.from_numpy(reflection_comb(int(combed.sum()), rng))
    magnitude = magnitude.clamp(min=0.0) * torch.exp(gain[:, None, None] + eq[:, None, :])
    out = torch.log(magnitude + 0.001)
    if mixstyle_probability > 0:  # draws nothing when off, so older recipes rebuild exactly
        out = freq_mixstyle(out, rng, mixstyle_probability)
    for i in range(n):
        if rng.random() < 0.5:
            width = int(rng.integers(1, 9))
            low = int(rng.integers(0, bands - width))
            out[i, :, low : low + width] = LN_FLOOR
        if rng.random() < 0.3:
            width = int(rng.integers(1, 16))
            start = int(rng.integers(0, frames - width))
            out[i, start : start + width, :] = LN_FLOOR
    return out


def fit(net: CompactNet, data: DistillData, config: DistillConfig, log: bool = True) -> list[float]:
    rng = np.random.default_rng(config.seed)
    optimiser = torch.optim.AdamW(
        net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=config.learning_rate, total_steps=config.steps, pct_start=0.15
    )
    bce = nn.BCEWithLogitsLoss(reduction="none")
    soft = torch.from_numpy(data.soft)
    hard = torch.from_numpy(data.labels.targets)
    hard_w = torch.from_numpy(data.labels.weights)
    hard_mask = None if data.hard_mask is None else torch.from_numpy(data.hard_mask)
    embedding = torch.from_numpy(data.embedding)
    per_epoch = max(1, config.steps // config.epochs)
    average = (
        {k: v.detach().clone() for k, v in net.state_dict().items()} if config.ema > 0 else None
    )
    consistent = None
    if config.consistent_yamnet > 0 and config.consistent_mixtures > 0:
        raise ValueError("--consistent-yamnet and --consistent-mixtures exclude each other")
    if config.consistent_yamnet > 0 or config.consistent_mixtures > 0:
        if config.teacher_mix != "mean" or config.trust_generated > 0 or data.mn04_soft is None:
            raise ValueError("consistent teaching takes the mean target of both teachers")
        consistent = ConsistentYamnet(config.models, config.threads)
        mn04_soft = torch.from_numpy(data.mn04_soft)
    losses: list[float] = []
    total, started = 0.0, time.perf_counter()
    net.train()
    for step in range(config.steps):
        index = np.sort(rng.choice(len(data.sample_p), config.batch_size, p=data.sample_p))
        x = torch.from_numpy(data.patches[index].astype(np.float32))
        back_index = rng.choice(data.negative_index, config.batch_size)
        background = torch.from_numpy(data.patches[back_index].astype(np.float32))
        mix = torch.from_numpy(rng.random(config.batch_size) < config.mix_probability)
        mixed: list[torch.Tensor] | None = [] if config.consistent_mixtures > 0 else None
        x = augment(
            x,
            background,
            mix,
            rng,
            config.min_gain_db,
            config.comb_probability,
            config.freq_mixstyle,
            config.min_mix_db,
            mixed,
        )
        target = mixed_targets(soft, index, back_index, mix)
        if consistent is not None:
            if mixed is None:
                heard = x
                rows = torch.from_numpy(rng.random(config.batch_size) < config.consistent_yamnet)
            else:
                heard = mixed[0]
                drawn = rng.random(config.batch_size) < config.consistent_mixtures
                rows = mix & torch.from_numpy(drawn)
            yamnet = torch.zeros_like(target)
            if bool(rows.any()):
                yamnet[rows] = torch.from_numpy(consistent(heard[rows].numpy()))
            mn04 = mixed_targets(mn04_soft, index, back_index, mix)
            target = consistent_targets(target, yamnet, mn04, rows)
        logits, aux = net.forward_with_aux(x)
        loss = bce(logits, target).mean()
        if config.logit_weight > 0:
            # The operating points sit in the tails (a false-clip rate of 1-2 %), where BCE
            # barely tells 0.02 from 0.1; matching the teachers' logits copies their ranking.
            target_logit = torch.logit(target.clamp(LOGIT_CLAMP, 1.0 - LOGIT_CLAMP))
            loss = loss + config.logit_weight * ((logits - target_logit) ** 2).mean()
        w = hard_w[index]
        if float(w.sum()) > 0:
            hard_loss = bce(logits, hard[index])
            if hard_mask is None:  # kept apart so that the shipped recipe rebuilds bit for bit
                per_row = hard_loss.mean(dim=1)
            else:
                per_row = (hard_loss * hard_mask[index]).sum(dim=1) / hard_loss.shape[1]
            loss = loss + config.hard_weight * (per_row * w).sum() / w.sum()
        clean = ~mix
        if bool(clean.any()):
            loss = loss + config.aux_weight * ((aux[clean] - embedding[index][clean]) ** 2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        if average is not None:
            with torch.no_grad():
                for name, value in net.state_dict().items():
                    if value.dtype.is_floating_point:
                        average[name].mul_(config.ema).add_(value, alpha=1.0 - config.ema)
                    else:
                        average[name].copy_(value)
        total += float(loss.item())
        if (step + 1) % per_epoch == 0:
            losses.append(total / per_epoch)
            total = 0.0
            torch.save(net.state_dict(), config.out_dir / "checkpoint.pt")
            if log:
                print(
                    f"step {step + 1}/{config.steps}: loss {losses[-1]:.4f} "
                    f"({time.perf_counter() - started:.0f} s)",
                    flush=True,
                )
    if average is not None:
        net.load_state_dict(average)
    net.eval()
    return losses


def distill(config: DistillConfig, log: bool = True) -> Path:
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    config.out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    data = load_data(config)
    if log:
        print(
            f"{data.n_clips} clips, {len(data.patches)} windows from {len(data.sources)} "
            f"sources (excluded: {list(config.exclude_sources)}) "
            f"in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
    net = CompactNet(
        widths=config.widths,
        aux_outputs=data.embedding.shape[1],
        channel_norm=config.channel_norm,
        pcen=config.pcen,
    )
    started = time.perf_counter()
    losses = fit(net, data, config, log)
    fit_s = time.perf_counter() - started
    model_path = config.out_dir / "ouie_compact.onnx"
    check = torch.from_numpy(data.patches[:16].astype(np.float32))
    worst = export_onnx(net, model_path, check)
    digest = write_digest(model_path)
    model_id = model_id_for(digest)
    # every setting the recipe records is the config's own field of the same name
    settings = {
        name: getattr(config, name)
        for name in Recipe.model_fields
        if name in DistillConfig.__dataclass_fields__
    }
    recipe = Recipe(
        **settings,
        excluded_sources=list(config.exclude_sources),
        trained_sources=data.sources,
        teachers=list(data.teacher_ids),
        windows=len(data.patches),
        clips=data.n_clips,
        parameters=net.exported_parameters(),
        fit_s=round(fit_s),
        losses=[round(x, 4) for x in losses],
    )
    (config.out_dir / RECIPE_FILE).write_text(recipe.model_dump_json(indent=2) + "\n", "utf-8")
    if config.exclude_sources:  # a source-disjoint build: what ouie eval --split source reads
        info = BuildInfo(
            excluded_sources=list(config.exclude_sources),
            model_id=model_id,
            trained_sources=data.sources,
            teachers=list(data.teacher_ids),
        )
        (config.out_dir / BUILD_FILE).write_text(info.model_dump_json(indent=2) + "\n", "utf-8")
    (config.out_dir / "checkpoint.pt").unlink(missing_ok=True)
    if log:
        print(f"wrote {model_path} ({model_id}, onnxruntime vs torch {worst:.1e})")
    return model_path


#: The recipe's numeric settings that ``main`` exposes as ``--name-with-dashes``, with their help.
FLOAT_OPTIONS: dict[str, str | None] = {
    "hard_weight": None,
    "aux_weight": "weight of the training-only head's regression of the teachers' embeddings",
    "min_gain_db": None,
    "unlabelled_share": "share of each batch from clips labelled 'unlabelled' (soft targets only)",
    "logit_weight": "weight of a squared error on the teachers' logits, beside the soft BCE",
    "comb_probability": "share of rows given a ground or facade reflection (0 turns it off)",
    "teacher_positive": "draw windows the teachers score at least this for a label with its "
    "event windows (0: hard labels only)",
    "freq_mixstyle": "share of rows whose per-band statistics are mixed with another row's "
    "(0: off)",
    "min_mix_db": "lowest event-to-background ratio of the mixtures (dB; they go up to +20)",
    "ema": "export a moving average of the weights with this decay per step (0: the last "
    "step's weights)",
    "source_balance": "within a label, each source's share of the event windows drawn is "
    "proportional to its window count to this power (1: every window alike; 0: every source)",
    "trust_generated": "soft target of a generated car alarm's, spray can's or crash's event "
    "windows for their own label (at most 1 minus this for the others; 0: the teachers')",
    "consistent_yamnet": "share of rows whose YAMNet half of the target is YAMNet's score of "
    "the augmented patch (0: the clean window's)",
    "consistent_mixtures": "share of mixed rows whose YAMNet half of the target is YAMNet's "
    "score of the mixture before gain, EQ and masks (0: the larger of the two windows')",
    "hard_veto": "no hard negative for a label on a non-target window the teachers score at "
    "least this for it (0: off)",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ouie.train.distill", description=__doc__)
    parser.add_argument("--cache", type=Path, action="append", required=True, help=".npz")
    parser.add_argument("--models", type=Path, required=True, help="teacher class lists")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--exclude-source", action="append", default=[])
    parser.add_argument("--steps", type=int, default=DistillConfig.steps)
    parser.add_argument("--seed", type=int, default=DistillConfig.seed)
    for field, help_text in FLOAT_OPTIONS.items():
        parser.add_argument(
            "--" + field.replace("_", "-"),
            type=float,
            default=getattr(DistillConfig, field),
            help=help_text,
        )
    parser.add_argument(
        "--teacher-mix",
        choices=TEACHER_MIXES,
        default=DistillConfig.teacher_mix,
        help="combine the teachers' mapped scores by their mean or the mean of their logits",
    )
    parser.add_argument(
        "--aux-target",
        choices=AUX_TARGETS,
        default=DistillConfig.aux_target,
        help="what the training-only head regresses: the teachers' embeddings, or their "
        "logits over the AudioSet classes heard in the training windows",
    )
    parser.add_argument("--widths", default="16,32,64,128")
    parser.add_argument("--no-channel-norm", action="store_true")
    parser.add_argument(
        "--pcen", action="store_true", help="one more input channel: the patch's PCEN"
    )
    args = parser.parse_args(argv)
    widths = tuple(int(x) for x in args.widths.split(","))
    if len(widths) != 4:
        parser.error("--widths takes four numbers")
    config = DistillConfig(
        caches=tuple(args.cache),
        models=args.models,
        out_dir=args.out,
        exclude_sources=tuple(args.exclude_source),
        widths=(widths[0], widths[1], widths[2], widths[3]),
        steps=args.steps,
        seed=args.seed,
        channel_norm=not args.no_channel_norm,
        pcen=args.pcen,
        teacher_mix=args.teacher_mix,
        aux_target=args.aux_target,
        command=shlex.join(["python", "-m", "ouie.train.distill", *(argv or sys.argv[1:])]),
        **{field: getattr(args, field) for field in FLOAT_OPTIONS},
    )
    distill(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
