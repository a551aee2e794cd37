"""How the suite is shared between pytest-xdist workers (`make test` runs `-n 2 --dist loadgroup`).

Each worker is its own pytest session with its own ZenML store, so a session fixture used on two workers is built
twice. The groups keep each expensive thing on one worker and keep what must not overlap in one queue:

- `podman`: every `container` test (the clean-machine install, the Bento image and its container server): one
  podman build at a time.
- `torchrun`: every `torchrun` test: their process groups, ports and kill checks run one at a time.
- `bento-serve`: every test of the session's `bentoml serve` (`server` fixture in tests/bento/conftest.py).
- `tiny-training-run`: every module that reads the session's one tiny training run.
- otherwise the test's module, so a module's fixtures are built once.

Groups holding slow tests are queued first (longest work first balances the two workers); within each kind the
order stays pytest-randomly's.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

# Session fixtures that own a whole group: a module using one of them goes where that fixture lives.
SHARED_FIXTURE_GROUPS = {"tiny_training_run": "tiny-training-run", "server": "bento-serve"}


def _own_group(item: pytest.Item) -> str | None:
    """A group the item itself must join, whatever its module does."""
    if item.get_closest_marker("container"):
        return "podman"
    if item.get_closest_marker("torchrun"):
        return "torchrun"
    return None


def _module_group(items: list[pytest.Item]) -> str:
    for fixture, group in SHARED_FIXTURE_GROUPS.items():
        if any(fixture in getattr(item, "fixturenames", ()) and _own_group(item) is None for item in items):
            return group
    return items[0].nodeid.split("::", 1)[0]


def assign_groups(items: list[pytest.Item]) -> None:
    """Mark every item with its xdist group (before xdist's own hook reads the marks)."""
    modules: dict[str, list[pytest.Item]] = defaultdict(list)
    for item in items:
        modules[item.nodeid.split("::", 1)[0]].append(item)
    for module_items in modules.values():
        module_group = _module_group(module_items)
        for item in module_items:
            item.add_marker(pytest.mark.xdist_group(_own_group(item) or module_group))


def group_of(item: pytest.Item) -> str:
    return item.get_closest_marker("xdist_group").args[0]


def queue_slow_groups_first(items: list[pytest.Item]) -> None:
    """Groups that hold slow tests first (after pytest's own fixture ordering; stable: keeps the random order)."""
    slow_groups = {group_of(item) for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: group_of(item) not in slow_groups)


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]):
    """Marks before every plain hook (xdist's reads them); the queue order after them all (pytest's fixture order).
    Without xdist (`-p no:xdist`) there is no group to mark and nothing to share."""
    if not config.pluginmanager.hasplugin("xdist"):
        return (yield)
    assign_groups(items)
    result = yield
    queue_slow_groups_first(items)
    return result
