"""Files a script can trust: non-finite numbers told apart from missing ones, corrupt files named."""

import json

import numpy as np
import pytest

from relu_denoise.errors import RunError
from relu_denoise.files import read_json, to_jsonable, write_json


def test_infinity_nan_and_not_computed_are_three_different_json_values(tmp_path):
    obj = {"gap": float("inf"), "low": -np.inf, "ratio": np.float64("nan"), "missing": None,
           "values": np.array([1.0, np.inf])}
    back = json.loads(write_json(tmp_path / "r.json", obj).read_text())        # strict JSON: no Infinity/NaN
    assert back == {"gap": "inf", "low": "-inf", "ratio": "nan", "missing": None, "values": [1.0, "inf"]}
    assert to_jsonable(2.5) == 2.5


@pytest.mark.parametrize("text, words", [("", "unreadable"), ('{"status": "ok"', "unreadable"),
                                         ("[1, 2]", "not a JSON object")])
def test_a_corrupt_json_file_is_one_error_naming_it(tmp_path, text, words):
    path = tmp_path / "result.json"
    path.write_text(text)
    with pytest.raises(RunError, match=f"result.json.*{words}|{words}.*") as info:
        read_json(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
