"""Google Sheets worksheets as syncd tables (entry point `sheets = "connectors.sheets:SheetsConnector"`)."""

from connectors.sheets.connector import SheetsConnector
from connectors.sheets.settings import SheetsSettings

__all__ = ["SheetsConnector", "SheetsSettings"]
