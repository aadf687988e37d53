"""syncd: keeps a CRM, spreadsheets and mailboxes in agreement through mapping files and a journal."""

__version__ = "0.1.0"
