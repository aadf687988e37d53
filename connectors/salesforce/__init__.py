"""Salesforce sObjects as syncd streams (entry point `salesforce = "connectors.salesforce:SalesforceConnector"`)."""

from connectors.salesforce.connector import SalesforceConnector
from connectors.salesforce.settings import SalesforceSettings

__all__ = ["SalesforceConnector", "SalesforceSettings"]
