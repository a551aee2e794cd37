"""A pydantic model kept as one JSON file in a directory: the model card, an export manifest, a training job.

One place for what each of them needs: indented JSON on save, and on load an error that names the directory and
the file when it is missing, or the file and pydantic's reasons when it does not validate.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Self

from pydantic import BaseModel, ValidationError


class JsonFileModel(BaseModel):
    """Saved as `<directory>/<file_name>`; subclasses name the file, the directory kind and the error type."""

    file_name: ClassVar[str]
    directory_kind: ClassVar[str]  # "a har-clip model directory": what a directory holding the file is
    invalid_error: ClassVar[type[Exception]] = ValueError

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / self.file_name
        path.write_text(self.model_dump_json(indent=2))
        return path

    @classmethod
    def load(cls, directory: str | Path) -> Self:
        """Read `<directory>/<file_name>`; a missing directory or file, or an invalid one, is an error naming it."""
        directory = Path(directory)
        if not directory.is_dir():
            raise FileNotFoundError(f"{str(directory)!r} does not exist; expected {cls.directory_kind}.")
        path = directory / cls.file_name
        if not path.is_file():
            raise FileNotFoundError(f"{str(directory)!r} is not {cls.directory_kind}: {cls.file_name} is missing.")
        try:
            return cls.model_validate_json(path.read_text())
        except ValidationError as error:
            raise cls.invalid_error(f"{path} is not a valid {cls.file_name}: {error}") from error
