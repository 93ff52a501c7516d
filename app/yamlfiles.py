"""YAML for versioned definition files: safe loading that refuses a repeated key.

PyYAML silently keeps the last of two equal keys; in a checklist or rules file that would
hide a mistake, so a repeated key is an error naming its line.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

DirectorySignature = tuple[tuple[str, int, int], ...]


def directory_signature(directory: Path, suffixes: Iterable[str]) -> DirectorySignature:
    """Name, modification time and size of each file with one of ``suffixes``: what a
    loader keys its cache on, so that a changed, added or removed file is read again.

    The shipped definition and rules files never change while a process runs; the cache
    spares every test (and every app built in one process) re-parsing them.
    """
    wanted = tuple(suffixes)
    entries = []
    for path in sorted(directory.iterdir()):
        if path.suffix in wanted:
            stat = path.stat()
            entries.append((path.name, stat.st_mtime_ns, stat.st_size))
    return tuple(entries)


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses duplicate keys instead of keeping the last one."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping
)


def load_yaml(text: str) -> Any:
    """Parse YAML safely; raises ``yaml.YAMLError`` on a repeated key or bad syntax."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
