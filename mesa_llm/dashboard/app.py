"""The dashboard's Solara pages: live controls or replay controls above the panels.

Every text that came from an agent or an LLM (messages, plans, actions, rejection reasons) is put
in the page as a text node (`solara.Text` / `TextTable`), never as HTML or markdown: messages are
hostile input. Figures are Plotly (`mesa_llm.dashboard.charts`), rebuilt only when the step
changes; what they show comes from `mesa_llm.dashboard.data`.
"""

from __future__ import annotations

import threading
from typing import Any

import pandas as pd
import solara
from solara.alias import rv

from mesa_llm.dashboard import charts
from mesa_llm.dashboard.data import RunData
from mesa_llm.dashboard.plotly_bundle import figure_widget_class
from mesa_llm.dashboard.server import DashboardConfig, current_config
from mesa_llm.dashboard.sessions import LiveSession, ReplaySession

TABLE_ROWS = 60
"""Rows a table shows (the newest or first ones)."""


@solara.component
def TextTable(frame: pd.DataFrame, max_rows: int = TABLE_ROWS, classes: list[str] | None = None) -> None:
    """A table as one Vuetify data table: its cells are text (Vue escapes them; no HTML, no
    markdown), and a step sends new items to one widget instead of rebuilding a widget per cell."""
    headers = [{"text": str(c), "value": str(c), "sortable": False} for c in frame.columns]
    items = [
        {str(c): "" if _missing(v) else str(v) for c, v in zip(frame.columns, row, strict=True)}
        for row in frame.head(max_rows).itertuples(index=False)
    ]
    rv.DataTable(
        headers=headers, items=items, dense=True, hide_default_footer=True, items_per_page=max_rows,
        disable_sort=True, class_=" ".join(classes or []),
    )  # fmt: skip
    if len(frame) > max_rows:
        solara.Text(f"... {len(frame) - max_rows} more rows")


@solara.component
def PlotlyChart(figure: dict[str, Any]) -> None:
    """A Plotly figure (a plain dict, see `charts`) that sends only what changed: when the traces
    are the same kinds as before, just the changed properties (the new points) go to the browser,
    batched into one update; otherwise the figure is replaced. The widget is created holding the
    first figure (drawn once, with no default template to validate first), and its JavaScript
    comes once per page from this server (`mesa_llm.dashboard.plotly_bundle`), not per chart."""
    first = solara.use_ref(figure).current  # the same object every render: never re-sent as a prop
    element = figure_widget_class().element(_first_figure=first, _validate=False)
    shown = solara.use_ref(first)

    def update() -> None:
        before = shown.current
        if figure is before:
            return  # the widget was created with it
        widget = solara.get_widget(element)
        shown.current = figure
        kinds = [(t["type"], t.get("name")) for t in figure["data"]]
        if kinds == [(t["type"], t.get("name")) for t in before["data"]]:
            with widget.batch_update():
                for trace, old, new in zip(widget.data, before["data"], figure["data"], strict=True):
                    changed = {k: v for k, v in new.items() if old.get(k) != v}
                    if changed:
                        trace.update(changed)
                layout = {k: v for k, v in figure["layout"].items() if before["layout"].get(k) != v}
                if layout:
                    widget.layout.update(layout)
            return
        widget.data = []
        widget.add_traces(figure["data"])
        widget.layout = figure["layout"]

    solara.use_effect(update, [figure])


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


@solara.component
def MarketPanel(data: RunData, version: int) -> None:
    """Price per good with the CE band, fundamental, volume bars and stress events; the last
    clearing's supply and demand."""
    goods = data.goods
    good, set_good = solara.use_state(goods[0] if goods else "")
    if goods and good not in goods:
        good = goods[0]
    with solara.Card("Market", classes=["panel-market"]):
        if len(goods) > 1:
            solara.ToggleButtonsSingle(value=good, values=goods, on_value=set_good)
        prices, stress = data.prices(), data.stress_events()
        with solara.Columns([3, 2]):
            with solara.Div(classes=["price-chart"]):
                PlotlyChart(charts.price_figure(prices, stress, good))
            # always a chart (empty before the first clearing): a new chart mid-run costs a widget
            PlotlyChart(charts.supply_demand_figure(data.supply_demand(good), good))
        if len(stress):
            with solara.Div(classes=["stress-events"]):
                solara.Text("stress events: ")
                TextTable(stress[["span", "type", "description", "pending"]])


