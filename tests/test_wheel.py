"""An installed wheel (not this checkout) runs ``localrnn reproduce figure2 --budget quick`` in an
empty folder: the paper's specs travel as package data. Slow (builds a wheel, trains ~2,000
iterations): ``.venv/bin/pytest -m slow tests/test_wheel.py``."""

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest


@pytest.mark.slow
def test_wheel_reproduces_figure2_in_an_empty_folder(tmp_path):
    root = Path(__file__).resolve().parents[1]
    wheels, venv, work = tmp_path / "wheels", tmp_path / "venv", tmp_path / "empty"
    work.mkdir()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                    "-w", str(wheels), str(root)], check=True)
    [wheel] = wheels.glob("localrnn-*.whl")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
                    "--ignore-installed", str(wheel)], check=True, env=clean)
    # dependencies from this environment's site-packages (no network); localrnn from the wheel
    env = {**os.environ, "PYTHONPATH": sysconfig.get_paths()["purelib"]}
    env.pop("LOCALRNN_EXPERIMENTS", None)
    env.pop("LOCALRNN_STORE", None)
    where = subprocess.run([str(python), "-c", "import localrnn; print(localrnn.__file__)"], env=env, cwd=work,
                           capture_output=True, text=True)
    assert where.returncode == 0, where.stderr
    assert str(venv) in where.stdout and str(root) not in where.stdout
    out = subprocess.run([str(venv / "bin" / "localrnn"), "reproduce", "figure2", "--budget", "quick"], env=env,
                         cwd=work, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "wrote" in out.stdout and (work / "localrnn.db").is_file()
    assert list((work / "figures").glob("figure2*.png"))
