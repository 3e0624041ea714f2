"""Targets are imported as Python would import them: package files as dotted modules, module targets
from the current directory (or the pyproject's folder), sibling modules per project, and an import
that fails names what is missing.

The projects are in tests/projects/; everything runs in this process (cwd is tests/projects).
"""

import os
import sys

import pytest

from reslint.errors import TargetError
from reslint.load import import_source, load_targets
from reslint.runner import Job, lint_target
from reslint.target import parse_target

PROJECTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "projects")


@pytest.fixture(autouse=True)
def projects(monkeypatch):
    """cwd is tests/projects; afterwards sys.path and the project's modules are as they were."""
    monkeypatch.chdir(PROJECTS)
    path = list(sys.path)
    yield PROJECTS
    sys.path[:] = path
    for name, module in list(sys.modules.items()):
        if (getattr(module, "__file__", None) or "").startswith(PROJECTS + os.sep):
            del sys.modules[name]


def codes_and_places(results):
    return [(f.code, f.path, f.line) for result in results for f in result.findings]


def expected_line(path: str, code: str) -> int:
    with open(os.path.join(PROJECTS, path)) as handle:
        return next(i for i, line in enumerate(handle, 1) if f"# expect: {code}" in line)


def import_error(text: str, **kwargs) -> str:
    with pytest.raises(TargetError) as error:
        import_source(parse_target(text), **kwargs)
    message = str(error.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_a_file_in_a_package_is_imported_as_its_dotted_module():
    module = import_source(parse_target("relpkg/models/net.py:Net"))
    assert module.__name__ == "relpkg.models.net"  # so `from .parts import *` works
    results = lint_target(Job("relpkg/models/net.py:Net", ("1,3,16,16",)))
    assert codes_and_places(results) == [("RL001", "relpkg/models/parts.py", expected_line("relpkg/models/parts.py", "RL001"))]


def test_a_module_target_resolves_from_the_current_directory():
    assert import_source(parse_target("relpkg.models.net:Net")).__name__ == "relpkg.models.net"


def test_a_module_target_resolves_from_the_configuring_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    import_error("relpkg.models.net:Net")
    entries = load_targets(parse_target("relpkg.models.net:Net"), root=PROJECTS)
    assert [label for label, _ in entries] == ["relpkg.models.net:Net"]


def test_a_missing_module_and_a_missing_dependency_are_told_apart():
    assert "relpkg.models.nope" in import_error("relpkg.models.nope:Net")  # the target's own module
    assert "'nowhere_pkg'" in import_error("nowhere_pkg.models:Net")  # one of its parent packages
    # netlayers exists but imports `net`, which is not installed: the message names `net`, however
    # much the two names look alike.
    for text in ("netlayers:Net", "netlayers.py:Net"):
        message = import_error(text)
        assert "'net'" in message and "pip install net" in message and "not found" not in message


def test_a_relative_import_outside_a_package_is_one_line():
    assert "__init__.py" in import_error("norel/uses_relative.py:Net")


def test_sibling_modules_of_the_same_name_belong_to_their_own_project():
    # projA/model.py and projB/model.py each do `from layers import Block`; only projB's is broken.
    runs = [lint_target(Job(f"{project}/model.py:Net", ("2,8",))) for project in ("projA", "projB", "projA")]
    assert [[r.status for r in results] for results in runs] == [["ok"], ["findings"], ["ok"]]
    assert codes_and_places(runs[1]) == [("RL001", "projB/layers.py", expected_line("projB/layers.py", "RL001"))]
