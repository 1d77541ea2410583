"""StringNormalizer against hand-derived cases and Python's own str methods."""

import numpy as np
import pytest

from kiln.capi import onnxruntime_pybind11_state as state
from onnx_builders import run_node


def norm(x, **attrs):
    (y,) = run_node("StringNormalizer", {"x": np.array(x, dtype=object)}, ["y"], opset=10, **attrs)
    return y


def test_stopwords_and_case_sensitivity():
    words = ["Monday", "tuesday", "monday", "MONDAY", "friday"]
    assert norm(words, stopwords=["monday"], is_case_sensitive=1).tolist() == ["Monday", "tuesday", "MONDAY", "friday"]
    assert norm(words, stopwords=["monday"]).tolist() == ["tuesday", "friday"]
    assert norm(words, stopwords=["MonDay"], case_change_action="UPPER").tolist() == ["TUESDAY", "FRIDAY"]
    assert norm(words, case_change_action="LOWER").tolist() == [w.lower() for w in words]
    assert norm(words).tolist() == words


def test_two_dim_and_all_removed():
    y = norm([["a", "B", "c"]], stopwords=["b"], case_change_action="UPPER")
    assert y.shape == (1, 2) and y.tolist() == [["A", "C"]]
    y = norm([["x", "x"]], stopwords=["x"])
    assert y.shape == (1, 1) and y.tolist() == [[""]]
    y = norm(["x", "X"], stopwords=["x"])
    assert y.shape == (1,) and y.tolist() == [""]


def test_unicode_case_mapping():
    words = ["straße", "ÇA", "élan", "Ωmega", "привет", "日本"]
    assert norm(words, case_change_action="UPPER").tolist() == ["STRAßE", "ÇA", "ÉLAN", "ΩMEGA", "ПРИВЕТ", "日本"]
    assert norm(words, case_change_action="LOWER").tolist() == ["straße", "ça", "élan", "ωmega", "привет", "日本"]
    assert norm(["Éte", "été"], stopwords=["ÉTÉ"]).tolist() == ["Éte"]


def test_errors():
    with pytest.raises(state.InvalidArgument, match=r"shape \[C\] or \[1, C\], got \[2,2\]"):
        norm([["a", "b"], ["c", "d"]])
    with pytest.raises(Exception, match="case_change_action must be"):
        norm(["a"], case_change_action="TITLE")
