"""Batch inference over a real folder (images in subfolders, a video, broken files) with the tiny ONNX export."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from har_core.config import InferenceConfig, InferenceInputConfig
from har_core.inference.batch import UnreadableFileError, score_files
from har_core.inference.inputs import InputError, LocalFolder, list_inputs
from har_core.runtime.labels import HAR_LABELS
from har_core.runtime.predictor import Predictor
from har_core.runtime.settings import VideoConfig
from tests.videos import encode_video, two_label_frames


@pytest.fixture(scope="module")
def predictor(onnx_export_dir) -> Predictor:
    return Predictor.from_export(onnx_export_dir, device="cpu")


@pytest.fixture
def folder(tmp_path, synthetic_root, video_images) -> Path:
    """10 images in two subfolders, a two-label video, a corrupt JPEG, a text file and a hidden file."""
    root = tmp_path / "incoming"
    for label in HAR_LABELS[:2]:
        (root / label).mkdir(parents=True)
        for path in sorted((synthetic_root / label).glob("*.jpg"))[:5]:
            shutil.copy(path, root / label / path.name)
    frames = two_label_frames(*(known.frame() for known in video_images), 10, 4.0, 2.0)
    (root / "clips").mkdir()
    (root / "clips" / "two.avi").write_bytes(encode_video(frames, 10, "mjpeg"))
    (root / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (root / "notes.txt").write_text("not scored")
    (root / ".hidden.jpg").write_bytes(b"ignored")
    return root


def config(**overrides) -> InferenceConfig:
    settings = {"input": InferenceInputConfig(path="unused"), "batch_size": 4, "top_k": 3, **overrides}
    return InferenceConfig(**settings)


def test_a_folder_becomes_a_table_of_images_and_video_frames_with_unreadable_files_listed(
    predictor, folder, video_images
):
    files, other = list_inputs(LocalFolder(folder), max_files=100)
    assert [item.name for item in files][:2] == ["broken.jpg", "calling/00000.jpg"] and other == 1
    parts, summary = score_files(predictor, LocalFolder(folder), files, config(), "7", other)
    table = parts.to_frame()

    images = table[table["kind"] == "image"]
    assert list(table.columns) == [
        "file", "kind", "frame", "time_s", "label_1", "score_1", "label_2", "score_2", "label_3", "score_3",
        "abstained", "ood_score", "model_version", "format",
    ]  # fmt: skip
    paths = sorted(folder.glob("*/*.jpg"))
    assert list(images["file"]) == [path.relative_to(folder).as_posix() for path in paths]
    expected = predictor.classify([Image.open(path) for path in paths], top_k=3)
    assert list(images["label_1"]) == [answer.predictions[0].label for answer in expected]
    np.testing.assert_allclose(images["score_3"], [answer.predictions[2].score for answer in expected], atol=1e-6)
    assert list(images["abstained"]) == [answer.abstained for answer in expected]
    np.testing.assert_allclose(images["ood_score"], [answer.verdict.ood_score for answer in expected], rtol=1e-6)
    assert images["frame"].isna().all() and images["time_s"].isna().all()

    video = table[table["kind"] == "video"]
    assert list(video["frame"]) == list(range(8)) and list(video["time_s"]) == pytest.approx(np.arange(8) * 0.5)
    first, second = (known.label for known in video_images)
    assert list(video["label_1"]) == [first] * 4 + [second] * 4
    assert set(table["model_version"]) == {"7"} and set(table["format"]) == {"onnx"}
    threshold = predictor.calibration.abstain_below  # every row, image or frame, by its own top-1
    assert list(table["abstained"]) == list(table["score_1"] < threshold) and table["ood_score"].notna().all()

    assert (summary.images, summary.videos, summary.video_frames, summary.files) == (10, 1, 8, 12)
    assert [item.file for item in summary.unreadable] == ["broken.jpg"]
    assert "not a readable image" in summary.unreadable[0].error
    assert sum(summary.label_counts.values()) == 18 and summary.images_per_s > 0
    assert summary.abstained == table["abstained"].sum()
    assert list(summary.label_counts.values()) == sorted(summary.label_counts.values(), reverse=True)


def test_on_error_fail_stops_at_the_first_unreadable_file(predictor, folder):
    files, _ = list_inputs(LocalFolder(folder), max_files=100)
    with pytest.raises(UnreadableFileError, match=r"broken.jpg: .*on_error: fail"):
        score_files(predictor, LocalFolder(folder), files, config(on_error="fail"), "7")


def test_files_over_their_size_limits_are_unreadable_not_read(predictor, folder):
    files, _ = list_inputs(LocalFolder(folder), max_files=100)
    limits = config(input=InferenceInputConfig(path="unused", max_image_bytes=1024), video=VideoConfig(max_bytes=1024))
    parts, summary = score_files(predictor, LocalFolder(folder), files, limits, "7")
    table = parts.to_frame()
    reasons = {item.file: item.error for item in summary.unreadable}
    assert "over input.max_image_bytes 1,024" in reasons["calling/00000.jpg"]
    assert "over video.max_bytes 1,024" in reasons["clips/two.avi"]
    assert len(table) == 0 and summary.images_per_s == 0


def test_inputs_are_refused_when_empty_missing_or_too_many(folder, tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        list_inputs(LocalFolder(tmp_path / "absent"), max_files=10)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.md").write_text("x")
    with pytest.raises(InputError, match=r"No image or video in folder .*\(1 other files\)"):
        list_inputs(LocalFolder(tmp_path / "empty"), max_files=10)
    with pytest.raises(InputError, match="over input.max_files 5"):
        list_inputs(LocalFolder(folder), max_files=5)


def test_the_input_config_names_what_each_source_needs():
    with pytest.raises(ValueError, match="input.path is required with input.source: folder"):
        InferenceInputConfig(source="folder")
    with pytest.raises(ValueError, match="input.path is not used with input.source: dvc"):
        InferenceInputConfig(source="dvc", path="x")


def test_links_are_followed_inside_the_folder_only_and_what_is_not_read_is_listed(predictor, folder, tmp_path):
    """A symlinked subfolder inside the input is read (it used to be skipped without a word); a link out of it, a
    link loop and an unreadable folder are listed in the summary, and the run goes on."""
    shared = folder / "calling"
    (folder / "linked").symlink_to(shared, target_is_directory=True)  # inside: followed
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.copy(next(shared.glob("*.jpg")), outside / "secret.jpg")
    (folder / "escape").symlink_to(outside, target_is_directory=True)
    (folder / "secret.jpg").symlink_to(outside / "secret.jpg")
    (folder / "loop").symlink_to(folder, target_is_directory=True)  # back up: listed, not followed
    (folder / "locked").mkdir()
    source = LocalFolder(folder)
    real_scandir = __import__("os").scandir

    def scandir(path):  # root reads any folder whatever its mode: refuse this one as the kernel would a user
        if Path(path) == folder / "locked":
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("har_core.inference.inputs.os.scandir", scandir)
        files, _ = list_inputs(source, max_files=100)
    names = [item.name for item in files]
    assert sum(name.startswith("linked/") for name in names) == 5  # the symlinked copy of `calling`
    assert not any(name.startswith(("escape/", "loop/")) or name == "secret.jpg" for name in names)
    assert dict(source.skipped) == {
        "escape": f"symbolic link to {outside.resolve()}, outside the input folder",
        "secret.jpg": f"symbolic link to {(outside / 'secret.jpg').resolve()}, outside the input folder",
        "locked": "folder not readable (Permission denied)",
        "loop": "symbolic link back to a folder above it (a loop)",
    }
    _, summary = score_files(predictor, source, files, config(), "7")
    listed = {item.file: item.error for item in summary.unreadable}
    assert {"escape", "secret.jpg", "locked", "loop"} <= set(listed) and summary.images >= 15


def test_a_video_with_latin1_tags_is_scored_and_a_broken_one_is_a_listed_row(predictor, folder):
    from tests.hostile_media import hls_playlist, tagged_video

    tagged_video(folder / "clips" / "camera.mkv", "matroska", b"Caf\xe9 \xe0 la plage")
    hls_playlist(folder / "clips" / "playlist.mp4")
    files, _ = list_inputs(LocalFolder(folder), max_files=100)
    parts, summary = score_files(predictor, LocalFolder(folder), files, config(on_error="skip"), "7")
    assert "clips/camera.mkv" in set(parts.to_frame()["file"])  # used to abort the whole run with UnicodeDecodeError
    assert any(item.file == "clips/playlist.mp4" for item in summary.unreadable)


def test_rows_go_to_bounded_parts_and_the_csv_streams_the_same_table(predictor, folder, tmp_path):
    """Memory holds one chunk of rows, whatever the number of files and frames (it held the whole table)."""
    import pandas as pd

    from har_core.inference.table import PredictionsWriter

    files, _ = list_inputs(LocalFolder(folder), max_files=100)
    whole, _ = score_files(predictor, LocalFolder(folder), files, config(), "7", output_dir=tmp_path / "whole")
    chunked_writer = PredictionsWriter(tmp_path / "chunked", 3, "7", "onnx", chunk_rows=4)
    held = []
    real_flush = chunked_writer._flush

    def flush():
        held.append(len(chunked_writer._pending))
        real_flush()

    chunked_writer._flush = flush
    for _, row in whole.to_frame().iterrows():
        probabilities = np.array([row["score_1"], row["score_2"], row["score_3"]])
        names = [row["label_1"], row["label_2"], row["label_3"]]
        frame = None if pd.isna(row["frame"]) else int(row["frame"])
        time_s = None if pd.isna(row["time_s"]) else float(row["time_s"])
        chunked_writer.add(
            row["file"], row["kind"], names, probabilities, frame, time_s, row["abstained"], row["ood_score"]
        )
    chunked = chunked_writer.close()
    assert chunked.rows == whole.rows == 18 and len(chunked.parts) == 5 and max(held) <= 4
    pd.testing.assert_frame_equal(chunked.to_frame(), whole.to_frame())
    csv = chunked.write_csv(tmp_path / "predictions.csv")
    assert pd.read_csv(csv)["file"].tolist() == whole.to_frame()["file"].tolist()
    assert pd.read_csv(csv).columns.tolist() == list(whole.columns)


def test_an_image_the_model_cannot_name_is_an_abstained_row_and_old_exports_abstain_never(
    predictor, synthetic_root, tmp_path
):
    """The table says "no action" where the calibration does; an export made before calibration still scores, with
    nothing abstained and no out-of-distribution score."""
    from tests.har_core.runtime.test_video import uncalibrated_copy

    paths = sorted(synthetic_root.glob("*/*.jpg"))
    answers = predictor.classify([Image.open(path) for path in paths], top_k=1)
    unsure = [path for path, answer in zip(paths, answers, strict=True) if answer.abstained][:2]
    sure = [path for path, answer in zip(paths, answers, strict=True) if not answer.abstained][:2]
    assert len(unsure) == 2, "the session's fitted calibration abstains on some synthetic images"
    root = tmp_path / "mixed"
    root.mkdir()
    for index, path in enumerate(unsure + sure):
        shutil.copy(path, root / f"{index}.jpg")
    files, _ = list_inputs(LocalFolder(root), max_files=10)
    parts, summary = score_files(predictor, LocalFolder(root), files, config(), "7")
    assert parts.to_frame()["abstained"].tolist() == [True, True, False, False] and summary.abstained == 2

    old = uncalibrated_copy(predictor.directory, tmp_path / "old")
    parts, summary = score_files(old, LocalFolder(root), files, config(), "7")
    table = parts.to_frame()
    assert not table["abstained"].any() and table["ood_score"].isna().all() and summary.abstained == 0
