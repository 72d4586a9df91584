import json

import pytest

from galgen import console


def test_plain_progress_lines_when_stderr_is_not_a_terminal(capsys):
    # pytest's captured stderr is not a terminal: the plain fallback must report progress
    with console.progress(every=0.0) as on_progress:
        on_progress("work", 0, 4)  # a flow announces its stage
        for _ in range(4):
            on_progress("work", 1, 4, loss=0.5)
        on_progress("next", 0, None)
        on_progress("next", 2, None)
    err = capsys.readouterr().err.splitlines()
    assert err[3].startswith("work: 4/4 (100%)") and err[3].endswith("loss 0.5")
    assert err[4].startswith("next: 2/?")
    assert len(err) == 5


def test_print_json_one_line_and_strict(capsys):
    import numpy as np

    console.print_json({"a": np.float32(1.5), "b": np.arange(2)})
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and json.loads(out) == {"a": 1.5, "b": [0, 1]}
    with pytest.raises(ValueError):
        console.print_json({"nan": float("nan")})
