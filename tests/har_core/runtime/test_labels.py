import pytest

from har_core.runtime.labels import DEFAULT_TEMPLATES, HAR_LABELS, build_prompts, label_to_text


def test_har_labels_follow_the_dataset_classlabel_order():
    assert len(HAR_LABELS) == 15
    assert HAR_LABELS[0] == "calling" and HAR_LABELS[9] == "listening_to_music" and HAR_LABELS[-1] == "using_laptop"
    assert list(HAR_LABELS) == sorted(HAR_LABELS)


def test_underscores_become_words_in_prompts():
    assert label_to_text("listening_to_music") == "listening to music"
    prompts = build_prompts(["using_laptop", "running"], DEFAULT_TEMPLATES)
    assert len(prompts) == 2 and len(prompts[0]) == len(DEFAULT_TEMPLATES)
    assert prompts[0][0] == "a photo of a person using laptop."
    assert all("_" not in prompt for per_label in prompts for prompt in per_label)


@pytest.mark.parametrize(
    ("labels", "templates", "message"),
    [
        (["a", "a"], ["{}"], "Duplicated labels"),
        ([], ["{}"], "empty"),
        (["a", " "], ["{}"], "non-empty"),
        (["a"], ["no placeholder"], "placeholder"),
        (["a"], [], "At least one"),
        (["a", " No Action"], ["{}"], "unsure answer is shown as"),
    ],
)
def test_bad_labels_or_templates_are_rejected(labels, templates, message):
    with pytest.raises(ValueError, match=message):
        build_prompts(labels, templates)
