"""Provenance collectors and the reproduction rules on real git repositories, image folders and lock files."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from PIL import Image

from har_core.config import DataConfig, SplitConfig, SyntheticDataConfig
from har_core.data.scan import plan_image_folder
from har_core.data.synthetic import generate_synthetic_images
from har_core.runtime.model_card import HarClipModelCard
from har_core.runtime.provenance import CodeVersion, DataVersion, LockVersion, MachineInfo
from har_core.training.reproduction import (
    ACCURACY_TOLERANCE,
    code_drift,
    compare,
    data_drift,
    environment_drift,
    expected_standard,
    lock_drift,
    refusal,
)
from har_core.training.run_facts import code_version, cpu_description, library_versions, lock_version

LABELS = ("calling", "clapping", "cycling")


def git(repo: Path, *args: str) -> str:
    identity = ("-c", "user.name=t", "-c", "user.email=t@t.invalid")
    return subprocess.run(["git", *identity, "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def repo(tmp_path) -> Path:
    git(tmp_path, "init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "one")
    return tmp_path


def test_a_clean_checkout_records_its_commit_and_a_dirty_one_its_diff(repo):
    clean, diff = code_version(repo)
    assert clean == CodeVersion(commit=git(repo, "rev-parse", "HEAD").strip()) and diff == ""
    (repo / "code.py").write_text("x = 2\n")
    (repo / "new.py").write_text("y = 1\n")
    dirty, diff = code_version(repo)
    assert dirty.dirty and dirty.commit == clean.commit and len(dirty.diff_sha256) == 64
    assert "-x = 1\n+x = 2" in diff and "untracked new.py sha256 " in diff
    (repo / "new.py").write_text("y = 2\n")  # another untracked content is another diff
    assert code_version(repo)[0].diff_sha256 != dirty.diff_sha256
    (repo / "venv").symlink_to(repo / ".git")  # a link to a directory (a linked virtualenv): its target, not read
    assert f"untracked venv symlink {repo / '.git'}" in code_version(repo)[1]
    assert code_version(repo.parent / "nowhere")[0] == CodeVersion()


def test_code_drift_names_the_commit_and_the_git_command(repo):
    recorded, _ = code_version(repo)
    assert code_drift(recorded, recorded) is None
    (repo / "code.py").write_text("x = 3\n")
    git(repo, "commit", "-q", "-am", "two")
    message = code_drift(recorded, code_version(repo)[0])
    assert f"the run used {recorded.commit}" in message and f"`git switch --detach {recorded.commit}`" in message
    (repo / "code.py").write_text("x = 4\n")
    assert "uncommitted changes the run did not have" in code_drift(
        code_version(repo)[0].model_copy(update={"dirty": False, "diff_sha256": None}), code_version(repo)[0]
    )


def test_the_lock_records_its_hash_and_where_the_environment_differs(tmp_path):
    import importlib.metadata

    lock = tmp_path / "locks" / "cpu-dev-cluster.txt"
    lock.parent.mkdir()
    pyyaml = importlib.metadata.version("pyyaml")
    lock.write_text(f"pyyaml=={pyyaml} \\\n    --hash=sha256:00\nclick==0.0.1 \\\n    --hash=sha256:11\n")
    version = lock_version(lock, tmp_path)
    assert version.file == "locks/cpu-dev-cluster.txt" and len(version.sha256) == 64
    assert version.differs == (f"click {importlib.metadata.version('click')} (lock 0.0.1)",)
    assert lock_drift(version.file, version.sha256, tmp_path) is None
    lock.write_text(lock.read_text() + "# edited\n")
    assert "the lock locks/cpu-dev-cluster.txt changed" in lock_drift(version.file, version.sha256, tmp_path)
    assert "is not in this checkout" in lock_drift("locks/gone.txt", version.sha256, tmp_path)


def test_data_drift_names_changed_added_and_removed_files(tmp_path):
    root = generate_synthetic_images(
        tmp_path / "images", LABELS, SyntheticDataConfig(images_per_class=6, image_size=32)
    )
    config = DataConfig(source="folder", root=root, labels=LABELS, split=SplitConfig(train=0.5, val=0.25, test=0.25))
    plan = plan_image_folder(root, config)
    recorded = {
        Path(image.path).relative_to(root).as_posix(): image.sha256
        for images in plan.splits.values()
        for image in images
    }
    version = DataVersion(source="folder", fingerprint="f", images=len(recorded))
    assert data_drift(config, root, recorded, version) is None
    Image.new("RGB", (32, 32), (0, 255, 0)).save(root / "clapping" / "00002.jpg")
    Image.new("RGB", (32, 32), (0, 0, 255)).save(root / "cycling" / "extra.jpg")
    (root / "calling" / "00001.jpg").unlink()
    message = data_drift(config, root, recorded, version)
    assert message == (
        f"the data under {root} differs: 1 changed (clapping/00002.jpg), 1 added (cycling/extra.jpg), "
        "1 removed (calling/00001.jpg)"
    )
    (root / "cycling" / "00003.jpg").write_bytes(b"not an image")
    assert "no longer passes its check" in data_drift(config, root, recorded, version)


def test_the_refusal_is_one_paragraph_naming_each_difference():
    text = refusal("run-1", ["the code is at commit b, the run used a (`git switch --detach a`)", "the lock changed"])
    assert "\n" not in text and text.startswith("Not reproducing run 'run-1': the code is at commit b")
    assert "--allow-drift" in text and "the lock changed" in text


def machine(**changes) -> MachineInfo:
    base = MachineInfo(
        cpu_model="CPU X", cpu_flags="avx2 fma", cpu_count=2, torch_threads=2, platform="linux", device="cpu"
    )
    return base.model_copy(update=changes)


def test_bit_for_bit_is_expected_only_on_the_same_cpu_threads_and_one_cpu_process():
    assert expected_standard(machine(), machine())[0] is True
    for other in (
        machine(torch_threads=4),
        machine(cpu_flags="avx2"),
        machine(world_size=2, strategy="ddp"),
        machine(device="cuda (H200)"),
    ):
        exact, why = expected_standard(machine(), other)
        assert exact is False and f"within {ACCURACY_TOLERANCE}" in why


def _site_copy(target: Path, bump: str | None = None) -> list[str]:
    """This environment's installed-package metadata copied into `target` (a site-packages folder as importlib sees
    it), with the version of `bump` raised by one patch release: a virtualenv with one package changed."""
    import importlib.metadata
    import re

    for dist in importlib.metadata.distributions():
        name, version = dist.metadata["Name"], dist.version
        if bump and re.sub(r"[-_.]+", "-", name).lower() == bump:
            version = f"{version}.1"
        info = target / f"{re.sub(r'[-.]+', '_', name)}-{version}.dist-info"
        info.mkdir(parents=True, exist_ok=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return [str(target)]


def test_a_changed_package_in_the_environment_is_named_and_lifts_the_bit_for_bit_standard(tmp_path):
    from tests.conftest import CPU_LOCK, PROJECT_ROOT

    recorded = lock_version(PROJECT_ROOT / CPU_LOCK, PROJECT_ROOT, _site_copy(tmp_path / "run"))
    same = lock_version(PROJECT_ROOT / CPU_LOCK, PROJECT_ROOT, _site_copy(tmp_path / "same"))
    assert environment_drift(recorded.differs, same.differs) is None
    changed = lock_version(PROJECT_ROOT / CPU_LOCK, PROJECT_ROOT, _site_copy(tmp_path / "now", bump="tqdm"))
    message = environment_drift(recorded.differs, changed.differs)
    tqdm = next(entry for entry in changed.differs if entry.startswith("tqdm "))
    assert message.startswith("the environment is not the run's") and f"installed now {tqdm}" in message
    assert expected_standard(machine(), machine(), (recorded, same))[0] is True
    exact, why = expected_standard(machine(), machine(), (recorded, changed))
    assert exact is False and tqdm in why and f"within {ACCURACY_TOLERANCE}" in why
    other_lock = LockVersion(file=recorded.file, sha256="0" * 64, differs=recorded.differs)
    assert expected_standard(machine(), machine(), (recorded, other_lock))[0] is False


def test_metrics_compare_exactly_or_within_the_stated_tolerance():
    original = {"epoch 1 val_loss": 1.0, "test accuracy": 0.5}
    exact = compare(original, dict(original), True, (True, "same machine"))
    assert exact.reproduced and exact.lines()[-1] == "REPRODUCED bit for bit."
    nudged = {"epoch 1 val_loss": 1.0 + 1e-9, "test accuracy": 0.5}
    assert compare(original, nudged, True, (True, "")).mismatched == ["epoch 1 val_loss"]
    assert not compare(original, original, False, (True, "")).reproduced  # other weights fail bit for bit
    close = {"epoch 1 val_loss": 1.04, "test accuracy": 0.51}
    assert compare(original, close, False, (False, "ddp")).reproduced
    far = {"epoch 1 val_loss": 1.2, "test accuracy": 0.6}
    assert compare(original, far, False, (False, "ddp")).mismatched == ["epoch 1 val_loss", "test accuracy"]


def test_machine_and_library_facts_are_this_machines():
    model, flags = cpu_description()
    assert model and (flags or not Path("/proc/cpuinfo").exists())
    versions = library_versions()
    assert versions["torch"].startswith("2.") and {"python", "transformers", "onnxruntime", "zenml"} <= set(versions)


def test_a_card_without_provenance_still_loads(tmp_path, tiny_model):
    tiny_model.model_card().save(tmp_path)
    assert HarClipModelCard.load(tmp_path).provenance is None
