"""CSV and XLSX files as syncd tables (entry point `files = "connectors.files:FilesConnector"`)."""

from connectors.files.connector import FilesConnector
from connectors.files.settings import FilesSettings

__all__ = ["FilesConnector", "FilesSettings"]
