"""Write the corpus of corrupt recordings in ``tests/hostile/recordings/`` (run from the repo root:
``python tests/hostile/make_recordings.py``).

Each file is a real small run (``llm_double_auction``, one step, one LLM buyer and one LLM seller
answered by an in-process model) with one thing broken, as a hostile or unlucky user would hand it
over; ``tests/recording/test_hostile_recordings.py`` says what each must be refused for. The lines are written
in the recorder's own format, so the fast loader sees them as it sees real runs. Observations and
LLM calls are left out of the files that are not about them, to keep the files small.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent / "recordings"

Event = dict[str, Any]


def base_events() -> list[Event]:
    """The events of a fresh one-step run."""
    sys.path.insert(0, str(ROOT))
    from mesa_llm.llm.testing import ScriptedChatModel
    from mesa_llm.model import MarketModel
    from mesa_llm.scenario import load_scenario
    from tests.support.chat_scripts import sensible

    spec = load_scenario(
        "llm_double_auction",
        overrides=["steps=1", "populations.0.count=1", "populations.1.count=1"],
    )
    with tempfile.TemporaryDirectory() as tmp:
        model = MarketModel(
            spec, output_dir=tmp, chat_model=ScriptedChatModel(sensible, name="scripted/sensible")
        )
        model.run()
        assert model.recording_path is not None
        return [json.loads(line) for line in model.recording_path.read_text().splitlines()]


def line(event: Any) -> str:
    """One line as the recorder writes it."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


def small(events: list[Event]) -> list[Event]:
    return [e for e in events if e["event_type"] not in ("observation", "llm_call")]


def first(events: list[Event], event_type: str) -> Event:
    return next(e for e in events if e["event_type"] == event_type)


def edited(
    events: list[Event], edit: Callable[[list[Event]], None], keep_large: bool = False
) -> str:
    copy = json.loads(json.dumps(events if keep_large else small(events)))
    edit(copy)
    return "".join(line(e) + "\n" for e in copy)


def replace_line(events: list[Event], event_type: str, text: str) -> str:
    """The small recording with the first event of a type replaced by raw text."""
    kept = small(events)
    target = first(kept, event_type)
    return "".join((text if e is target else line(e)) + "\n" for e in kept)


def main() -> None:
    events = base_events()
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.json*"):
        old.unlink()
    files: dict[str, str | bytes] = {}

    def setter(event_type: str, path: tuple[str, ...], value: Any) -> Callable[[list[Event]], None]:
        def edit(evs: list[Event]) -> None:
            target: Any = first(evs, event_type)
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value

        return edit

    files["trade_price_not_a_number.jsonl"] = edited(
        events, setter("trade", ("content", "price"), "abc")
    )
    files["header_agents_not_a_list.jsonl"] = edited(
        events, setter("simulation_start", ("content", "agents"), "nope")
    )
    files["trade_unknown_buyer.jsonl"] = edited(
        events, setter("trade", ("content", "buyer_id"), 999)
    )
    files["llm_call_content_is_a_list.jsonl"] = edited(
        events, setter("llm_call", ("content",), ["not", "an", "object"]), keep_large=True
    )
    files["order_content_not_an_object.jsonl"] = edited(
        events, setter("order", ("content",), "buy 1")
    )
    files["step_not_an_integer.jsonl"] = edited(events, setter("order", ("step",), "1"))
    files["agent_id_not_an_integer.jsonl"] = edited(events, setter("action", ("agent_id",), "x"))
    files["header_tick_size_zero.jsonl"] = edited(
        events, setter("simulation_start", ("content", "tick_size"), 0)
    )
    files["markup_in_a_value.jsonl"] = edited(
        events, setter("trade", ("content", "quantity"), "[/][bold red]1")
    )
    files["step_absurdly_large.jsonl"] = edited(events, setter("trade", ("step",), 10**30))

    def no_header(evs: list[Event]) -> None:
        del evs[0]

    files["missing_header.jsonl"] = edited(events, no_header)

    def two_headers(evs: list[Event]) -> None:
        evs.insert(3, json.loads(json.dumps(evs[0])) | {"step": 1})

    files["header_twice.jsonl"] = edited(events, two_headers)

    def out_of_order(evs: list[Event]) -> None:
        evs[2]["step"] = 5  # an event of step 5 before the rest of step 1

    files["steps_out_of_order.jsonl"] = edited(events, out_of_order)
    files["empty.jsonl"] = ""
    files["deep_nesting.jsonl"] = replace_line(
        events,
        "plan" if any(e["event_type"] == "plan" for e in small(events)) else "order",
        "[" * 100_000 + "]" * 100_000,
    )
    files["non_object_line.jsonl"] = replace_line(events, "order", "[1, 2, 3]")
    trade = first(events, "trade")
    files["nan_literal.jsonl"] = replace_line(
        events, "trade", line(trade).replace(f'"price":{trade["content"]["price"]}', '"price":NaN')
    )
    state = first(events, "agent_state")
    files["infinity_literal.jsonl"] = replace_line(
        events,
        "agent_state",
        line(state).replace(f'"cash":{state["content"]["cash"]}', '"cash":Infinity'),
    )
    order = first(events, "order")
    files["non_utf8_bytes.jsonl"] = (
        replace_line(events, "order", "\x00MARK\x00")
        .encode()
        .replace(b"\x00MARK\x00", line(order).encode().replace(b'"side":"', b'"side":"\xff\xfe'))
    )
    export = {"metadata": {"simulation_id": "x"}, "events": json.loads(json.dumps(small(events)))}
    first(export["events"], "trade")["content"]["seller_id"] = "seller"
    files["export_trade_seller_not_an_integer.json"] = json.dumps(export, indent=1)

    for name, text in files.items():
        data = text.encode() if isinstance(text, str) else text
        (OUT / name).write_bytes(data)
    loadable = OUT / "loadable"
    loadable.mkdir(exist_ok=True)
    whole = "".join(line(e) + "\n" for e in small(events))
    cut = whole[: whole.rstrip("\n").rfind("\n") + 1] + whole.rstrip("\n").rsplit("\n", 1)[1][:40]
    (loadable / "cut_last_line.jsonl").write_text(cut)
    (loadable / "intact.jsonl").write_text("".join(line(e) + "\n" for e in events))
    print(f"{len(files)} corrupt recordings and 2 loadable ones in {OUT}")


if __name__ == "__main__":
    main()
