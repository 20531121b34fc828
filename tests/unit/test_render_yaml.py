"""The safe YAML loader: Kubernetes' reading of scalars and keys, limits, duplicates, lines."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from gitops.render.yaml import Dialect, Limits, load, locate, stringify_key
from gitops.render.yaml import events as yaml_events


def data_of(text: str, dialect: Dialect = Dialect.KUBERNETES) -> object:
    result = load(text.encode(), "f.yaml", dialect)
    assert result.diagnostics == []
    return [d.data for d in result.documents]


def test_multi_document_stream_with_empty_and_comment_documents() -> None:
    result = load(b"a: 1\n---\n# only a comment\n---\n---\nb: 2\n", "f.yaml")
    assert [(d.index, d.data) for d in result.documents] == [(1, {"a": 1}), (2, None), (3, None), (4, {"b": 2})]
    assert result.documents[3].line == 6


def test_scalars_are_read_like_go_yaml_v2() -> None:
    [doc] = data_of("a: [1, yes, off, 0x10, 010, 1e3, 1_000, .inf, ~, '5', 2020-01-02, 1.5]\n")
    assert doc == {"a": [1, True, False, 16, 8, 1000.0, 1000, float("inf"), None, "5", "2020-01-02", 1.5]}


def test_compose_dialect_reads_yaml_1_2_booleans() -> None:
    [doc] = data_of("a: [yes, on, true, 8080:80]\n", Dialect.COMPOSE)
    assert doc == {"a": ["yes", "on", True, "8080:80"]}


def test_non_string_keys_are_stringified_like_kubernetes() -> None:
    [doc] = data_of("data:\n  5: a\n  3.14: b\n  true: c\n  1e6: d\n")
    assert doc == {"data": {"5": "a", "3.14": "b", "true": "c", "1e+06": "d"}}
    assert stringify_key(0.1) == "0.1" and stringify_key(None) is None


def test_null_key_is_an_error() -> None:
    result = load(b"~: 1\n", "f.yaml")
    assert [d.code for d in result.diagnostics] == ["yaml-key"]


def test_duplicate_keys_are_reported_with_their_line() -> None:
    result = load(b"a: 1\nb:\n  c: 1\n  c: 2\n", "f.yaml")
    [problem] = result.diagnostics
    assert problem.code == "duplicate-key" and problem.line == 4 and "'c'" in problem.message


def test_merge_keys_and_aliases() -> None:
    [doc] = data_of("base: &b {x: 1, z: 2}\nother:\n  <<: *b\n  z: 3\nlist: [*b]\n")
    assert doc["other"] == {"x": 1, "z": 3}  # type: ignore[index]
    assert doc["list"] == [{"x": 1, "z": 2}]  # type: ignore[index]


def test_y_is_a_boolean_key_as_in_kubernetes() -> None:
    [doc] = data_of("y: 1\nn: 2\n")
    assert doc == {"true": 1, "false": 2}


def billion_laughs(levels: int = 10, pad_to: int = 0) -> bytes:
    text = 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for i in range(1, levels):
        text += f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]\n"
    if pad_to:
        text += "pad: '" + "x" * max(0, pad_to - len(text) - 10) + "'\n"
    return text.encode()


def test_billion_laughs_is_rejected_quickly() -> None:
    data = billion_laughs(pad_to=1024 * 1024)
    assert len(data) >= 1024 * 1024 - 16
    started = time.perf_counter()
    result = load(data, "laughs.yaml")
    elapsed = time.perf_counter() - started
    [problem] = result.diagnostics
    assert problem.code == "alias-limit" and "billion-laughs" in problem.message
    assert elapsed < 10  # refused at the alias limit, not expanded (0.01 s idle): a hang guard, not a speed claim


def test_alias_expansion_under_the_limit_is_fine() -> None:
    result = load(billion_laughs(levels=3), "f.yaml", limits=Limits(max_alias_nodes=10_000))
    assert result.diagnostics == []


def flow(levels: int) -> bytes:
    return b"a: " + b"[" * levels + b"]" * levels


def block(levels: int) -> bytes:
    return b"- " * levels + b"x"


PARSERS = pytest.mark.parametrize("parser", ["libyaml", "pure-python"], indirect=True)


@pytest.fixture
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the loader on libyaml (PyYAML's C parser, with limits of its own in libyaml >= 0.2.6)
    and on PyYAML's pure-Python parser (no limit of its own): the diagnostics must not differ."""
    if request.param == "pure-python":
        monkeypatch.setattr(yaml_events, "CParser", yaml_events._PurePythonParser)
    elif yaml_events.CParser is yaml_events._PurePythonParser:
        pytest.skip("PyYAML was built without libyaml")
    return str(request.param)


@PARSERS
@pytest.mark.parametrize("text", [flow(100_000), block(100_000)], ids=["flow", "block"])
def test_deep_nesting_is_rejected_without_crashing(parser: str, text: bytes) -> None:
    started = time.perf_counter()
    result = load(text, "deep.yaml")
    [problem] = result.diagnostics
    assert (problem.code, problem.file, problem.line, problem.document) == ("too-deep", "deep.yaml", 1, 1)
    assert problem.message.startswith("document nested deeper than")
    assert time.perf_counter() - started < 20  # stops at the limit: no crawl through 100,000 levels (0.1 s idle)