@solara.component
def NegotiationPanel(data: RunData, version: int) -> None:
    """Sessions, one session's offers over rounds and its utility space."""
    table = data.session_table()
    ids = list(table["session_id"])
    chosen, set_chosen = solara.use_state(ids[0] if ids else "")
    if ids and chosen not in ids:
        chosen = ids[0]
    with solara.Card("Negotiations", classes=["panel-negotiation"]):
        TextTable(table)
        if ids:
            solara.Select("session", values=ids, value=chosen, on_value=set_chosen)
            with solara.Columns([1, 1]):
                offers = data.offers(chosen)
                PlotlyChart(charts.offers_figure(offers, chosen))
                space = data.utility_space(chosen)
                if space is not None:
                    PlotlyChart(charts.utility_space_figure(space, chosen))
                else:
                    solara.Text("utility space: the parties' utilities are not in the recording")


@solara.component
def SocialPanel(data: RunData, version: int) -> None:
    """Message feed (text as quoted data), alliances and reputation."""
    with solara.Card("Messages, alliances, reputation", classes=["panel-messages"]):
        feed = data.message_feed()
        solara.Text(f"{data.messages_total} messages (newest first)")
        with solara.Div(style={"max-height": "320px", "overflow-y": "auto"}):
            TextTable(feed.assign(text=["“" + t + "”" for t in feed["text"]]), classes=["message-feed"])
        for title, table in (("alliances", data.alliance_table()), ("reputation", data.reputation_table())):
            if len(table):
                solara.Text(title, style={"display": "block", "margin-top": "8px"})
                TextTable(table)


@solara.component
def AgentsPanel(data: RunData, version: int) -> None:
    """Agents by population: cash, holdings, surplus against their own values, P&L marked at a
    stated price; totals per side (buyers, sellers, others)."""
    frame = data.agents_table()
    with solara.Card("Agents", classes=["panel-agents"]):
        if (frame["source"] == "trades").any():
            solara.Text("from the endowment and trades (no agent state recorded yet: fees and contracts not included)", style={"display": "block"})
        solara.Text(
            "surplus: cash change plus the value to the agent of units bought minus units sold, against its own "
            "values (induced values/costs, reservation price, reserve); P&L marked: holdings at the stated price",
            style={"display": "block", "font-size": "12px"},
        )
        line = data.side_line()
        if line:
            solara.Text(line, style={"display": "block"})
        for population, rows in frame.groupby("population", sort=False):
            solara.Text(f"{population} ({len(rows)})", style={"font-weight": "bold", "display": "block"})
            TextTable(rows[["name", "side", "cash", "holdings", "surplus", "measured against", "P&L marked", "marked at"]])


@solara.component
def LLMPanel(data: RunData, version: int, in_flight: dict[str, Any] | None) -> None:
    """LLM calls, failures, tokens and cost so far; each LLM agent's last plan and actions;
    rejected actions with reasons; calls in flight during a live step."""
    t = data.llm_totals()
    with solara.Card("LLM", classes=["panel-llm"]):
        solara.Text(
            f"calls: {t['calls']} ({t['failed']} failed)   tokens: {t['prompt_tokens']:,} in / "
            f"{t['completion_tokens']:,} out   cost so far: ${t['cost_usd']:.4f}"
        )
        if in_flight is not None:
            solara.Text(
                f"   in flight: step {in_flight['step']} deciding for {in_flight['elapsed_s']:.1f} s, "
                f"{in_flight['calls_done']} calls answered so far ({in_flight['llm_agents']} LLM agents)",
                classes=["llm-in-flight"],
            )
        TextTable(data.llm_agents())
        rejections = data.rejection_table()
        if len(rejections):
            solara.Text("rejected actions (newest first)")
            TextTable(rejections)


