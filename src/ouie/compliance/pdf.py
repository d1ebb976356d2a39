"""A small Markdown → PDF renderer on matplotlib (already an ouie dependency for plots), so
the DPIA needs no LaTeX, browser or extra PDF library.

It handles the subset the generated documents use: ``#``/``##``/``###`` headings,
paragraphs, ``-`` bullets, ``>`` notes, pipe tables (wrapped cells, grid lines), images on
their own line (``![caption](file.png)``) and ``**bold**`` markers (dropped; the text is kept).
Pages are A4 portrait with a running footer (title and page number). Text is real text in
the PDF (DejaVu fonts are embedded), so it can be searched and copied.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PAGE_W_IN = 8.27
PAGE_H_IN = 11.69
MARGIN_IN = 0.75
PT_PER_IN = 72.0

_IMAGE = re.compile(r"^!\[(?P<alt>[^\]]*)\]\((?P<src>[^)]+)\)\s*$")
_TABLE_RULE = re.compile(r"^\|?\s*:?-{3,}")


def _plain(text: str) -> str:
    text = re.sub(r"\*\*(.+?)\*\*", r"\1", text)
    text = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"\1", text)
    text = re.sub(r"`([^`]+)`", r"\1", text)
    text = re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r"\1 (\2)", text)
    return text.replace("&nbsp;", " ")


@dataclass
class _Block:
    kind: str  # h1 h2 h3 p bullet quote table image rule
    text: str = ""
    rows: list[list[str]] = field(default_factory=list)


def parse(markdown: str) -> list[_Block]:
    blocks: list[_Block] = []
    paragraph: list[str] = []
    table: list[list[str]] = []

    def flush_paragraph() -> None:
        if paragraph:
            blocks.append(_Block("p", " ".join(s.strip() for s in paragraph)))
            paragraph.clear()

    def flush_table() -> None:
        if table:
            blocks.append(_Block("table", rows=[list(r) for r in table]))
            table.clear()

    for raw in markdown.splitlines():
        line = raw.rstrip()
        if line.startswith("|"):
            flush_paragraph()
            if _TABLE_RULE.match(line):
                continue
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            table.append([_plain(c) for c in cells])
            continue
        flush_table()
        stripped = line.strip()
        if not stripped:
            flush_paragraph()
            continue
        image = _IMAGE.match(stripped)
        heading = re.match(r"^(#{1,3})\s+(.*)$", stripped)
        if image:
            flush_paragraph()
            blocks.append(_Block("image", image.group("src"), rows=[[image.group("alt")]]))
        elif heading:
            flush_paragraph()
            blocks.append(_Block(f"h{len(heading.group(1))}", _plain(heading.group(2))))
        elif re.match(r"^[-*]\s+", stripped):
            flush_paragraph()
            blocks.append(_Block("bullet", _plain(re.sub(r"^[-*]\s+", "", stripped))))
        elif stripped.startswith(">"):
            flush_paragraph()
            blocks.append(_Block("quote", _plain(stripped.lstrip("> "))))
        elif re.match(r"^-{3,}$|^\*{3,}$", stripped):
            flush_paragraph()
            blocks.append(_Block("rule"))
        elif blocks and blocks[-1].kind == "bullet" and raw.startswith("  ") and not paragraph:
            blocks[-1].text += " " + _plain(stripped)
        else:
            paragraph.append(_plain(stripped))
    flush_paragraph()
    flush_table()
    return blocks


_STYLE: dict[str, tuple[float, str, float, float]] = {
    # kind: (font size pt, weight, space before pt, space after pt)
    "h1": (17.0, "bold", 6.0, 8.0),
    "h2": (13.0, "bold", 10.0, 5.0),
    "h3": (11.0, "bold", 7.0, 3.0),
    "p": (9.5, "normal", 0.0, 5.0),
    "bullet": (9.5, "normal", 0.0, 2.5),
    "quote": (9.0, "normal", 2.0, 5.0),
}
_CHAR_W = 0.52  # average glyph width in em for DejaVu Sans (wrapping estimate)


class _Writer:
    def __init__(self, pdf: Any, title: str) -> None:
        self.pdf = pdf
        self.title = title
        self.page = 0
        self.fig: Any = None
        self.width_pt = (PAGE_W_IN - 2 * MARGIN_IN) * PT_PER_IN
        self.top_pt = (PAGE_H_IN - MARGIN_IN) * PT_PER_IN
        self.bottom_pt = MARGIN_IN * PT_PER_IN + 14.0
        self.y = 0.0
        self.new_page()

    # coordinates: points from the bottom-left corner of the page
    def _fx(self, x_pt: float) -> float:
        return x_pt / (PAGE_W_IN * PT_PER_IN)

    def _fy(self, y_pt: float) -> float:
        return y_pt / (PAGE_H_IN * PT_PER_IN)

    def new_page(self) -> None:
        from matplotlib.figure import Figure

        self.close_page()
        self.page += 1
        self.fig = Figure(figsize=(PAGE_W_IN, PAGE_H_IN))
        self.y = self.top_pt
        footer = f"{self.title} — page {self.page}"
        self.fig.text(
            0.5,
            self._fy(MARGIN_IN * PT_PER_IN * 0.6),
            footer,
            ha="center",
            fontsize=7.5,
            color="#666666",
        )

    def close_page(self) -> None:
        if self.fig is not None:
            self.pdf.savefig(self.fig)
            self.fig = None

    def ensure(self, height_pt: float) -> None:
        if self.y - height_pt < self.bottom_pt:
            self.new_page()

    def text_lines(
        self,
        lines: list[str],
        size: float,
        weight: str = "normal",
        indent: float = 0.0,
        family: str = "DejaVu Sans",
        color: str = "black",
    ) -> None:
        leading = size * 1.32
        for line in lines:
            self.ensure(leading)
            self.y -= leading
            self.fig.text(
                self._fx(MARGIN_IN * PT_PER_IN + indent),
                self._fy(self.y),
                line,
                fontsize=size,
                fontweight=weight,
                family=family,
                color=color,
                va="baseline",
            )

    def wrap(
        self, text: str, size: float, indent: float = 0.0, weight: str = "normal"
    ) -> list[str]:
        em = _CHAR_W * (1.12 if weight == "bold" else 1.0)
        chars = max(20, int((self.width_pt - indent) / (size * em)))
        return textwrap.wrap(text, chars, break_long_words=True) or [""]

    def block(self, block: _Block, base: Path) -> None:
        if block.kind in _STYLE:
            size, weight, before, after = _STYLE[block.kind]
            if block.kind.startswith("h"):
                self.ensure(before + size * 1.32 * 3)  # keep a heading with its text
            self.y -= before
            if block.kind == "bullet":
                lines = self.wrap(block.text, size, indent=12.0)
                self.text_lines(["•"], size, indent=2.0)
                self.y += size * 1.32
                self.text_lines(lines, size, indent=12.0)
            elif block.kind == "quote":
                self.text_lines(
                    self.wrap(block.text, size, 10.0), size, indent=10.0, color="#333366"
                )
            else:
                self.text_lines(self.wrap(block.text, size, weight=weight), size, weight)
            self.y -= after
        elif block.kind == "table":
            self.table(block.rows)
        elif block.kind == "image":
            self.image(base / block.text, block.rows[0][0] if block.rows else "")
        elif block.kind == "rule":
            self.ensure(10.0)
            self.y -= 5.0
            self.fig.add_artist(
                _line(
                    self._fx(MARGIN_IN * 72),
                    self._fx(MARGIN_IN * 72 + self.width_pt),
                    self._fy(self.y),
                    "#999999",
                )
            )
            self.y -= 5.0

    def table(self, rows: list[list[str]], size: float = 7.5) -> None:
        if not rows:
            return
        n = max(len(r) for r in rows)
        rows = [r + [""] * (n - len(r)) for r in rows]
        lengths = [max(len(r[i]) for r in rows) for i in range(n)]
        weights = [min(max(x, 6), 45) for x in lengths]
        total = sum(weights)
        col_w = [self.width_pt * w / total for w in weights]
        for index, row in enumerate(rows):
            height = self._row_height(row, col_w, size)
            if self.y - height < self.bottom_pt:
                self.new_page()
                if index > 0:  # repeat the header row on the new page
                    self._row(rows[0], col_w, size, "bold")
            self._row(row, col_w, size, "bold" if index == 0 else "normal")
        self.y -= 6.0

    def _wrapped(self, row: list[str], col_w: list[float], size: float) -> list[list[str]]:
        return [
            textwrap.wrap(cell, max(3, int((w - 6) / (size * _CHAR_W)))) or [""]
            for cell, w in zip(row, col_w, strict=True)
        ]

    def _row_height(self, row: list[str], col_w: list[float], size: float) -> float:
        return max(len(c) for c in self._wrapped(row, col_w, size)) * size * 1.3 + 4.0

    def _row(self, row: list[str], col_w: list[float], size: float, weight: str) -> None:
        leading = size * 1.3
        top = self.y
        x = MARGIN_IN * PT_PER_IN
        for cell_lines, w in zip(self._wrapped(row, col_w, size), col_w, strict=True):
            y = top - 2.0
            for line in cell_lines:
                y -= leading
                self.fig.text(
                    self._fx(x + 3.0),
                    self._fy(y),
                    line,
                    fontsize=size,
                    fontweight=weight,
                    va="baseline",
                )
            x += w
        self.y = top - self._row_height(row, col_w, size)
        left = MARGIN_IN * PT_PER_IN
        self.fig.add_artist(
            _line(self._fx(left), self._fx(left + self.width_pt), self._fy(self.y), "#bbbbbb")
        )

    def image(self, path: Path, caption: str) -> None:
        import matplotlib.image as mpimg

        if not path.is_file():
            self.text_lines([f"[missing image: {path.name}]"], 9.0)
            return
        data = mpimg.imread(str(path))
        h_px, w_px = data.shape[0], data.shape[1]
        width = self.width_pt
        height = width * h_px / w_px
        max_h = self.top_pt - self.bottom_pt - 30.0
        if height > max_h:
            height, width = max_h, max_h * w_px / h_px
        self.ensure(height + 20.0)
        left = MARGIN_IN * PT_PER_IN + (self.width_pt - width) / 2
        self.y -= height
        ax = self.fig.add_axes(
            (self._fx(left), self._fy(self.y), self._fx(width), self._fy(height))
        )
        ax.imshow(data)
        ax.axis("off")
        if caption:
            self.text_lines(self.wrap(caption, 8.0), 8.0, color="#444444")
        self.y -= 6.0


def _line(x0: float, x1: float, y: float, color: str) -> Any:
    from matplotlib.lines import Line2D

    return Line2D([x0, x1], [y, y], linewidth=0.4, color=color)


def markdown_to_pdf(markdown: str, out: Path, title: str, base: Path | None = None) -> int:
    """Render ``markdown`` to ``out``; images are looked up relative to ``base``.
    Returns the number of pages."""
    from matplotlib.backends.backend_pdf import PdfPages

    out.parent.mkdir(parents=True, exist_ok=True)
    with PdfPages(str(out), metadata={"Title": title, "Creator": "ouie dpia"}) as pdf:
        writer = _Writer(pdf, title)
        for block in parse(markdown):
            writer.block(block, base or out.parent)
        writer.close_page()
        return writer.page
