"""Model configs are validated by declared models (mlprod.keys, pydantic): every kind of error keeps mlprod's own
sentence, naming the file, the line and the key; pydantic's text never reaches the user; a task's own key is
taken by that task only, and a task adds a key by declaring one field."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlprod.config import load_config, parse_config
from mlprod.errors import ConfigError
from mlprod.keys import InteractionKeys, TableKeys, key
from mlprod.tasks import Regression, register, task_for, unregister

TABLE = (
    "name: churn\n"  # 1
    "task: classification\n"  # 2
    "target: churned\n"  # 3
    "id_col: customer_id\n"  # 4
    "estimator:\n"  # 5
    "  class: sklearn.linear_model.LogisticRegression\n"  # 6
)
RECOMMEND = (
    "name: recs\n"  # 1
    "task: recommend\n"  # 2
    "user_col: user_id\n"  # 3
    "item_col: item_id\n"  # 4
    "estimator:\n"  # 5
    "  class: mlprod.recsys.ItemKNNRecommender\n"  # 6
)
PYDANTIC_WORDS = ("pydantic", "Input should", "validation error", "Field required", "type=", "input_value")


def _error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "model.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    message = str(e.value)
    assert not any(w in message for w in PYDANTIC_WORDS), message
    return message.removeprefix(f"{path}:")


# (the lines added to TABLE, the error after "<file>:"): line 7 is the first added line
CASES = {
    "unknown key": (
        "validation:\n  test_size: 0.2\n  folds: 3\n",
        "9: column 'validation.folds': unknown key (expected one of test_size, cv, stratify, refit)",
    ),
    "unknown key of a list item": (
        "preprocessing:\n  transformers:\n    - {class: mlprod.features.ColumnRatio, param: {}}\n",
        "9: column 'preprocessing.transformers[0].param': unknown key (expected one of class, params)",
    ),
    "wrong type": ("seed: '7'\n", "7: column 'seed': '7' is a str (expected an integer)"),
    "a boolean for a number": (
        "validation: {test_size: true}\n",
        "7: column 'validation.test_size': True is a boolean (expected a fraction in (0, 1))",
    ),
    "wrong type of a list item": (
        "features: [age, 3]\n",
        "7: column 'features[1]': 3 is a int (expected a column name)",
    ),
    "a list for a mapping": (
        "preprocessing: [scale]\n",
        "7: column 'preprocessing': ['scale'] is a list (expected a mapping of keys)",
    ),
    "out of range": (
        "validation: {cv: 1}\n",
        "7: column 'validation.cv': 1 is out of range (expected a number of folds >= 2)",
    ),
    "out of range, a fraction": (
        "validation:\n  test_size: 1.5\n",
        "8: column 'validation.test_size': 1.5 is out of range (expected a fraction in (0, 1) or a number of rows)",
    ),
    "seed out of range": (
        "seed: -1\n",
        "7: column 'seed': -1 is out of range (expected an integer in [0, 2**32))",
    ),
    "bad choice": (
        "preprocessing:\n  impute_numeric: mode\n",
        "8: column 'preprocessing.impute_numeric': invalid value 'mode' "
        "(expected mean or median or most_frequent or constant or none)",
    ),
    "bad choice, 1 for true": (
        "preprocessing: {scale: 1}\n",
        "7: column 'preprocessing.scale': invalid value 1 (expected True or False)",
    ),
    "missing key in a list item": (
        "preprocessing:\n  transformers:\n    - params: {}\n",
        "9: column 'preprocessing.transformers[0]': missing key 'class' (expected {class: import.path, params: {...}})",
    ),
    "empty list": (
        "features: []\n",
        "7: column 'features': no features (expected at least one column, or omit the key for all)",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_kind_of_error_names_the_file_line_and_key(tmp_path: Path, case: str) -> None:
    added, expected = CASES[case]
    assert _error(tmp_path, TABLE + added) == expected


def test_a_missing_required_key(tmp_path: Path) -> None:
    text = TABLE.replace("target: churned\n", "")
    assert _error(tmp_path, text) == (
        " column 'target': missing key (expected a value for every one of name, task, target, id_col)"
    )
    text = RECOMMEND.replace("item_col: item_id\n", "")
    assert _error(tmp_path, text) == (
        " column 'item_col': missing key (expected the user and item columns of the interactions)"
    )
    text = TABLE.replace("  class: sklearn.linear_model.LogisticRegression\n", "  params: {C: 1.0}\n")
    assert _error(tmp_path, text) == (
        "5: column 'estimator': missing key 'class' "
        "(expected class: an import path, e.g. sklearn.ensemble.RandomForestClassifier)"
    )


def test_errors_of_the_recommenders_keys(tmp_path: Path) -> None:
    assert _error(tmp_path, RECOMMEND + "evaluate: {k_values: [5, 0]}\n") == (
        "7: column 'evaluate.k_values[1]': 0 is out of range (expected a positive integer)"
    )
    assert _error(tmp_path, RECOMMEND + "validation: {holdout: 0}\n") == (
        "7: column 'validation.holdout': 0 is out of range "
        "(expected a count of interactions per user (>= 1) or a fraction of them in (0, 1))"
    )
    assert _error(tmp_path, RECOMMEND + "validation: {test_size: 0.2}\n") == (
        "7: column 'validation.test_size': unknown key (expected one of holdout, refit)"
    )


def test_a_tasks_own_key_is_taken_by_that_task_only(tmp_path: Path) -> None:
    assert _error(tmp_path, TABLE + "user_col: user_id\n") == (
        "7: column 'user_col': user_col applies to recommend, not to classification"
    )
    assert _error(tmp_path, RECOMMEND + "target: item_id\n").startswith(
        "7: column 'target': target applies to classification and regression, not to recommend"
    )
    path = tmp_path / "ok.yaml"
    path.write_text(RECOMMEND + "evaluate: {k_values: [3, 3, 1]}\n")
    assert load_config(path).k_values == [1, 3]
    path.write_text(TABLE + "numeric: [age]\n")
    assert load_config(path).numeric == ["age"]
    path.write_text(TABLE + "preprocessing: {scale: true}\n")  # the other keys keep their defaults
    assert load_config(path).preprocessing == {
        "impute_numeric": "median",
        "scale": True,
        "impute_categorical": "constant",
        "one_hot": True,
        "transformers": [],
    }
    assert task_for("recommend").own_keys == tuple(InteractionKeys.model_fields)
    assert task_for("classification").own_keys == tuple(TableKeys.model_fields)


class ForecastKeys(TableKeys):
    horizon: int = key("a number of steps", out_of_range="a number of steps >= 1", ge=1, default=1)


class Forecast(Regression):
    name = "forecast"

    def config_keys(self) -> type[ForecastKeys]:
        return ForecastKeys


def test_a_task_adds_a_key_by_declaring_one_field() -> None:
    base = {
        "name": "f",
        "target": "y",
        "id_col": "id",
        "estimator": {"class": "sklearn.linear_model.Ridge"},
    }
    register(Forecast())
    try:
        assert parse_config(base | {"task": "forecast", "horizon": 3}).task == "forecast"
        with pytest.raises(
            ConfigError, match=r"column 'horizon': 0 is out of range \(expected a number of steps >= 1\)"
        ):
            parse_config(base | {"task": "forecast", "horizon": 0})
        with pytest.raises(
            ConfigError, match="column 'horizon': horizon applies to forecast, not to regression"
        ):
            parse_config(base | {"task": "regression", "horizon": 3})
    finally:
        unregister("forecast")
    with pytest.raises(ConfigError, match="column 'horizon': unknown key"):
        parse_config(base | {"task": "regression", "horizon": 3})
