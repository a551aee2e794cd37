"""Register a ZenML stack from `stacks/<name>.yaml`, idempotently.

    python -m stacks.register local            # register (or update) and activate the local stack
    python -m stacks.register local --no-activate

Running it twice changes nothing. A component that exists with another flavor or configuration is an error
rather than a silent overwrite. Users switch stacks with ZenML's own `zenml stack set NAME`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click
import yaml
from pydantic import BaseModel, ConfigDict

STACKS_DIR = Path(__file__).resolve().parent

logger = logging.getLogger(__name__)


class ComponentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    flavor: str
    configuration: dict[str, Any] = {}


class FlavorSpec(BaseModel):
    """A custom flavor shipped in this repository, e.g. `stacks.local_process.LocalProcessStepOperatorFlavor`."""

    model_config = ConfigDict(extra="forbid")

    type: str
    source: str


class StackSpec(BaseModel):
    """A stack file: its name, custom flavors it needs, and per ZenML component type the components to register."""

    model_config = ConfigDict(extra="forbid")

    name: str
    flavors: list[FlavorSpec] = []
    components: dict[str, list[ComponentSpec]]


def load_stack_spec(name_or_path: str) -> StackSpec:
    path = Path(name_or_path)
    if not path.suffix:
        path = STACKS_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        known = sorted(spec.stem for spec in STACKS_DIR.glob("*.yaml"))
        raise click.ClickException(f"No stack file {path}; known stacks: {known}.")
    return StackSpec(**yaml.safe_load(path.read_text()))


def register_stack(spec: StackSpec, activate: bool = True) -> None:
    """Create missing components and the stack; leave matching ones alone."""
    from zenml.client import Client  # deferred: importing ZenML is slow and this module is also read for --help
    from zenml.enums import StackComponentType

    client = Client()
    for flavor in spec.flavors:
        _ensure_flavor(client, StackComponentType(flavor.type), flavor.source)
    components: dict[StackComponentType, list[str]] = {}
    for type_name, specs in spec.components.items():
        component_type = StackComponentType(type_name)
        for component in specs:
            _ensure_component(client, component_type, component)
        components[component_type] = [component.name for component in specs]
    try:
        existing = client.get_stack(spec.name, allow_name_prefix_match=False)
    except KeyError:
        client.create_stack(name=spec.name, components=components)
        logger.info("Registered stack %r", spec.name)
    else:
        current = {kind: sorted(c.name for c in found) for kind, found in existing.components.items()}
        if current != {kind: sorted(names) for kind, names in components.items()}:
            client.update_stack(existing.id, component_updates=components)
            logger.info("Updated stack %r", spec.name)
    if activate:
        client.activate_stack(spec.name)
        logger.info("Active stack: %r", spec.name)


def _ensure_flavor(client: Any, component_type: Any, source: str) -> None:
    """Register a custom flavor from its import path once (`zenml <type> flavor register SOURCE`).

    The source is resolved against the project root, whichever directory `python -m stacks.register` ran from.
    """
    from zenml.stack.flavor import validate_flavor_source
    from zenml.utils import source_utils

    source_utils.set_custom_source_root(str(STACKS_DIR.parent))

    _, flavor = validate_flavor_source(source=source, component_type=component_type)
    try:
        client.get_flavor_by_name_and_type(flavor.name, component_type)
    except KeyError:
        client.create_flavor(source=source, component_type=component_type)
        logger.info("Registered %s flavor %r from %s", component_type.value, flavor.name, source)


def _ensure_component(client: Any, component_type: Any, spec: ComponentSpec) -> None:
    try:
        existing = client.get_stack_component(component_type, spec.name, allow_name_prefix_match=False)
    except KeyError:
        client.create_stack_component(
            name=spec.name, flavor=spec.flavor, component_type=component_type, configuration=spec.configuration
        )
        logger.info("Registered %s %r (%s)", component_type.value, spec.name, spec.flavor)
        return
    mismatched = {key: value for key, value in spec.configuration.items() if existing.configuration.get(key) != value}
    if existing.flavor_name != spec.flavor or mismatched:
        raise click.ClickException(
            f"A {component_type.value} named {spec.name!r} already exists with flavor {existing.flavor_name!r} "
            f"and configuration {existing.configuration}; it differs from the stack file ({spec.flavor!r}, "
            f"{spec.configuration}). Rename or delete it: zenml {component_type.value.replace('_', '-')} delete "
            f"{spec.name}."
        )


@click.command()
@click.argument("stack", default="local")
@click.option("--activate/--no-activate", default=True, show_default=True, help="Make it the active stack.")
def main(stack: str, activate: bool) -> None:
    """Register STACK (a name under stacks/ or a YAML path) with ZenML."""
    register_stack(load_stack_spec(stack), activate=activate)


if __name__ == "__main__":
    main()
