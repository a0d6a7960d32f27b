"""Prompt templates have a budget: a hostile template override ends in one line naming the
template and the limit, fast, wherever it renders (``validate``, ``run``, during a run).

The corpus below is rendered in a forked child with a memory limit and a timeout, so a template
that would allocate gigabytes or loop for hours fails its own case instead of the test run.
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from mesa_llm.agents.prompts import PromptError, PromptLibrary, resolve_overrides
from mesa_llm.llm.testing import ScriptedChatModel, tool_call_response

CORPUS = Path(__file__).parent / "scenarios"

TOO_LONG = r"built too long a value"
OUTPUT = r"rendered more than 200,000 characters"
BUILT = r"built more than 10,000,000 characters in all"
DEPTH = r"nested macros, calls or includes deeper than 50"
# a loop bomb ends at the operation budget, or at the time budget on a slow (loaded) machine
LOOPS = r"ran more than 1,000,000 operations|took longer than 1 s"
SLOW = r"took longer than 1 s"
BIG_NUMBER = r"built too large a number \(more than 4096 bits\)"
UNSEEDED = r"is not available in prompt templates \(a prompt must not depend on unseeded random numbers\)"

BIG = "{% set s = 'x' * 1000000 %}"  # the longest string one operation may build

#: id -> (template, reason); every one rendered fine, hung or ran out of memory before
HOSTILE: dict[str, tuple[str, str]] = {
    # str.format and % widths, precisions and repeated fields
    "format_width": ("{{ '{:>999999999}'.format(1) }}", TOO_LONG),
    "format_nested_width": ("{{ '{:{w}}'.format(1, w=999999999) }}", TOO_LONG),
    "format_zero_pad": ("{{ '{:0999999999}'.format(1) }}", TOO_LONG),
    "format_repeated_field": ("{% set s = 'x' * 900000 %}{{ ('{0}' * 1000).format(s) }}", TOO_LONG),
    "format_map_width": ("{{ '{a:>999999999}'.format_map({'a': 1}) }}", TOO_LONG),
    "format_via_attr": ("{{ ('{:>999999999}'|attr('format'))(1) }}", TOO_LONG),
    "format_via_map_attribute": ("{{ (['{:>999999999}']|map(attribute='format')|first)(1) }}", TOO_LONG),
    "markup_format_width": ("{{ ('{:>999999999}'|safe).format(1) }}", TOO_LONG),
    "format_repr_conversion": ("{% set s = '\\x00' * 1000000 %}{{ '{!r}'.format(s) }}", TOO_LONG),
    "percent_width": ("{{ '%999999999d' % 1 }}", TOO_LONG),
    "percent_star_width": ("{{ '%*d' % (999999999, 1) }}", TOO_LONG),
    "percent_precision": ("{{ '%.999999999f' % 1.5 }}", TOO_LONG),
    "percent_star_precision": ("{{ '%*.*f' % (5, 999999999, 1.5) }}", TOO_LONG),
    "percent_key_repeated": ("{% set s = 'x' * 900000 %}{{ ('%(a)s' * 1000) % {'a': s} }}", TOO_LONG),
    "percent_repr": ("{% set s = '\\x00' * 500000 %}{{ '%r' % s }}", TOO_LONG),
    "percent_bytes": ("{{ '%999999999d'.encode() % 1 }}", TOO_LONG),
    "format_filter": ("{{ '%999999999s'|format('x') }}", TOO_LONG),
    # widths and counts of str methods and filters
    "center_filter": ("{{ 'x'|center(1000000000) }}", TOO_LONG),
    "center_filter_keyword": ("{{ 'x'|center(width=10**9) }}", TOO_LONG),
    "center_method": ("{{ 'x'.center(10**9) }}", TOO_LONG),
    "ljust": ("{{ 'x'.ljust(999999999) }}", TOO_LONG),
    "rjust": ("{{ 'x'.rjust(999999999) }}", TOO_LONG),
    "zfill": ("{{ 'x'.zfill(999999999) }}", TOO_LONG),
    "bytes_center": ("{{ 'x'.encode().center(999999999) }}", TOO_LONG),
    "expandtabs": ("{% set t = '\t' * 100000 %}{{ t.expandtabs(100000) }}", TOO_LONG),
    "to_bytes": ("{{ (1).to_bytes(1000000000, 'big') }}", TOO_LONG),
    "indent_width": ("{{ 'x'|indent(1000000000) }}", TOO_LONG),
    "indent_many_lines": ("{% set s = 'a\n' * 500000 %}{{ s|indent(100) }}", TOO_LONG),
    "indent_string": (BIG + "{{ ('a\n' * 1000)|indent(s) }}", TOO_LONG),
    "filter_block_indent": ("{% filter indent(10**9) %}x{% endfilter %}", TOO_LONG),
    "wordwrap": ("{% set s = 'a ' * 500000 %}{{ s|wordwrap(1) }}", TOO_LONG),
    "wordwrap_wrapstring": ("{% set s = 'a ' * 1000 %}{{ s|wordwrap(1, wrapstring='x' * 100000) }}", TOO_LONG),
    "tojson_indent": ("{{ [[1, 2], [3]]|tojson(indent=1000000000) }}", r"tojson indent 1,000,000,000 \(at most 16\)"),
    "tojson_big": (BIG + "{{ [s, s]|tojson }}", TOO_LONG),
    "batch": ("{{ [1]|batch(1000000000, 0)|list }}", TOO_LONG),
    "slice_filter": ("{{ [1]|slice(1000000000)|list }}", TOO_LONG),
    "urlize_target": ("{{ ('a.com ' * 150000)|urlize(target='x' * 10000) }}", TOO_LONG),
    # quadratic work before the size cap is reached: on a loaded machine the time budget may end it first
    "sum_of_lists_quadratic": ("{{ ([[1]] * 100000)|sum(start=[])|length }}", rf"{TOO_LONG}|took longer than 1 s"),
    "include_of_many_names": ("{% include ['n.j2'] * 50000 ignore missing %}", r"include of more than 50 template names"),
    "striptags_quadratic": ("{{ ('<>' * 500000)|striptags }}", r"striptags on 1,000,000 characters"),
    # replace, ~, +, namespaces and list building that double a value
    "replace_empty": ("{% set s = 'x' * 100000 %}{{ s.replace('', s) }}", TOO_LONG),
    "replace_filter_empty": ("{% set s = 'x' * 100000 %}{{ s|replace('', s) }}", TOO_LONG),
    "replace_doubling": (
        "{% set ns = namespace(s='ab') %}{% for i in range(64) %}"
        "{% set ns.s = ns.s.replace('a', 'aa').replace('b', 'bb') %}{% endfor %}{{ ns.s|length }}",
        TOO_LONG,
    ),
    "translate": (BIG + "{{ s.translate({120: s}) }}", TOO_LONG),
    "translate_list_table": ("{% set t = '\\x00' * 1000000 %}{{ t.translate(['y' * 100000]) }}", TOO_LONG),
    # refused before building (not "the result of center"): Markup's methods are Python wrappers
    "markup_center": ("{{ ('x'|safe).center(10**9) }}", TOO_LONG + r" \(center: 1,000,000,000 characters"),
    "markup_zfill": ("{{ ('x'|safe).zfill(10**8) }}", TOO_LONG + r" \(zfill: 100,000,000 characters"),
    "tilde_doubling": ("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", TOO_LONG),
    "tilde_twice": (BIG + "{% set s = s ~ s %}{% set s = s ~ s %}{{ s|length }}", TOO_LONG),
    "plus_doubling": ("{% set ns = namespace(s='x') %}{% for i in range(100) %}{% set ns.s = ns.s + ns.s %}{% endfor %}", TOO_LONG),
    "list_of_refs": (BIG + "{% set l = [s] * 1000000 %}{{ l|length }}", TOO_LONG),
    "list_literal_of_refs": (BIG + "{% set l = [s, s, s] %}{{ l|length }}", TOO_LONG),
    "dict_of_refs": (BIG + "{{ {}.fromkeys(range(100000), s)|length }}", TOO_LONG),
    "printed_list": ("{% set s = 'x' * 100000 %}{{ [s, s, s, s, s, s, s, s, s, s, s, s] }}", TOO_LONG),
    "join_filter": (BIG + "{{ ([s] * 1000)|join }}", TOO_LONG),
    "join_method": (BIG + "{{ ''.join([s] * 1000) }}", TOO_LONG),
    "percent_tuple": ("{{ ('%s' * 100000) % (('x' * 100000,) * 100000) }}", TOO_LONG),
    "encode_utf32": ("{% set s = 'x' * 1000000 %}{{ s.encode('utf-32')|length }}", TOO_LONG),
    "namespace_accumulator": (
        "{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = ns.l + ['x' * 1000] %}{% endfor %}",
        BUILT,
    ),
    "namespace_fresh_values": (
        "{% set ns = namespace() %}{% for i in range(1000) %}{% set ns.a = 'x' * 999990 ~ i %}{% endfor %}",
        BUILT,
    ),
    "filter_block_loop": ("{% filter upper %}{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}{% endfilter %}", BUILT),
    "set_block_literal_loop": (
        "{% set x %}{% for i in range(100000) %}{% for j in range(100) %}" + "x" * 200 + "{% endfor %}{% endfor %}{% endset %}",
        BUILT,
    ),
    "slice_copies": (BIG + "{% for i in range(100000) %}{% set t = s[1:] %}{% endfor %}", BUILT),
    # numbers
    "power_chain": ("{{ ((10 ** 64) ** 64) ** 64 }}", BIG_NUMBER),
    "squaring": ("{% set ns = namespace(x=10**60) %}{% for i in range(40) %}{% set ns.x = ns.x * ns.x %}{% endfor %}", BIG_NUMBER),
    "range_huge": ("{{ range(10**18)|length }}", r"range of about 10\*\*18 items \(at most 100,000\)"),
    "range_overflow": ("{% for i in range(0, 10**30) %}{% endfor %}", r"range of about 10\*\*30 items"),
    # loops
    "nested_ranges": ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", LOOPS),
    "nested_ranges_with_set": ("{% for i in range(100000) %}{% for j in range(100000) %}{% set x = 1 %}{% endfor %}{% endfor %}", LOOPS),
    "loop_filter_never_true": ("{% for i in range(100000) %}{% for j in range(100000) if false %}{% endfor %}{% endfor %}", LOOPS),
    "three_nested_loops_output": (
        "{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(1000) %}{{ k }}{% endfor %}{% endfor %}{% endfor %}",
        OUTPUT + "|" + SLOW,
    ),
    "literal_text_in_a_loop": ("{% for i in range(100000) %}" + "x" * 100 + "{% endfor %}", OUTPUT),
    "cycler": ("{% set c = cycler(*range(100000)) %}{% for i in range(100000) %}{% for j in range(100) %}{{ c.next() }}{% endfor %}{% endfor %}", OUTPUT + "|" + SLOW),
    "joiner": ("{% set j = joiner('x' * 1000000) %}{% for i in range(100000) %}{{ j() }}{% endfor %}", OUTPUT),
    "macro_fan_out": ("{% macro m(n) %}{% if n %}{{ m(n - 1) }}{{ m(n - 1) }}{% endif %}{% endmacro %}{{ m(40) }}", LOOPS),
    # recursion and includes
    "macro_recursion": ("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", DEPTH),
    "macro_recursion_deep": ("{% macro m(n) %}{% if n %}{{ m(n - 1) }}{% endif %}{% endmacro %}{{ m(100000) }}", DEPTH),
    "call_block_recursion": ("{% macro m() %}{% call m() %}{% endcall %}{{ caller() }}{% endmacro %}{{ m() }}", DEPTH),
    "recursive_loop": ("{% for x in [1] recursive %}{{ loop([1]) }}{% endfor %}", DEPTH),
    "recursive_loop_fan_out": ("{% for x in range(100) recursive %}{{ loop(range(100)) }}{% endfor %}", DEPTH),
    "self_include": ("{% include 'act.j2' %}", DEPTH),
    "self_extends": ("{% extends 'act.j2' %}", DEPTH),
    "self_import": ("{% import 'act.j2' as m %}", DEPTH),
    "self_from_import": ("{% from 'act.j2' import x %}", DEPTH),
    "self_import_with_context": ("{% import 'act.j2' as m with context %}", DEPTH),
    # unseeded randomness
    "lipsum": ("{{ lipsum(1000000) }}", "lipsum " + UNSEEDED),
    "random_filter": ("{{ [1, 2, 3]|random }}", "the random filter " + UNSEEDED),
    # Python's own limits: one line, not a traceback
    "deep_parentheses": ("{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}", r"nested too deeply"),
    "nested_for_blocks": ("{% for i in range(2) %}" * 25 + "x" + "{% endfor %}" * 25, r"nested too deeply to compile"),
}


def _render_in_child(folder: Path, source: str, timeout: float = 30.0) -> tuple[str, str, float]:
    """Render ``source`` (the ``act`` override) in a forked child with at most 2 GiB more memory
    than this process: ("PromptError", message, seconds), ("RENDERED", length, ...), ("OTHER",
    exception, ...) or ("HANG", ...) when it did not end within ``timeout`` seconds."""
    (folder / "hostile.j2").write_text(source)
    vm = int(next(line.split()[1] for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmSize:")))
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read)
            limit = vm * 1024 + (2 << 30)
            resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
            started = time.monotonic()
            try:
                library = PromptLibrary(resolve_overrides({"act": "hostile.j2"}, folder))
                result = ["RENDERED", str(len(library.render("act.j2", items=[1, 2])))]
            except PromptError as exc:
                result = ["PromptError", str(exc)]
            except BaseException as exc:  # noqa: BLE001 - reported to the parent
                result = ["OTHER", f"{type(exc).__name__}: {str(exc)[:300]}"]
            os.write(write, json.dumps([*result, time.monotonic() - started]).encode())
        finally:
            os._exit(0)
    os.close(write)
    deadline = time.monotonic() + timeout
    while os.waitpid(pid, os.WNOHANG) == (0, 0):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(read)
            return ("HANG", f"no end within {timeout} s", timeout)
        time.sleep(0.01)
    with os.fdopen(read, "rb") as pipe:
        data = pipe.read()
    if not data:
        return ("CRASH", "the child died", 0.0)
    kind, message, seconds = json.loads(data)
    return kind, message, seconds


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_template_ends_in_one_line_naming_template_and_reason(case, tmp_path):
    source, reason = HOSTILE[case]
    kind, message, seconds = _render_in_child(tmp_path, source)
    assert kind == "PromptError", (kind, message)
    assert len(message.splitlines()) == 1 and len(message) <= 400, message
    assert message.startswith("prompt template act.j2 (hostile.j2") or message.startswith("prompt template hostile.j2:"), message
    assert re.search(reason, message), message
    assert seconds < 10, f"{seconds:.1f} s: {message}"


# ---------------------------------------------------------------------------- the budgets, one by one


def _library(folder: Path, source: str, **files: str) -> PromptLibrary:
    (folder / "t.j2").write_text(source)
    for name, text in files.items():
        (folder / name).write_text(text)
    overrides = {"act": "t.j2", **{name.removesuffix(".j2"): name for name in files}}
    return PromptLibrary(resolve_overrides(overrides, folder))


def _render(folder: Path, source: str, **context: Any) -> str:
    return _library(folder, source).render("act.j2", **context)


@pytest.fixture
def budgets() -> Any:
    """The module holding the budgets (imported here: a test that needs it fails on its own
    without it)."""
    from mesa_llm.agents import template_sandbox

    return template_sandbox


def test_loop_iterations_count_against_the_operation_budget(tmp_path, monkeypatch, budgets):
    monkeypatch.setattr(budgets, "MAX_TEMPLATE_OPS", 2000)
    assert _render(tmp_path, "{% for i in range(30) %}{% for j in range(30) %}{% endfor %}{% endfor %}ok") == "ok"
    with pytest.raises(PromptError, match="ran more than 2,000 operations"):
        _render(tmp_path, "{% for i in range(50) %}{% for j in range(50) %}{% endfor %}{% endfor %}")
    # items a loop's filter looks at count too, even when the body never runs
    with pytest.raises(PromptError, match="ran more than 2,000 operations"):
        _render(tmp_path, "{% for i in range(3000) if false %}{% endfor %}")


def test_attribute_look_ups_inside_a_filter_count_as_operations(tmp_path, monkeypatch, budgets):
    # sort/groupby/unique(attribute=...) look up an attribute of every item in one filter call,
    # through the sandbox (a few microseconds each): over 100,000 items that took seconds unchecked
    monkeypatch.setattr(budgets, "MAX_TEMPLATE_OPS", 5000)
    assert _render(tmp_path, "{{ (range(1000)|list)|sort(attribute='real')|length }}") == "1000"
    for source in (
        "{{ (range(10000)|list)|sort(attribute='real')|length }}",
        "{{ (range(10000)|list)|groupby('real')|length }}",
        "{{ (range(10000)|list)|unique(attribute='imag')|list|length }}",
    ):
        with pytest.raises(PromptError, match="ran more than 5,000 operations"):
            _render(tmp_path, source)


def test_a_slow_render_stops_at_its_time_budget(tmp_path, monkeypatch, budgets):
    monkeypatch.setattr(budgets, "MAX_RENDER_SECONDS", 0.2)
    started = time.monotonic()
    with pytest.raises(PromptError, match=r"act\.j2 \(t\.j2, line 1\): took longer than 0\.2 s"):
        # few operations (50,000 searches of a 100,000-character text), each slow
        _render(tmp_path, "{% set s = 'ab' * 50000 %}{% for i in range(50000) %}{% set n = s.count('ba b') %}{% endfor %}")
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("depth, fails", [(48, False), (49, True)])
def test_macro_recursion_stops_at_the_nesting_limit(tmp_path, depth, fails):
    # the template's root is one level, each call of m another: m(48) nests 50 deep
    source = "{% macro m(n) %}{% if n %}{{ m(n - 1) }}{% endif %}x{% endmacro %}{{ m(" + str(depth) + ") }}"
    if fails:
        with pytest.raises(PromptError, match="deeper than 50"):
            _render(tmp_path, source)
    else:
        assert _render(tmp_path, source) == "x" * (depth + 1)


def test_templates_including_each_other_stop_at_the_nesting_limit(tmp_path):
    library = _library(tmp_path, "{% include 'plan.j2' %}", **{"plan.j2": "{% include 'act.j2' %}"})
    with pytest.raises(PromptError, match=r"prompt template act\.j2 \(\w+\.j2, line 1\): nested macros, calls or includes deeper than 50"):
        library.render("act.j2")
    library = _library(tmp_path, "{% extends 'plan.j2' %}", **{"plan.j2": "{% import 'act.j2' as a %}"})
    with pytest.raises(PromptError, match="deeper than 50"):
        library.render("act.j2")


@pytest.mark.parametrize("length, fails", [(200_000, False), (200_001, True)])
def test_the_rendered_prompt_is_capped(tmp_path, length, fails):
    source = "{% for i in range(" + str(length // 1000) + ") %}" + "x" * 1000 + "{% endfor %}" + "y" * (length % 1000)
    if fails:
        with pytest.raises(PromptError, match=r"act\.j2 \(t\.j2\): rendered more than 200,000 characters"):
            _render(tmp_path, source)
    else:
        assert len(_render(tmp_path, source)) == length


@pytest.mark.parametrize("width, fails", [(1_000_000, False), (1_000_001, True)])
def test_widths_are_checked_before_anything_is_built(tmp_path, width, fails):
    for source in ("{{ ('x'|center(W))|length }}", "{{ ('{:>W}'.format(1))|length }}", "{{ ('%Wd' % 1)|length }}"):
        source = source.replace("W", str(width))
        if fails:
            with pytest.raises(PromptError, match=rf"built too long a value \(\S.* {width:,}"):
                _render(tmp_path, source)
        else:
            assert _render(tmp_path, source) == str(width)


def test_everything_a_render_builds_adds_up_to_a_budget(tmp_path):
    accumulate = "{% set ns = namespace() %}{% for i in range(N) %}{% set ns.x = 'y' * 900000 ~ i %}{% endfor %}done"
    assert _render(tmp_path, accumulate.replace("N", "4")) == "done"
    with pytest.raises(PromptError, match="built more than 10,000,000 characters in all"):
        _render(tmp_path, accumulate.replace("N", "20"))


@pytest.mark.parametrize("source", ["{{ [1, 2, 3]|random }}", "{{ lipsum(2) }}"])
def test_unseeded_randomness_is_refused(tmp_path, source):
    with pytest.raises(PromptError, match="must not depend on unseeded random numbers"):
        _render(tmp_path, source)


def test_errors_quoting_a_templates_values_stay_one_short_line(tmp_path):
    for key in ("a\nb", "a\u2028b", "a\x85b", "x" * 10_000):
        with pytest.raises(PromptError) as caught:
            _render(tmp_path, "{{ {}[k] }}", k=key)
        message = str(caught.value)
        assert len(message.splitlines()) == 1 and len(message) <= 400, message
        assert "has no attribute" in message


def test_templates_too_deep_for_python_fail_in_one_line(tmp_path):
    with pytest.raises(PromptError, match="nested too deeply"):
        _render(tmp_path, "{{ " + "[" * 3000 + "]" * 3000 + " }}")
    library = _library(tmp_path, "{% for i in x %}" * 25 + "{% endfor %}" * 25)
    with pytest.raises(PromptError, match=r"t\.j2: nested too deeply to compile \(too many statically nested blocks\)"):
        library.preload("buyer")


def test_ordinary_templates_still_render(tmp_path):
    (tmp_path / "part.j2").write_text("[{{ i }}]")
    source = (
        "{% macro row(x) %}<{{ x }}>{% endmacro %}"
        "{% set ns = namespace(total=0) %}"
        "{% for i in items %}{% set ns.total = ns.total + i %}{{ row(i) }}{{ loop.cycle('a', 'b') }}"
        "{% include 'part.j2' %}{% endfor %} "
        "{{ ns.total }} {{ '%.2f' % 1.5 }} {{ '{:>5}|{:<3}|'.format('ab', 1) }} {{ 'x'|center(5) }}| "
        "{{ {'b': [1, {'c': 2}]}|tojson(indent=2)|length }} {{ 'a-b'|replace('-', '+') }} "
        "{{ items|map('string')|join(',') }} {{ ('x' ~ 1 ~ none) }} {{ (items * 2)|sum }} "
        "{{ 'ab' * 3 }} {{ 2 ** 10 }} {{ 'one two three'|wordwrap(7) }} {{ 'x\ny'|indent(2) }} "
        "{% for x in [[1, [2]]] recursive %}{% if x is iterable %}{{ loop(x) }}{% else %}{{ x }}{% endif %}{% endfor %} "
        "{{ range(3)|list }} {{ 'abc'[::-1] }} {{ 'a b c'.split()|length }} {{ '%(k)s' % {'k': 'v'} }} "
        "{{ '{0}{0}'.format('z') }} {{ [3, 1, 2]|sort|first }} {{ 'x'.zfill(3) }}"
    )
    (tmp_path / "t.j2").write_text(source)
    library = PromptLibrary(resolve_overrides({"act": "t.j2", "part": "part.j2"}, tmp_path))
    # what Jinja's sandbox rendered before the budget
    assert library.render("act.j2", items=[1, 2]) == (
        "<1>a[1]<2>b[2] 3 1.50    ab|1  |   x  | 48 a+b 1,2 x1None 6 ababab 1024 one two\nthree x\n"
        "  y 12 [0, 1, 2] cba 3 v zz 1 00x"
    )


# ---------------------------------------------------------------------------- validate, run, and during a run


def _scenario(folder: Path, templates: dict[str, str], steps: int = 3, populations: int = 1) -> Path:
    raw = yaml.safe_load((CORPUS / "template_repeat.yaml").read_text())
    raw["steps"] = steps
    raw["llm"] = {"templates": {}}
    llm = raw["populations"][0]
    llm["templates"] = {}
    raw["populations"] = [{**llm, "name": f"llm_buyers_{i}"} for i in range(populations)] + raw["populations"][1:]
    for key, source in templates.items():
        (folder / f"{key}.j2").write_text(source)
        raw["llm"]["templates"][key] = f"{key}.j2"
    path = folder / "hostile.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, resource.getrlimit(resource.RLIMIT_AS)[1]))


CLI_CASES = {
    "format_width": ("{{ '{:>999999999}'.format(1) }}", TOO_LONG),
    "nested_loops": ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", LOOPS),
    "macro_recursion": ("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", DEPTH),
}


# run checks through the same code path as validate: both commands for one case, one for the others
@pytest.mark.parametrize(
    "command, case",
    [("validate", "format_width"), ("run", "format_width"), ("validate", "nested_loops"), ("run", "macro_recursion")],
)
def test_validate_and_run_refuse_a_hostile_template_in_one_line(tmp_path, command, case):
    template, reason = CLI_CASES[case]
    path = _scenario(tmp_path, {"act": template})
    out = tmp_path / "out"
    args = [command, str(path)] + (["--out", str(out), "--steps", "2"] if command == "run" else [])
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "mesa_llm", *args],
        capture_output=True, text=True, timeout=120, preexec_fn=_limit_memory,
        env={**os.environ, "COLUMNS": "1000"},
    )
    output = (proc.stdout + proc.stderr).strip()
    assert proc.returncode == 2, output[-2000:]
    assert "Traceback" not in output and len(output.splitlines()) == 1, output[-2000:]
    assert output.startswith(f"error: {path}: population 'llm_buyers_0': prompt template act.j2, line 1: "), output
    assert re.search(reason, output), output
    assert not out.exists()
    assert time.monotonic() - started < 60


def test_a_prompt_failing_mid_run_costs_that_agent_its_step_only(tmp_path):
    from mesa_llm.cli import _load_checked
    from mesa_llm.model import MarketModel

    # renders for the first observation (what validate checks), not from step 2 on
    blow_up = "{% if obs.step > 1 %}{{ '{:>300000}'.format(1) }}{% endif %}step {{ obs.step }}"
    path = _scenario(tmp_path, {"observation": blow_up}, steps=3)
    spec = _load_checked(str(path), [])  # what validate and run check first: it passes
    chat = ScriptedChatModel(lambda request: tool_call_response("wait", {}))
    model = MarketModel(spec, output_dir=tmp_path / "rec", chat_model=chat)
    model.run()
    assert model.recording_path is not None
    events = [json.loads(line) for line in model.recording_path.read_text().splitlines()]
    llm_id = model.populations["llm_buyers_0"][0].unique_id
    errors = [e for e in events if e["event_type"] == "agent_error"]
    assert [(e["step"], e["agent_id"]) for e in errors] == [(2, llm_id), (3, llm_id)]
    assert all(
        "prompt template observation.j2: rendered more than 200,000 characters" in e["content"]["error"]
        and "\n" not in e["content"]["error"]
        for e in errors
    )
    assert {e["step"] for e in events if e["event_type"] == "llm_call"} == {1}  # only step 1 reached the model
    sellers = {a.unique_id for a in model.populations["sellers"]}
    assert {e["step"] for e in events if e["event_type"] == "order" and e["agent_id"] in sellers} >= {2, 3}
    assert events[-1]["event_type"] == "simulation_end" and events[-1]["content"]["status"] == "completed"


def test_validate_renders_shared_failing_templates_once(tmp_path, monkeypatch, budgets):
    from mesa_llm.cli import _load_checked
    from mesa_llm.scenario import ScenarioError

    monkeypatch.setattr(budgets, "MAX_RENDER_SECONDS", 0.3)
    renders: list[str] = []
    render = PromptLibrary.render

    def counted(self: PromptLibrary, name: str, **context: Any) -> str:
        renders.append(name)
        return render(self, name, **context)

    monkeypatch.setattr(PromptLibrary, "render", counted)
    slow = "{% set s = 'ab' * 50000 %}{% for i in range(50000) %}{% set n = s.count('ba b') %}{% endfor %}"
    path = _scenario(tmp_path, {"act": slow}, populations=8)
    with pytest.raises(ScenarioError, match=r"population 'llm_buyers_0': prompt template act\.j2, line 1: took longer than 0\.3 s$"):
        _load_checked(str(path), [])
    assert renders.count("act.j2") == 1  # not one slow render per population sharing it


def test_validate_stops_after_five_template_problems(tmp_path):
    from mesa_llm.cli import _load_checked
    from mesa_llm.scenario import ScenarioError

    path = _scenario(tmp_path, {}, populations=7)
    raw = yaml.safe_load(path.read_text())
    for i, population in enumerate(raw["populations"][:7]):  # seven different failing templates
        (tmp_path / f"act_{i}.j2").write_text("{{ 'x'|center(10**9) }}" + "{#" + str(i) + "#}")
        population["templates"] = {"act": f"act_{i}.j2"}
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ScenarioError) as caught:
        _load_checked(str(path), [])
    assert caught.value.problems[-1] == "(the check stopped after 5 problems)"
    assert [p.split(":")[0] for p in caught.value.problems[:-1]] == [f"population 'llm_buyers_{i}'" for i in range(5)]
