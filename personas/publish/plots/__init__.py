"""Figures of the persona report: each function takes plain data and returns a ``go.Figure``.

Modules: :mod:`.style` (colours, formats, layout), :mod:`.maps` (map, sizes, heatmap, radar),
:mod:`.value` (value and risk, NPS, mix), :mod:`.change` (migration, trend), :mod:`.model`
(model selection, rule fidelity), :mod:`.lifetime` (the CLV model's holdout check).

The figures are built here and serialised by :mod:`personas.publish.report`, which embeds
plotly.js once for the whole page. Three rules hold for every figure:

* **One colour per persona id**, everywhere and across runs (``P3`` is the same colour in the
  map, the bars, the Sankey and the trend), so a reader learns the colours once.
* **Names, never indices**: axes and legends show persona names; numbers use the feature
  catalogue's formats (``12%``, ``1,234``) so the report agrees with the cards.
* **Text from the data is escaped**: plotly.js renders a subset of HTML inside labels (``<a
  href>``, ``<b>``) and decodes entities, so category or persona names are passed through
  :func:`esc` (``<`` becomes ``&lt;``, which plotly shows as a literal ``<``). Data text is
  never put inside a ``hovertemplate`` (whose ``%{...}`` would be interpreted) but into
  ``customdata``/``text`` or trace names.

Only the customer map uses WebGL (``Scattergl``): browsers allow a page 8-16 WebGL contexts,
so every other trace is SVG. Figures carry an empty template: plotly's default template adds
~10 kB of JSON to every figure and its fonts and colours are not ours.
"""

from __future__ import annotations

from personas.publish.plots.change import migration_sankey, size_trend
from personas.publish.plots.kpis import kpi_runs, kpi_trend
from personas.publish.plots.lifetime import lifetime_fit
from personas.publish.plots.likely import likely_calibration
from personas.publish.plots.maps import (
    heatmap,
    heatmap_features,
    persona_map,
    radar,
    radar_features,
    sample_map,
    sizes,
)
from personas.publish.plots.model import model_selection, rule_fidelity
from personas.publish.plots.style import (
    GROUP_COLOURS,
    MAP_CAP,
    PALETTE,
    esc,
    fmt,
    metric_title,
    persona_colour,
)
from personas.publish.plots.value import mix, nps_mix, population_mix, value_metrics, value_risk

__all__ = [
    "GROUP_COLOURS",
    "MAP_CAP",
    "PALETTE",
    "esc",
    "fmt",
    "heatmap",
    "heatmap_features",
    "kpi_runs",
    "kpi_trend",
    "lifetime_fit",
    "likely_calibration",
    "metric_title",
    "migration_sankey",
    "mix",
    "model_selection",
    "nps_mix",
    "persona_colour",
    "persona_map",
    "population_mix",
    "radar",
    "radar_features",
    "rule_fidelity",
    "sample_map",
    "size_trend",
    "sizes",
    "value_metrics",
    "value_risk",
]
