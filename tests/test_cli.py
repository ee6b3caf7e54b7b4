import json
import subprocess
import sys

import pytest

from alexnet import __version__
from alexnet.cli import main


def test_version_and_help(capsys):
    try:
        main(["--version"])
    except SystemExit as e:
        assert e.code == 0
    assert __version__ in capsys.readouterr().out


def test_python_dash_m_is_the_same_cli():
    out = subprocess.run([sys.executable, "-m", "alexnet", "--help"], capture_output=True, text=True, check=True)
    assert "usage: alexnet" in out.stdout and "model" in out.stdout


def test_model_verb_json(capsys):
    assert main(["model", "paper", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["parameters"] == 60_965_224
    assert [r["layer"] for r in data["layers"]][:3] == ["conv1", "conv2", "conv3"]


def test_user_error_is_one_line(capsys):
    assert main(["model", "paper", "--input-size", "16"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "input_size=16" in err[0] and "Traceback" not in err[0]


def test_top_level_api_names_resolve():
    import alexnet

    for name in alexnet._LAZY:
        assert getattr(alexnet, name) is not None, name
    assert callable(alexnet.load_model) and alexnet.TrainConfig.__name__ == "TrainConfig"
    with pytest.raises(AttributeError):
        _ = alexnet.no_such_name
