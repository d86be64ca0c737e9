"""Binder launches what binder/ says: the same pins as requirements.txt, a supported Python, a strict postBuild."""

import os
import re
import stat
from pathlib import Path

import pytest
import repo_paths
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = repo_paths.ROOT
BINDER = ROOT / "binder"

# Maintainer tools that requirements.txt pins but Binder leaves out on purpose, with the reason.
NOT_ON_BINDER = {
    "playwright": "drives a local Chromium for the browser tests; Binder has no browser to drive",
    "pre-commit": "git hooks for contributors, not used inside a Binder session",
    **{name: "builds the static book (book/build.py); a Binder session runs the notebooks themselves"
       for name in ("sphinx", "myst-nb", "sphinx-book-theme", "sphinx-mathjax-offline", "sphinxcontrib-mermaid")},
}


def parse_requirements(path: Path) -> tuple[dict[str, str], list[str]]:
    """Pinned packages {canonical name: version} and the option lines (those starting with '-')."""
    pins, options = {}, []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            options.append(line)
            continue
        req = Requirement(line)
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"{path.name}: {line!r} is not pinned with =="
        name = canonicalize_name(req.name)
        assert name not in pins, f"{path.name}: {req.name} is listed twice"
        pins[name] = specs[0].version
    return pins, options


def without_local_version(version: str) -> str:
    return version.split("+", 1)[0]


def test_binder_pins_match_requirements():
    top, _ = parse_requirements(ROOT / "requirements.txt")
    binder, _ = parse_requirements(BINDER / "requirements.txt")
    problems = []
    for name, version in binder.items():
        if name not in top:
            problems.append(f"{name}=={version} is pinned in binder/requirements.txt but not in requirements.txt")
        elif name == "torch":
            if without_local_version(version) != top[name]:
                problems.append(f"torch: binder has {version}, requirements.txt has {top[name]}")
        elif version != top[name]:
            problems.append(f"{name}: binder has {version}, requirements.txt has {top[name]}")
    for name, version in top.items():
        if name not in binder and name not in NOT_ON_BINDER:
            problems.append(f"{name}=={version} is pinned in requirements.txt but missing from binder/requirements.txt")
    assert not problems, "binder/requirements.txt and requirements.txt disagree:\n" + "\n".join(problems)


def test_binder_installs_the_cpu_build_of_torch():
    binder, options = parse_requirements(BINDER / "requirements.txt")
    torch = binder.get("torch", "")
    assert torch.endswith("+cpu"), f"torch should be the +cpu build on Binder, got {torch!r}"
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in options, options


def test_binder_requirements_have_no_local_references():
    # With a local reference Binder must copy the whole repository before this layer, so it is
    # rebuilt (torch and all) on every commit. postBuild installs the package instead.
    _, options = parse_requirements(BINDER / "requirements.txt")
    local = [o for o in options if re.match(r"-e\b|--editable\b|-r\b|-c\b", o)]
    assert not local, f"binder/requirements.txt must not reference local files: {local}"
    text = (BINDER / "requirements.txt").read_text(encoding="utf-8")
    assert not re.search(r"^\s*(\.|/|file:)", text, flags=re.M), "a local path in binder/requirements.txt"


def test_binder_runtime_is_a_supported_python():
    """Binder's Python is one that pyproject.toml declares (3.11-3.13) and CI tests."""
    from packaging.specifiers import SpecifierSet

    runtime = (BINDER / "runtime.txt").read_text(encoding="utf-8").strip()
    assert re.fullmatch(r"python-3\.\d+", runtime), f"runtime.txt: expected python-3.X, got {runtime!r}"
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    spec = SpecifierSet(re.search(r'requires-python = "([^"]+)"', pyproject).group(1))
    assert runtime.removeprefix("python-") + ".0" in spec, f"{runtime} is outside requires-python {spec}"
    for version in ("3.11", "3.12", "3.13"):
        assert version + ".0" in spec, f"requires-python {spec} leaves out Python {version}"


def test_binder_postbuild_is_strict_and_installs_the_package():
    post = BINDER / "postBuild"
    text = post.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0].startswith("#!") and "bash" in lines[0], f"postBuild needs a bash shebang, has {lines[0]!r}"
    code = [ln.strip() for ln in lines[1:] if ln.strip() and not ln.strip().startswith("#")]
    assert code[0] == "set -euo pipefail", f"postBuild must start with 'set -euo pipefail', starts with {code[0]!r}"
    assert re.search(r"pip install .*--no-deps.*-e \.", text), "postBuild must pip install --no-deps -e ."
    if os.name == "posix":
        assert post.stat().st_mode & stat.S_IXUSR, "binder/postBuild must be executable (chmod +x, git add --chmod=+x)"


@pytest.mark.parametrize("name", sorted(NOT_ON_BINDER))
def test_binder_exclusions_are_real_packages_of_requirements(name):
    # An exclusion for a package requirements.txt no longer pins is stale: drop it from NOT_ON_BINDER.
    top, _ = parse_requirements(ROOT / "requirements.txt")
    binder, _ = parse_requirements(BINDER / "requirements.txt")
    assert name in top, f"{name} is no longer pinned in requirements.txt: drop it from NOT_ON_BINDER"
    assert name not in binder, f"{name} is pinned in binder/requirements.txt although NOT_ON_BINDER leaves it out"
