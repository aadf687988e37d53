"""mappings/order_confirmations.yaml and monthly_inventory.yaml: mail that Salesforce changes cause."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from .conftest import NOW, Stack, account, product


def test_an_activated_order_sends_one_confirmation_to_the_clients_contact(stack: Stack) -> None:
    account_id = account(stack, "ACC-1", "Northwind")
    order = stack.org.insert(
        "Order", {"AccountId": account_id, "EffectiveDate": "2026-11-21", "PO_Number__c": "PO-1"}
    )
    stack.org.insert(  # a draft order: no confirmation
        "Order", {"AccountId": account_id, "EffectiveDate": "2026-11-21", "PO_Number__c": "PO-2"}
    )
    stack.write("order_confirmations")
    stack.run()
    assert stack.sent() == []
    stack.org.update("Order", order, {"Status": "Activated"})
    stack.run()
    stack.org.update("Order", order, {"Description": "changed after activation"})
    stack.run()
    [sent] = stack.sent()
    number = next(o["OrderNumber"] for o in stack.org.records("Order") if o["Id"] == order)
    assert str(sent["To"]) == "orders@northwind.example"
    assert str(sent["Subject"]) == f"Order {number} confirmed (your PO PO-1)"


def test_each_client_gets_its_products_and_stock_once_a_month_with_a_csv(stack: Stack) -> None:
    northwind, fabrikam = account(stack, "ACC-1", "Northwind"), account(stack, "ACC-2", "Fabrikam")
    product(stack, "P-1", "Bolt", on_hand=7, Client_Account__c=northwind)
    product(stack, "P-2", "Nut", on_hand=50, Client_Account__c=northwind)
    product(stack, "P-3", "Gear", on_hand=3, Client_Account__c=fabrikam)
    product(stack, "P-4", "Our own stock", on_hand=1)
    stack.write("monthly_inventory")
    stack.run(now=NOW)
    stack.run(now=NOW + timedelta(days=3))
    by_to = {str(m["To"]): m for m in stack.sent()}
    assert sorted(by_to) == ["orders@fabrikam.example", "orders@northwind.example"]
    report = by_to["orders@northwind.example"]
    assert str(report["Subject"]) == "Northwind: your monthly stock report"
    [attachment] = list(report.iter_attachments())
    assert attachment.get_filename() == "stock.csv"
    rows = list(csv.reader(io.StringIO(attachment.get_content())))
    assert rows == [["ProductCode", "Name", "QuantityOnHand__c"], ["P-1", "Bolt", "7"], ["P-2", "Nut", "50"]]
    stack.run(now=NOW + timedelta(days=31))
    assert len(stack.sent()) == 4
