"""What installing mockserver puts into site-packages, and what `import mockserver` costs.

The wheel is built offline from a copy of the sources (no build isolation: the venv's
setuptools builds it), so the test needs no network and leaves the checkout untouched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import mockserver

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_installs_only_the_mockserver_package(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for folder in ("mockserver", "pytest_plugin"):
        shutil.copytree(
            ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    built = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"),
            *("-q", "--no-index", "-w", str(tmp_path / "dist"), str(source)),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (tmp_path / "dist").glob("mockserver-*.whl")
    names = zipfile.ZipFile(wheel).namelist()

    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"mockserver"}
    expected = {
        f"mockserver/{p.relative_to(ROOT / 'mockserver').as_posix()}"
        for p in (ROOT / "mockserver").rglob("*.py")
    } | {
        f"mockserver/pytest_plugin/{p.relative_to(ROOT / 'pytest_plugin').as_posix()}"
        for p in (ROOT / "pytest_plugin").rglob("*.py")
    }
    assert expected - set(names) == set()  # every module ships
    assert {"mockserver/py.typed", "mockserver/pytest_plugin/py.typed"} <= set(names)
    (entry_points,) = (n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[pytest11]\nmockserver = mockserver.pytest_plugin.plugin" in text

    # Installed from the wheel (first on the path, away from the checkout), the plugin works.
    site = tmp_path / "site"
    installed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            "--target",
            str(site),
            str(wheel),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    work = tmp_path / "work"
    work.mkdir()
    (work / "test_it.py").write_text(
        "import mockserver.pytest_plugin.plugin as plugin\n\n\n"
        "def test_it(mockserver):\n"
        f"    assert plugin.__file__.startswith({str(site)!r})\n"
        "    assert mockserver.engine is not None\n"
    )
    ran = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_it.py"],
        cwd=work,
        env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr


def test_the_plugin_loads_under_its_installed_name():
    import mockserver.pytest_plugin.plugin as plugin

    assert plugin.__name__ == "mockserver.pytest_plugin.plugin"
    assert Path(plugin.__file__).parent.name == "pytest_plugin"


def test_import_mockserver_is_light_and_public_names_are_all_there():
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, mockserver; print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    loaded = set(done.stdout.split())
    assert loaded & {"pytest", "uvicorn", "respx", "starlette"} == set()
    for name in mockserver.__all__:
        assert getattr(mockserver, name) is not None, name
    assert mockserver.Mockserver.__module__ == "mockserver.pytest_plugin.mock"


def test_the_entry_point_keeps_its_name_so_no_mockserver_turns_the_plugin_off(pytester):
    pytester.makepyfile("def test_it(mockserver):\n    assert mockserver is not None\n")
    assert pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider").ret == 0
    off = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider", "-p", "no:mockserver")
    off.stdout.fnmatch_lines(["*fixture 'mockserver' not found*"])