@solara.component
def Panels(data: RunData, version: int, in_flight: dict[str, Any] | None = None) -> None:
    """Every panel the scenario has something for."""
    shown = data.panels()
    if shown["market"]:
        MarketPanel(data, version)
    if shown["negotiation"]:
        NegotiationPanel(data, version)
    if shown["llm"]:
        LLMPanel(data, version, in_flight)
    with solara.Columns([1, 1]):
        if shown["agents"]:
            AgentsPanel(data, version)
        if shown["messages"]:
            SocialPanel(data, version)


@solara.component
def LivePage(config: DashboardConfig) -> None:
    """Step, Run/Pause, Reset, speed, parameters, stress injection, panels."""
    session: LiveSession = solara.use_memo(
        lambda: LiveSession(config.spec, llm_model=config.llm_model, output_dir=config.out_dir, source=config.source),
        [],
    )
    # the session lives as long as the page: when the tab closes (or Solara gives up on a page
    # that went away, see `serve`'s idle timeout) the page unmounts and the session ends
    solara.use_effect(lambda: session.end, [])
    version, set_version = solara.use_state(0)
    running, set_running = solara.use_state(False)
    requested, set_requested = solara.use_state(0)  # Step clicks handled by the worker (LLM runs)
    delay, set_delay = solara.use_state(0.2)
    params, set_params = solara.use_state(session.params)
    presets = session.stress_presets()
    preset, set_preset = solara.use_state(next(iter(presets), ""))
    note, set_note = solara.use_state("")
    handled = solara.use_ref(0)

    def bump() -> None:
        set_version(lambda v: v + 1)

    def step_with_heartbeat() -> bool:
        # an LLM step takes seconds: re-render twice a second to show the calls in flight
        result: list[bool] = []
        worker = threading.Thread(target=lambda: result.append(session.step()), daemon=True)
        worker.start()
        while worker.is_alive():
            worker.join(0.5)
            bump()
        return bool(result and result[0])

    def worker(cancel: threading.Event) -> None:
        while requested > handled.current and not cancel.is_set() and not session.ended:
            handled.current += 1
            step_with_heartbeat()
            bump()
        while running and not cancel.is_set() and not session.ended:
            if not (step_with_heartbeat() if session.has_llm else session.step()):
                set_running(False)
                break
            bump()
            cancel.wait(delay)

    solara.use_thread(worker, dependencies=[running, delay, requested], intrusive_cancel=False)

    def on_step() -> None:
        if session.has_llm:
            set_requested(requested + 1)  # in the worker: the page stays responsive
        else:
            session.step()  # a rule-based step takes milliseconds: at once
            bump()

    def on_reset() -> None:
        set_running(False)
        session.reset(params)
        set_note(session.error or "reset")
        bump()

    def on_inject() -> None:
        try:
            set_note("scheduled " + session.inject(preset))
        except (KeyError, ValueError) as exc:
            set_note(f"cannot inject: {exc}")
        bump()

    data = session.data
    with solara.Column(style={"padding": "12px"}):
        with solara.Row(style={"align-items": "center", "flex-wrap": "wrap"}):
            solara.Text(f"{session.base.name} (live)", style={"font-size": "20px", "font-weight": "bold"})
            solara.Text(f"step {session.steps} / {session.max_steps}", classes=["step-counter"], style={"font-size": "18px"})
            solara.Button("Step", on_click=on_step, disabled=running or session.done, color="primary")
            solara.Button("Pause" if running else "Run", on_click=lambda: set_running(not running), disabled=session.done and not running)
            solara.Button("Reset", on_click=on_reset)
            solara.SliderFloat("seconds between steps", value=delay, on_value=set_delay, min=0.0, max=2.0, step=0.05)
        with solara.Row(style={"align-items": "center", "flex-wrap": "wrap"}):
            if presets:
                solara.Select("stress event", values=list(presets), value=preset, on_value=set_preset)
                solara.Button("Inject stress event", on_click=on_inject, disabled=session.done, color="error", outlined=True)
            if note or session.error:
                solara.Text(session.error or note, classes=["dashboard-note"])
        with solara.Details("parameters (applied at Reset)"):
            ParamsEditor(params, set_params)
        if session.model is not None and session.model.recording_path:
            kept = "" if not session.owns_output_dir else " (a temporary folder: deleted when this tab closes; start with --out to keep it)"
            solara.Text(f"recording: {session.model.recording_path}{kept}", classes=["recording-path"], style={"color": "#57606a", "font-size": "12px"})
        Panels(data, version, session.in_flight())


