"""Names from a recording (goods, agents, the scenario) and a sweep's levels reach matplotlib as
plain text: mathtext is never triggered (``$`` escaped, ``usetex`` off) and labels are cut to 40
characters, so a ``$\\bad{$`` name cannot break a report and a 50 KB name cannot stall one."""

from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib
import pytest
from matplotlib.text import Text

from mesa_llm.analysis import load_recording
from mesa_llm.analysis.plots import (
    plot_efficiency_over_time,
    plot_message_network,
    plot_price_path,
    plot_supply_demand,
    plot_surplus_by_agent,
    plot_volume,
)
from mesa_llm.analysis.report import render_html
from mesa_llm.experiments import run_sweep
from mesa_llm.experiments.report import render_sweep_report
from mesa_llm.model import MarketModel
from mesa_llm.scenario import load_scenario

MATH = "wid$\\undefinedcmd{$get"
LONG = "W" * 50_000
PLOTS = [plot_price_path, plot_volume, plot_efficiency_over_time, plot_supply_demand, plot_message_network,
         plot_surplus_by_agent]  # fmt: skip


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A real run whose good and agent names were rewritten: mathtext, and 50 KB of text."""
    folder = tmp_path_factory.mktemp("plots")
    model = MarketModel(load_scenario("double_auction", overrides=["steps=4"]), output_dir=folder)
    model.run()
    assert model.recording_path is not None
    text = model.recording_path.read_text(encoding="utf-8")
    out = {}
    for kind, name in (("math", MATH), ("long", LONG)):
        changed = text.replace('"widget"', json.dumps(name))
        changed = re.sub(r'"name":"(buyers|sellers)_(\d+)"', lambda m, name=name: f'"name":{json.dumps(name + m.group(2))}', changed)
        out[kind] = folder / f"{kind}.jsonl"
        out[kind].write_text(changed, encoding="utf-8")
    return out


def _texts(fig) -> list[str]:
    fig.canvas.draw()  # tick labels exist once drawn
    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


def _unescaped_dollars(text: str) -> int:
    return len(re.findall(r"(?<!\\)\$", text))


@pytest.mark.parametrize("plot", PLOTS, ids=lambda p: p.__name__)
def test_every_plot_draws_mathtext_names_as_text(recordings, plot):
    fig = plot(load_recording(recordings["math"]))
    texts = _texts(fig)  # drawing parses every label: an unescaped "$...$" here raised
    assert all(_unescaped_dollars(t) == 0 for t in texts), [t for t in texts if "$" in t]


@pytest.mark.parametrize("plot", PLOTS, ids=lambda p: p.__name__)
def test_every_plot_cuts_long_names(recordings, plot):
    fig = plot(load_recording(recordings["long"]))
    texts = _texts(fig)
    assert max(len(t) for t in texts) <= 120, max(texts, key=len)[:200]


def test_the_html_report_survives_mathtext_names_and_usetex(recordings, tmp_path):
    with matplotlib.rc_context({"text.usetex": True}):  # no LaTeX here: any TeX text would fail
        out = render_html(recordings["math"], tmp_path / "math.html")
    page = out.read_text(encoding="utf-8")
    assert "data:image/png;base64," in page and "wid$\\undefinedcmd{$get" in page  # the table shows it as written


def test_safe_label():
    from mesa_llm.analysis.plots import safe_label

    assert safe_label("a$b$c") == "a\\$b\\$c"
    assert safe_label("x" * 41) == "x" * 39 + "…" and len(safe_label("x" * 10_000)) == 40
    assert safe_label("x" * 40) == "x" * 40
    assert safe_label(12) == "12"


def test_the_sweep_report_survives_mathtext_and_long_levels(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text('name: s\nscenario: double_auction\nsteps: 1\n'
                    'factors:\n  description: ["$\\\\undefinedcmd{$", "' + "L" * 900 + '", "' + "L" * 899 + 'M"]\n',
                    encoding="utf-8")  # fmt: skip
    run_sweep(spec, tmp_path / "out", workers=1)
    page = render_sweep_report(tmp_path / "out", tmp_path / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") >= 2