@PARSERS
@pytest.mark.parametrize("shape", [flow, block], ids=["flow", "block"])
@pytest.mark.parametrize(
    ("max_depth", "levels"),
    [(100, 600), (2_000, 3_000)],
    ids=["our limit below libyaml's (1000)", "our limit above libyaml's"],
)
def test_too_deep_is_one_diagnostic_whoever_detects_it(
    parser: str, shape: Callable[[int], bytes], max_depth: int, levels: int
) -> None:
    """Below libyaml's bound our own check finds it; above it, libyaml >= 0.2.6 stops first (older
    libyaml and the pure-Python parser leave it to our check). Either way: one `too-deep`."""
    result = load(b"ok: 1\n---\n" + shape(levels), "deep.yaml", limits=Limits(max_depth=max_depth))
    [problem] = result.diagnostics
    assert (problem.code, problem.file, problem.line, problem.document) == ("too-deep", "deep.yaml", 3, 2)
    assert [d.data for d in result.documents] == [{"ok": 1}]
    if max_depth < 1000:
        assert f"{max_depth} levels" in problem.message


def test_nesting_within_the_limits_loads() -> None:
    result = load(flow(150), "f.yaml")
    assert result.diagnostics == []


def test_recursive_alias_is_an_error() -> None:
    assert [d.code for d in load(b"a: &a [*a]\n", "f.yaml").diagnostics] == ["alias"]


def test_syntax_and_encoding_errors_are_diagnostics() -> None:
    [syntax] = load(b"a: b\n c: d\n", "f.yaml").diagnostics
    assert syntax.code == "yaml-syntax" and syntax.line == 2
    [encoding] = load(b"a: \xff\xfe\x00bad\n", "f.yaml").diagnostics
    assert encoding.code == "encoding"


def test_documents_before_a_syntax_error_are_kept() -> None:
    result = load(b"a: 1\n---\nb: [\n", "f.yaml")
    assert [d.data for d in result.documents] == [{"a": 1}]
    assert result.diagnostics[0].document == 2


def test_json_is_read_too() -> None:
    [doc] = data_of('{"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "1"}}')
    assert doc == {"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "1"}}


def test_locate_lines_and_columns_of_pointers() -> None:
    text = b"a: 1\n---\nspec:\n  ports:\n    - port: 80\n    - port: x\n  data:\n    5: z\n  list: [a, {b: 1}]\n"
    lines = locate(text, 2, ["/spec/ports/1/port", "/spec/data/5", "/spec/missing/deep", "/spec", "/spec/ports/1",
                             "/spec/list/1/b"])
    # a key's line and column; a list item's first character; a missing field: its nearest parent's
    assert lines == {"/spec/ports/1/port": (6, 7), "/spec/data/5": (8, 5), "/spec/missing/deep": (3, 1),
                     "/spec": (3, 1), "/spec/ports/1": (6, 7), "/spec/list/1/b": (9, 14)}


def test_locate_documents_is_locate_of_each_document_in_one_pass() -> None:
    from gitops.render.yaml import locate, locate_documents

    text = "a: 1\n---\nb:\n  c: [x, y]\n---\n# empty\n---\nd: {e: 1}\n"
    wanted = {1: {"/a"}, 2: {"/b/c/1", "/b/missing"}, 4: {"/d/e"}, 9: {"/x"}}
    found = locate_documents(text, wanted)
    assert found == {d: locate(text, d, p) for d, p in wanted.items() if d != 9}
    assert found[2] == {"/b/c/1": (4, 10), "/b/missing": (3, 1)} and found[4] == {"/d/e": (8, 5)}


def _pointers(node: object, at: str = "") -> list[str]:
    from gitops.render.yaml import escape_pointer

    out = [at]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _pointers(value, f"{at}/{escape_pointer(str(key))}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _pointers(value, f"{at}/{index}")
    return out


LINES_STREAM = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {"a/b": c}}
spec:
  template:
    spec:
      containers:
        - name: web
          image: nginx
          args:
            - --x
            -
              --y
          env: [{name: A, value: "1"},
                {name: B, value: "multi
                  line"}]
          command: |
            run
            this
        -
          name: sidecar
"dup": 1
? complex
: 2
1: number key
---
[1, [2, 3], {a: 4}]
---
scalar
---
base: &b {x: 1}
other: *b
---
base: &b {x: 1}
merged: {<<: *b, y: 2}
"""


def test_lines_kept_by_the_loader_are_the_lines_locate_finds() -> None:
    from gitops.render.yaml import load, locate, locate_in_data

    loaded = load(LINES_STREAM, "x.yaml", track_lines=True)
    tracked = [d for d in loaded.documents if d.lines is not None]
    assert [d.index for d in tracked] == [1, 2, 3]  # aliases and merge keys: not tracked
    for document in tracked:
        pointers = _pointers(document.data)
        pointers += [p + "/missing" for p in pointers] + ["/nothing/here", "/spec/template/spec/containers/7"]
        expected = locate(LINES_STREAM, document.index, pointers)
        assert locate_in_data(document.data, document.lines or {}, document.line, pointers,
                              document.column) == expected
    assert load(LINES_STREAM, "x.yaml").documents[0].lines is None
