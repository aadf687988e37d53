"""The Salesforce connector against the Salesforce sandbox, for the conformance suite.

The harness seeds and inspects the org through the sandbox's back door, never through the connector.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from connectors.salesforce import SalesforceConnector, SalesforceSettings
from syncd.records import Connector, JSONValue
from syncd.sandbox.salesforce import SalesforceSandbox

from .harness import Harness

SEED = {
    "objects": {
        "Account": {
            "fields": {"Ext__c": {"type": "string", "length": 40, "externalId": True, "unique": True}}
        }
    }
}
BUSINESS_FIELDS = ("Ext__c", "Name", "BillingCity", "IsDeleted")


class SalesforceHarness(Harness):
    stream: ClassVar[str] = "Account"
    match_field: ClassVar[str] = "Ext__c"
    plain_field: ClassVar[str] = "BillingCity"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.org = SalesforceSandbox(seed=SEED).start()

    def connector(self, batch_size: int = 500) -> Connector:
        info = self.org.info()
        settings = SalesforceSettings(
            login_url=info["login_url"],
            username=info["username"],
            password=info["password"],
            security_token=info["security_token"],
            ca_file=info["ca_file"],
            objects=(self.stream,),
            batch_size=batch_size,
            backoff_seconds=0,
        )
        return SalesforceConnector("crm", settings, self.workdir)

    def fields_for(self, ident: str, version: int = 0) -> dict[str, JSONValue]:
        return {
            self.match_field: ident,
            "Name": f"Client {ident} v{version}",
            "BillingCity": f"Town {version}",
        }

    def seed(self, count: int) -> list[str]:
        start = len(self.org.records(self.stream, include_deleted=True))
        return [self.org.insert(self.stream, self.fields_for(self.ident(start + i))) for i in range(count)]

    def mutate(self, key: str) -> None:
        record = next(r for r in self.org.records(self.stream) if r["Id"] == key)
        self.org.update(self.stream, key, {"Name": f"{record['Name']} (edited)"})

    def snapshot(self) -> object:
        rows = self.org.records(self.stream, include_deleted=True)
        return sorted((r["Id"], *(r[f] for f in BUSINESS_FIELDS)) for r in rows)

    def cleanup(self) -> None:
        self.org.stop()
