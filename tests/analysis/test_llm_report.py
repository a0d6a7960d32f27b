"""The report's LLM section has content (issue 19, item 8): sample plans and messages, one
prompt/answer pair per population (cut and escaped), why calls failed with counts, and the LLM
agents' invalid actions with their reasons and counts."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from mesa_llm import Simulation
from mesa_llm.analysis import load_recording
from mesa_llm.analysis.llm_content import TEXT_LIMIT, excerpt, llm_content, shared_lines
from mesa_llm.analysis.report import render_html
from mesa_llm.llm.errors import LLMError
from mesa_llm.llm.testing import ScriptedChatModel, text_response, tool_calls_response
from mesa_llm.llm.types import ChatRequest, ChatResponse

LONG = "gibberish " * 400  # 4,000 characters


def _responder(request: ChatRequest) -> ChatResponse:
    aid = request.agent_id
    if aid == 1:
        raise LLMError("upstream model overloaded <b>try later</b>", model="scripted/test", kind="connection")
    if aid == 2:
        return text_response("I think the market is <script>x</script> fine " + LONG)
    if aid == 4:
        return tool_calls_response([("place_order", {"good": "widget", "side": "sell", "price": -5, "quantity": 1})])
    return tool_calls_response([("send_message", {"recipient_id": 1, "text": "hello <b>there</b>"}), ("wait", {})])


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("llm")
    chat = ScriptedChatModel(_responder)
    with Simulation.from_scenario("llm_double_auction", steps=3, out=out, chat_model=chat, model="scripted/test") as sim:
        sim.run()
        return Path(sim.recording_path)


def _events(path: Path, kind: str) -> list[dict[str, Any]]:
    return [e for e in map(json.loads, path.read_text().splitlines()) if e["event_type"] == kind]


def test_one_prompt_and_answer_per_population_cut_to_length(run: Path) -> None:
    content = llm_content(load_recording(run))
    exchanges = {x["population"]: x for x in content["exchanges"]}
    assert set(exchanges) == {"llm_buyers", "llm_sellers"}
    for x in exchanges.values():
        assert x["purpose"] == "act"
        # the act prompt opens with who the agent is and how to answer (tools.j2, one line each
        # in tool mode), then the agent's own observation, which the excerpt must still show
        assert x["prompt"].startswith("You are agent ") and x["agent"] in x["prompt"].splitlines()[0]
        assert "\nWhen you act, call the tools" in x["prompt"] and "Step " in x["prompt"]
        assert len(x["answer"]) <= TEXT_LIMIT + 40 and len(x["prompt"]) <= TEXT_LIMIT + 40
    answers = {x["answer"] for x in exchanges.values()}
    assert any(a.startswith("place_order(") or a.startswith("send_message(") for a in answers)
    long = [x for x in exchanges.values() if x["answer"].startswith("I think the market")]
    for x in long:
        assert x["answer"].endswith("more characters)")


def test_failure_reasons_are_counted(run: Path) -> None:
    calls = _events(run, "llm_call")
    failed = [c for c in calls if c["content"].get("error")]
    assert failed
    content = llm_content(load_recording(run))
    assert sum(f["calls"] for f in content["failures"]) == len(failed)
    [failure] = content["failures"]
    assert failure["kind"] == "connection" and "upstream model overloaded" in failure["reason"]


def test_invalid_actions_of_llm_agents_with_reasons_and_counts(run: Path) -> None:
    header = _events(run, "simulation_start")[0]["content"]
    llm_ids = {a["agent_id"] for a in header["agents"] if a["policy"] == "llm"}
    rejected = [e for e in _events(run, "action_rejected") if e["agent_id"] in llm_ids]
    expected = Counter((e["content"]["type"], e["content"]["reason"]) for e in rejected)
    content = llm_content(load_recording(run))
    got = {(r["action"], r["reason"]): r["count"] for r in content["invalid_actions"]}
    assert got == dict(expected)
    counts = [r["count"] for r in content["invalid_actions"]]
    assert counts == sorted(counts, reverse=True)
    assert ("place_order", "price: Input should be greater than 0") in got


def test_rule_based_agents_rejections_are_not_the_models(run: Path, tmp_path: Path) -> None:
    # a rule-based agent's rejection recorded in the same run must not appear among the LLM's
    lines = run.read_text().splitlines()
    extra = json.loads(next(line for line in lines if '"action_rejected"' in line))
    extra["agent_id"] = 7  # zi_buyers_0, a ZI-C trader
    extra["content"] = {"type": "place_order", "arguments": "{}", "reason": "a rule-based reason"}
    extra["event_id"] = extra["event_id"] + "x"
    at = next(i for i, line in enumerate(lines) if '"simulation_end"' in line)
    extra["step"] = json.loads(lines[at])["step"]
    copy = tmp_path / "copy.jsonl"
    copy.write_text("\n".join([*lines[:at], json.dumps(extra), *lines[at:]]) + "\n")
    content = llm_content(load_recording(copy))
    assert all(r["reason"] != "a rule-based reason" for r in content["invalid_actions"])


def test_plans_and_messages_are_sampled(run: Path) -> None:
    content = llm_content(load_recording(run))
    plans = _events(run, "plan")
    messages = _events(run, "message")
    assert len(content["plans"]) == min(5, len(plans)) and content["plans"]
    assert content["plans"][0]["text"].startswith("I think the market is <script>")
    assert len(content["messages"]) == min(5, len(messages)) and content["messages"]
    assert all(m["text"] == "hello <b>there</b>" and m["to"] == "llm_buyers_0" for m in content["messages"])


def test_the_report_shows_the_content_escaped(run: Path, tmp_path: Path) -> None:
    page = render_html(load_recording(run), tmp_path / "r.html").read_text()
    section = page[page.index("<h2>LLM calls</h2>"):]
    section = section[: section.index("<h2>", 10)]
    for heading in ("One prompt and answer per population", "Why calls failed", "Invalid actions of the LLM agents",
                    "Sample plans", "Sample messages"):  # fmt: skip
        assert f"<h3>{heading}</h3>" in section
    assert "<h4>llm_buyers: " in section and "<h4>llm_sellers: " in section  # one pair per population
    assert "<script>x" not in section and "&lt;script&gt;x&lt;/script&gt;" in section
    assert "hello &lt;b&gt;there&lt;/b&gt;" in section
    assert "upstream model overloaded &lt;b&gt;try later&lt;/b&gt;" in section
    assert "price: Input should be greater than 0" in section
    assert LONG not in page  # cut, not pasted whole


def test_long_prompt_excerpt_leaves_out_the_lines_its_population_shares(tmp_path: Path) -> None:
    # JSON tool mode writes the tool list into every act prompt: the excerpt must show who the agent
    # is and its own observation, not only the instructions and tools every agent got
    chat = ScriptedChatModel(lambda r: text_response('{"tool_calls": [{"name": "wait", "arguments": {}}]}'), tool_mode="json")
    with Simulation.from_scenario("llm_double_auction", steps=2, out=tmp_path, chat_model=chat, model="scripted/test") as sim:
        sim.run()
        path = Path(sim.recording_path)
    exchanges = {x["population"]: x for x in llm_content(load_recording(path))["exchanges"]}
    assert set(exchanges) == {"llm_buyers", "llm_sellers"}
    names = {a["agent_id"]: a for a in json.loads(path.read_text().splitlines()[0])["content"]["agents"]}
    for population, x in exchanges.items():
        prompts = [
            c["content"]["request"]["messages"][-1]["content"] for c in _events(path, "llm_call")
            if c["content"].get("purpose") == "act" and names[c["agent_id"]]["population"] == population
        ]  # fmt: skip
        full = next(p for p in prompts if f"({x['agent']})" in p)
        assert len(full) > TEXT_LIMIT and len(set(prompts)) > 1
        shown = x["prompt"].split("\n")
        marks = [i for i, line in enumerate(shown) if line.endswith("every such prompt has, left out]")]
        assert marks, x["prompt"]
        lines = full.split("\n")
        for i in marks:  # the lines left out follow the line shown before them, and every prompt has them
            n, size = (int(v.replace(",", "")) for v in re.findall(r"[\d,]+", shown[i])[:2])
            at = lines.index(shown[i - 1]) + 1
            assert sum(len(line) + 1 for line in lines[at : at + n]) == size
            assert all(line in p.split("\n") for line in lines[at : at + n] for p in prompts)
        assert "When you act" not in x["prompt"]  # the shared instructions are left out ...
        assert x["prompt"].startswith("You are agent ") and x["agent"] in shown[0]  # ... not who it is
        assert "Step 1 of 2" in x["prompt"] and "Your account:" in x["prompt"]  # and its observation shows


def test_excerpt_of_a_short_or_unshared_prompt_is_the_prompt() -> None:
    assert excerpt("short prompt\nYou are agent 3", frozenset({"short prompt"})) == "short prompt\nYou are agent 3"
    long = "\n".join(["x" * 100] * 7)  # 706 characters
    assert excerpt(long, frozenset()) == long[:TEXT_LIMIT] + " ... (106 more characters)"
    assert shared_lines([long, long]) == frozenset()  # one prompt: nothing to compare
    # a run shorter than a quarter of the limit stays; a longer one is counted and left out
    one = "a" * (TEXT_LIMIT // 4 - 2)
    assert excerpt(long + "\n" + one, frozenset({one})).endswith(" more characters)")
    two = "b" * (TEXT_LIMIT // 4 - 1)
    assert excerpt(two + "\n" + long, frozenset({two})).startswith(f"[1 line ({TEXT_LIMIT // 4:,} characters)")
    assert shared_lines(["a\nb\nc", "c\nb\nd", "b\nc"]) == frozenset({"b", "c"})
