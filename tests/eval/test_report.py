from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from ouie.eval.report import render_report, write_report
from ouie.eval.runner import EvalOptions, EvalRun, run_eval
from tests.eval.fakes import ToneClassifier, write_dataset

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> EvalRun:
    data = write_dataset(tmp_path_factory.mktemp("reportdata"))
    return run_eval(
        EvalOptions(data_dir=data, backend="tone", latency_mixtures=1), classifier=ToneClassifier()
    )


def test_report_is_self_contained_with_the_sections(run: EvalRun, tmp_path: Path) -> None:
    page = render_report([run.result], run.traces, plots_dir=tmp_path / "png")
    assert not re.search(r"""(src|href)=["']?(https?:|//|file:)""", page)
    assert "<script" not in page and "<link" not in page
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 3  # confusion, PR curves, timelines
    assert all(base64.b64decode(i).startswith(PNG_MAGIC) for i in images)
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == [
        "01_confusion_tone.png",
        "02_pr_curves.png",
        "03_timelines.png",
    ]
    for text in ("Per class", "gunshot", "By event-to-background ratio", "Score timelines",
                 "onset collar 0.5 s", "sed_eval 0.2.1"):  # fmt: skip
        assert text in page
    mixtures = run.result.mixtures
    assert mixtures is not None and mixtures.constructed > 0
    assert f"{mixtures.constructed} of {mixtures.n} mixtures use a constructed background" in page
    assert "generated traffic-like noise" in page


def test_comparison_section_only_with_several_results(run: EvalRun, tmp_path: Path) -> None:
    other = run.result.model_copy(update={"backend": "second", "event_f1": 0.5})
    out = tmp_path / "cmp.html"
    write_report([run.result, other], out)
    page = out.read_text(encoding="utf-8")
    assert "Backend comparison" in page and "second" in page
    assert "Backend comparison" not in render_report([run.result])
    with pytest.raises(ValueError):
        write_report([], out)
