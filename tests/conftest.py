import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def expected_lines(path: str, code: str) -> list[int]:
    """Lines of a model file marked `# expect: CODE`: where the test says the finding must be."""
    with open(path) as handle:
        return [i for i, line in enumerate(handle, 1) if f"# expect: {code}" in line]


@pytest.fixture
def model_file(tmp_path):
    """Write a model source to a file in a temp dir; returns its path."""

    def write(source: str, name: str = "model.py") -> str:
        path = tmp_path / name
        path.write_text(textwrap.dedent(source))
        return str(path)

    return write


def run_cli(*args: str, cwd: str | None = None) -> subprocess.CompletedProcess:
    """Run the real console entry point in a subprocess, as a user or CI would."""
    return subprocess.run(
        [sys.executable, "-m", "reslint", *args], capture_output=True, text=True, cwd=cwd or ROOT, timeout=300
    )


@pytest.fixture
def cli():
    return run_cli


def pytest_addoption(parser):
    parser.addoption(
        "--update-golden", action="store_true", default=False,
        help="tests/test_golden.py: rewrite the expected .out/.diff files next to the fixtures (review the diff)",
    )
