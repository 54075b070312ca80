"""`dynloss` the import package: `python -m dynloss` is the command, its public names load lazily."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def test_python_m_dynloss_is_the_dynloss_command():
    proc = subprocess.run([sys.executable, "-m", "dynloss", "--help"], capture_output=True, text=True, env=ENV,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: dynloss") and "--log-level" in proc.stdout and "analyze" in proc.stdout


def test_importing_dynloss_loads_no_heavy_library():
    code = ("import sys, dynloss\n"
            "print('heavy:', *(m for m in ('torch', 'pandas', 'scipy', 'analysis', 'training') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, cwd=ROOT, check=True,
                          timeout=120)
    assert proc.stdout.strip() == "heavy:", proc.stdout


def test_every_public_name_resolves_to_the_function_of_its_module():
    import dynloss
    from analysis.core.pipeline import analyze_preset
    from analysis.audit.regression.results import assert_within_noise

    assert dynloss.analyze_preset is analyze_preset and dynloss.assert_within_noise is assert_within_noise
    for name in dynloss.__all__:
        assert getattr(dynloss, name) is not None, name
    assert set(dynloss.__all__) <= set(dir(dynloss))


def test_an_unknown_name_is_an_attribute_error_listing_the_public_names():
    import dynloss

    with pytest.raises(AttributeError, match="public names: .*analyze_preset"):
        dynloss.no_such_thing  # noqa: B018
