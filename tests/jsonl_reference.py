"""The JSON Lines writer as it was before the columnar fast paths (issue 10): the reference whose bytes the
current `mlprod.jsonlines.jsonl_by_column` must reproduce exactly (tests/test_exact_floats.py)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mlprod.jsonlines import _JSON_PLAIN_NAME, _pandas_json_values

_JSON_PLAIN = r'^[^"\\/\x00-\x1f]*$'  # a text JSON (as pandas writes it) takes as it is, between quotes


def float_texts(x: Any) -> Any:
    "Floats `x` (n,) as the shortest texts that read back to the same bits, (n,) pyarrow strings."
    text = pc.cast(pa.array(x), pa.string())  # (n,)
    with np.errstate(invalid="ignore"):
        whole = np.isfinite(x) & (x == np.trunc(x))  # (n,)
    if whole.any():
        whole &= ~pc.match_substring(text, "e").to_numpy(zero_copy_only=False)
        if whole.any():
            text = pc.if_else(pa.array(whole), pc.binary_join_element_wise(text, ".0", ""), text)
    return text


def json_floats(x: Any) -> Any:
    "Floats `x` (n,) as JSON texts: NaN is `null`, the infinities `Infinity` and `-Infinity`."
    text = float_texts(x)
    odd = ~np.isfinite(x)  # (n,)
    if odd.any():
        words = np.where(np.isnan(x[odd]), "null", np.where(x[odd] > 0, "Infinity", "-Infinity"))
        text = pc.replace_with_mask(text, pa.array(odd), pa.array(words.tolist(), pa.string()))
    return text


def json_values(col: pd.Series) -> Any:
    "Each value of `col` (n,) as JSON text, (n,) pyarrow strings."
    dtype = col.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iub":
        return pc.cast(pa.array(col.to_numpy()), pa.string())
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        return json_floats(col.to_numpy(dtype=np.float64 if dtype.itemsize > 4 else np.float32))
    if isinstance(dtype, pd.Float64Dtype | pd.Float32Dtype):
        return json_floats(col.to_numpy(dtype=dtype.numpy_dtype, na_value=np.nan))
    if isinstance(dtype, pd.CategoricalDtype):
        cats = pa.concat_arrays([json_values(pd.Series(dtype.categories)), pa.array(["null"])])
        codes = col.cat.codes.to_numpy()
        return cats.take(pa.array(np.where(codes < 0, len(cats) - 1, codes)))
    if isinstance(dtype, pd.StringDtype) or (isinstance(dtype, np.dtype) and dtype.kind == "O"):
        try:
            text = pa.array(col, type=pa.string(), from_pandas=True)
        except (pa.ArrowException, TypeError, ValueError):
            return _pandas_json_values(col)
        if isinstance(text, pa.ChunkedArray):
            text = text.combine_chunks()
        if not pc.all(pc.match_substring_regex(text, _JSON_PLAIN)).as_py():
            return _pandas_json_values(col)
        return pc.binary_join_element_wise('"', text, '"', "").fill_null("null")
    return _pandas_json_values(col)


def json_key(df: pd.DataFrame, i: int) -> str:
    "The JSON text of column `i`'s name, as pandas writes it."
    name = df.columns[i]
    if isinstance(name, str) and _JSON_PLAIN_NAME.fullmatch(name):
        return json.dumps(name, ensure_ascii=False)
    line = df.iloc[:1, [i]].to_json(orient="records", lines=True, force_ascii=False, date_format="iso")
    _, end = json.JSONDecoder().raw_decode(line, 1)
    return line[1:end]


def jsonl_by_column(df: pd.DataFrame) -> str:
    "`df` (n_rows >= 1, n_columns >= 1) as JSON Lines, as mlprod wrote it before the fast paths."
    parts: list[Any] = []
    for i in range(len(df.columns)):
        parts += [("{" if i == 0 else ",") + json_key(df, i) + ":", json_values(df.iloc[:, i])]
    rows = pc.binary_join_element_wise(*parts, "}\n", "")
    if isinstance(rows, pa.ChunkedArray):
        rows = rows.combine_chunks()
    return "".join(rows.to_pylist())
