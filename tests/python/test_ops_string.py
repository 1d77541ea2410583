"""StringNormalizer and TfIdfVectorizer against hand-derived cases and Python references."""

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


def tfidf_ref(x, pool, counts, indexes, min_n, max_n, max_skip, mode, weights=None):
    """Every n-gram of each row with every skip (unigrams once), looked up in the pool."""
    grams = []
    for i, start in enumerate(counts):
        end = counts[i + 1] if i + 1 < len(counts) else len(pool)
        grams += [tuple(pool[p:p + i + 1]) for p in range(start, end, i + 1)]
    rows = np.atleast_2d(x)
    out = np.zeros((rows.shape[0], max(indexes) + 1), np.float32)
    for r, row in enumerate(rows):
        row = list(row)
        c = np.zeros(len(grams))
        for n in range(min_n, max_n + 1):
            for skip in range(1 if n == 1 else max_skip + 1):
                step = skip + 1
                for s in range(len(row) - (n - 1) * step):
                    g = tuple(row[s:s + (n - 1) * step + 1:step])
                    if g in grams:
                        c[grams.index(g)] += 1
        w = np.ones(len(grams)) if weights is None else np.asarray(weights)
        vals = {"TF": c, "IDF": np.where(c > 0, w, 0), "TFIDF": c * w}[mode]
        out[r, indexes] = vals
    return out if np.ndim(x) == 2 else out[0]


POOL = [2, 3, 5, 4, 5, 6, 7, 8, 6, 7]  # unigrams 2 3 5 4, bigrams (5,6) (7,8) (6,7)


@pytest.mark.parametrize("min_n,max_n", [(1, 1), (1, 2), (2, 2)])
@pytest.mark.parametrize("skip", [0, 1, 5])
@pytest.mark.parametrize("mode", ["TF", "IDF", "TFIDF"])
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_tfidf_matches_reference(min_n, max_n, skip, mode, dtype):
    x = np.array([[1, 1, 3, 3, 3, 7, 8, 6, 7, 5, 6, 8], [5, 6, 7, 8, 6, 7, 5, 2, 6, 7, 4, 4]], dtype)
    indexes = [6, 0, 1, 2, 3, 4, 5]
    weights = [0.5, 1.0, 2.0, 0.25, 3.0, 1.5, 0.75]
    attrs = dict(mode=mode, min_gram_length=min_n, max_gram_length=max_n, max_skip_count=skip, ngram_counts=[0, 4],
                 ngram_indexes=indexes, pool_int64s=POOL, weights=weights)
    (y,) = run_node("TfIdfVectorizer", {"x": x}, ["y"], opset=9, **attrs)
    np.testing.assert_allclose(y, tfidf_ref(x, POOL, [0, 4], indexes, min_n, max_n, skip, mode, weights))
    (y1,) = run_node("TfIdfVectorizer", {"x": x[1]}, ["y"], opset=9, **attrs)
    assert y1.shape == (7,)
    np.testing.assert_allclose(y1, y[1])


def test_tfidf_onnx_example_and_strings():
    x = np.array([1, 1, 3, 3, 3, 7, 8, 6, 7, 5, 6, 8], np.int32)
    (y,) = run_node("TfIdfVectorizer", {"x": x}, ["y"], opset=9, mode="TF", min_gram_length=2, max_gram_length=2,
                    max_skip_count=0, ngram_counts=[0, 4], ngram_indexes=list(range(7)), pool_int64s=POOL)
    np.testing.assert_array_equal(y, [0, 0, 0, 0, 1, 1, 1])
    words = np.array([["a", "b", "a", "c", "b", "a"]], dtype=object)
    (y,) = run_node("TfIdfVectorizer", {"x": words}, ["y"], opset=9, mode="TF", min_gram_length=1, max_gram_length=2,
                    max_skip_count=1, ngram_counts=[0, 2], ngram_indexes=[0, 1, 2], pool_strings=["a", "c", "b", "a"])
    np.testing.assert_array_equal(y, tfidf_ref(words, ["a", "c", "b", "a"], [0, 2], [0, 1, 2], 1, 2, 1, "TF"))
    assert y[0, 0] == 3 and y[0, 1] == 1


def test_tfidf_errors():
    base = dict(mode="TF", min_gram_length=1, max_gram_length=1, max_skip_count=0, ngram_counts=[0],
                ngram_indexes=[0, 1], pool_int64s=[1, 2])
    with pytest.raises(state.InvalidArgument, match="X must be int32 or int64"):
        run_node("TfIdfVectorizer", {"x": np.array(["a"], dtype=object)}, ["y"], opset=9, **base)
    with pytest.raises(Exception, match="the pool holds 2 n-grams but ngram_indexes has 1"):
        run_node("TfIdfVectorizer", {"x": np.array([1])}, ["y"], opset=9, **{**base, "ngram_indexes": [0]})
    with pytest.raises(Exception, match="mode must be TF, IDF or TFIDF"):
        run_node("TfIdfVectorizer", {"x": np.array([1])}, ["y"], opset=9, **{**base, "mode": "BM25"})
