"""Register a ZenML stack from `stacks/<name>.yaml`, idempotently.

    python -m stacks.register local            # register (or update) and activate the local stack
    python -m stacks.register local --no-activate

Running it twice changes nothing. A component that exists with another flavor or configuration is an error
rather than a silent overwrite. Users switch stacks with ZenML's own `zenml stack set NAME`.

No credential lives in a stack file. Components name secrets as ZenML secret references (`{{wandb.api_key}}`)
or link a service connector (`connector:`); the file's `secrets:` section says how to create each secret from
environment variables. Values may use `${VAR}` / `${VAR:-default}`, filled from the environment when registering
(machine-specific values such as an endpoint URL are then updated, not refused, on the next registration).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import click
import yaml
from pydantic import BaseModel, ConfigDict

STACKS_DIR = Path(__file__).resolve().parent

logger = logging.getLogger(__name__)


_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
WANDB_PLACEHOLDER_KEY = "offline-placeholder"


class ComponentSpec(BaseModel):
    """One stack component: flavor, configuration (secrets only as `{{secret.key}}` references), run-time
    environment variables, and optionally the service connector that gives it credentials."""

    model_config = ConfigDict(extra="forbid")

    name: str
    flavor: str
    configuration: dict[str, Any] = {}
    environment: dict[str, str] = {}
    connector: str | None = None


class FlavorSpec(BaseModel):
    """A custom flavor shipped in this repository, e.g. `stacks.local_process.LocalProcessStepOperatorFlavor`."""

    model_config = ConfigDict(extra="forbid")

    type: str
    source: str


class SecretSpec(BaseModel):
    """A ZenML secret to create at registration; values are `${ENV_VAR:-placeholder}` expressions."""

    model_config = ConfigDict(extra="forbid")

    name: str
    values: dict[str, str]


class StackSpec(BaseModel):
    """A stack file: its name, the custom flavors it needs, the secrets its components reference, and per ZenML
    component type the components to register."""

    model_config = ConfigDict(extra="forbid")

    name: str
    flavors: list[FlavorSpec] = []
    secrets: list[SecretSpec] = []
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
    for secret in spec.secrets:
        ensure_secret(client, secret)
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


def expansion_context() -> dict[str, str]:
    """The environment plus derived defaults: W&B runs offline unless a key is given (`WANDB_API_KEY`)."""
    context = dict(os.environ)
    context.setdefault("WANDB_MODE", "online" if os.environ.get("WANDB_API_KEY") else "offline")
    return context


def expand(value: Any, context: dict[str, str]) -> Any:
    """Fill `${VAR}` / `${VAR:-default}` in strings (recursively in lists and dicts) from `context`."""
    if isinstance(value, dict):
        return {key: expand(item, context) for key, item in value.items()}
    if isinstance(value, list):
        return [expand(item, context) for item in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        if context.get(name):
            return context[name]
        if default is None:
            raise click.ClickException(f"Environment variable {name} is not set; the stack file needs it ({value}).")
        return default

    return _VARIABLE.sub(replace, value)


def ensure_secret(client: Any, spec: SecretSpec) -> None:
    """Create the secret from the environment (or its placeholders); later, only values whose environment
    variable is set are updated, so a real key stored earlier is never replaced by a placeholder."""
    context = expansion_context()
    values = {key: expand(value, context) for key, value in spec.values.items()}
    try:
        existing = client.get_secret_by_name_and_private_status(spec.name)
    except KeyError:
        client.create_secret(name=spec.name, values=values)
        logger.info("Created secret %r (keys %s)", spec.name, sorted(values))
        return
    explicit = {
        key: values[key]
        for key, expression in spec.values.items()
        if any(context.get(name) for name, _ in _VARIABLE.findall(expression))
    }
    missing = {key: values[key] for key in values if key not in existing.secret_values}
    changed = {key: value for key, value in {**missing, **explicit}.items() if existing.secret_values.get(key) != value}
    if changed:
        client.update_secret(existing.id, add_or_update_values=changed)
        logger.info("Updated secret %r (keys %s)", spec.name, sorted(changed))


def _ensure_component(client: Any, component_type: Any, spec: ComponentSpec) -> None:
    context = expansion_context()
    configuration = expand(spec.configuration, context)
    environment = expand(spec.environment, context)
    connector_id = _connector_id(client, spec)
    try:
        existing = client.get_stack_component(component_type, spec.name, allow_name_prefix_match=False)
    except KeyError:
        client.create_stack_component(
            name=spec.name,
            flavor=spec.flavor,
            component_type=component_type,
            configuration=configuration,
            environment=environment,
        )
        if connector_id is not None:
            client.update_stack_component(spec.name, component_type, connector_id=connector_id)
        logger.info("Registered %s %r (%s)", component_type.value, spec.name, spec.flavor)
        return
    machine_specific = {key for key, value in spec.configuration.items() if _VARIABLE.search(str(value))}
    mismatched = {key: value for key, value in configuration.items() if existing.configuration.get(key) != value}
    if existing.flavor_name == spec.flavor and set(mismatched) <= machine_specific:
        if mismatched or existing.environment != environment:
            client.update_stack_component(
                spec.name, component_type, configuration=mismatched or None, environment=environment
            )
            logger.info("Updated %s %r from the environment", component_type.value, spec.name)
        if connector_id is not None and getattr(existing.connector, "id", None) != connector_id:
            client.update_stack_component(spec.name, component_type, connector_id=connector_id)
        return
    if existing.flavor_name != spec.flavor or mismatched:
        raise click.ClickException(
            f"A {component_type.value} named {spec.name!r} already exists with flavor {existing.flavor_name!r} "
            f"and configuration {existing.configuration}; it differs from the stack file ({spec.flavor!r}, "
            f"{spec.configuration}). Rename or delete it: zenml {component_type.value.replace('_', '-')} delete "
            f"{spec.name}."
        )


def _connector_id(client: Any, spec: ComponentSpec) -> Any:
    """The id of the component's service connector, or None (with a note) while it is not registered yet."""
    if spec.connector is None:
        return None
    try:
        return client.get_service_connector(spec.connector, allow_name_prefix_match=False).id
    except KeyError:
        logger.warning(
            "Service connector %r for %r is not registered; the component is registered without credentials. "
            "Register it (zenml service-connector register %s --type ...) and run this again to link it.",
            spec.connector,
            spec.name,
            spec.connector,
        )
        return None


@click.command()
@click.argument("stack", default="local")
@click.option("--activate/--no-activate", default=True, show_default=True, help="Make it the active stack.")
def main(stack: str, activate: bool) -> None:
    """Register STACK (a name under stacks/ or a YAML path) with ZenML."""
    register_stack(load_stack_spec(stack), activate=activate)


if __name__ == "__main__":
    main()
