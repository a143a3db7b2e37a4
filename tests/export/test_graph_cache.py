"""The export cache copies a graph only where a new export would write the same one."""

from __future__ import annotations

import pytest
import torch

from fastav_export.export.graph_cache import ENV_VAR, cached_export, graph_key


class _Scale(torch.nn.Module):
    def __init__(self, value: float):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.full((3,), value))

    def forward(self, x):
        return x * self.weight


def _exporter(out_dir, calls):
    def export():
        calls.append(1)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "g.onnx"
        path.write_bytes(b"graph" + bytes(len(calls)))
        path.with_name("g.onnx.data").write_bytes(b"weights")
        return path
    return export


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_the_same_key_copies_the_stored_files(tmp_path, cache):
    calls = []
    key = graph_key("g", _Scale(1.0), (torch.zeros(2, 3),), {"flavour": "x"})
    first = cached_export("g", tmp_path / "a", key, _exporter(tmp_path / "a", calls))
    second = cached_export("g", tmp_path / "b", key, _exporter(tmp_path / "b", calls))
    assert calls == [1] and second == tmp_path / "b" / "g.onnx"
    assert second.read_bytes() == first.read_bytes()
    assert (tmp_path / "b" / "g.onnx.data").read_bytes() == b"weights"


def test_any_difference_in_weights_samples_or_settings_changes_the_key():
    base = graph_key("g", _Scale(1.0), (torch.zeros(2, 3),), {"flavour": "x"})
    assert graph_key("g", _Scale(1.0), (torch.zeros(2, 3),), {"flavour": "x"}) == base
    assert graph_key("g", _Scale(1.0 + 1e-7), (torch.zeros(2, 3),), {"flavour": "x"}) != base
    assert graph_key("g", _Scale(1.0), (torch.zeros(3, 3),), {"flavour": "x"}) != base
    assert graph_key("g", _Scale(1.0), (torch.zeros(2, 3, dtype=torch.float16),), {"flavour": "x"}) != base
    assert graph_key("g", _Scale(1.0), (torch.zeros(2, 3), torch.tensor(0.5)), {"flavour": "x"}) != base
    assert graph_key("g", _Scale(1.0), (torch.zeros(2, 3),), {"flavour": "y"}) != base
    assert graph_key("h", _Scale(1.0), (torch.zeros(2, 3),), {"flavour": "x"}) != base


def test_a_damaged_entry_is_exported_again(tmp_path, cache):
    calls = []
    key = graph_key("g", _Scale(1.0), (torch.zeros(2, 3),), {})
    cached_export("g", tmp_path / "a", key, _exporter(tmp_path / "a", calls))
    (cache / key / "g.onnx.data").write_bytes(b"truncated")
    again = cached_export("g", tmp_path / "b", key, _exporter(tmp_path / "b", calls))
    assert calls == [1, 1] and (again.with_name("g.onnx.data")).read_bytes() == b"weights"
    third = cached_export("g", tmp_path / "c", key, _exporter(tmp_path / "c", calls))
    assert calls == [1, 1] and third.read_bytes() == again.read_bytes()  # the entry was rewritten


def test_without_the_variable_every_call_exports(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    calls = []
    for _ in range(2):
        cached_export("g", tmp_path, "key", _exporter(tmp_path, calls))
    assert calls == [1, 1]