@solara.component
def ParamsEditor(params: dict[str, Any], set_params: Any) -> None:
    """Population counts, k and fee per unit."""
    with solara.Row(style={"flex-wrap": "wrap"}):
        for label, count in params["counts"].items():

            def set_count(value: int | None, label: str = label) -> None:
                set_params({**params, "counts": {**params["counts"], label: int(value or 0)}})

            solara.InputInt(f"{label} count", value=count, on_value=set_count)
        solara.InputFloat("k (clearing price rule)", value=params["k"], on_value=lambda v: set_params({**params, "k": v}))
        solara.InputFloat("fee per unit", value=params["fee_per_unit"], on_value=lambda v: set_params({**params, "fee_per_unit": v}))


@solara.component
def ReplayPage(config: DashboardConfig) -> None:
    """A step slider and Play over a recording, with the panels at that step."""
    path = config.recording
    assert path is not None
    session: ReplaySession = solara.use_memo(lambda: ReplaySession(path), [])
    # one reactive value shared by the slider and the player: a value passed down as a plain prop
    # could be echoed back stale while arrow keys are still arriving, and the slider and the page
    # would disagree
    step = solara.use_reactive(min(1, session.final_step))
    playing, set_playing = solara.use_state(False)
    delay, set_delay = solara.use_state(0.2)

    def player(cancel: threading.Event) -> None:
        while playing and not cancel.is_set() and step.value < session.final_step:
            cancel.wait(delay)
            step.set(step.value + 1)
        if playing and step.value >= session.final_step:
            set_playing(False)

    solara.use_thread(player, dependencies=[playing, delay], intrusive_cancel=False)
    data = session.at(step.value)
    with solara.Column(style={"padding": "12px"}):
        with solara.Row(style={"align-items": "center", "flex-wrap": "wrap"}):
            name = (data.header.get("scenario") or {}).get("name", "") if isinstance(data.header.get("scenario"), dict) else ""
            solara.Text(f"{name} (replay of {session.path.name})", style={"font-size": "20px", "font-weight": "bold"})
            solara.Text(f"step {step.value} / {session.final_step}", classes=["step-counter"], style={"font-size": "18px"})
            solara.Button("Pause" if playing else "Play", on_click=lambda: set_playing(not playing), color="primary")
            solara.SliderFloat("seconds per step", value=delay, on_value=set_delay, min=0.0, max=2.0, step=0.05)
        with solara.Div(classes=["replay-slider"], style={"margin-top": "28px"}):
            solara.SliderInt("step", value=step, min=0, max=session.final_step, thumb_label="always")
        if session.warning:
            solara.Text(f"note: {session.warning}", classes=["dashboard-note"])
        Panels(data, step.value)


@solara.component
def Page() -> None:
    """The page: live or replay, as `mesa-llm dashboard` was started."""
    config = current_config()
    solara.Title("mesa_llm dashboard")
    if config.mode == "replay":
        ReplayPage(config)
    else:
        LivePage(config)
