"""mappings/orders.yaml, order_lines.yaml, order_status.yaml: the Orders sheet -> Salesforce Order and
OrderItem, account by number and product by code; order number and status back into the sheet."""

from __future__ import annotations

from .conftest import Stack, account, product

ORDER = ["PO-1", "ACC-1", "Wholesale", "21/11/2026", "Restock"]
LINES = [["PO-1/1", "PO-1", "P-1", 12, 4.5], ["PO-1/2", "PO-1", "P-2", 3, 10]]
MAPPINGS = ("clients", "orders", "order_lines", "order_status")


def test_an_order_row_and_its_lines_become_an_order_with_products(stack: Stack) -> None:
    account_id = account(stack, "ACC-1", "Northwind")
    p1, p2 = product(stack, "P-1", "Bolt"), product(stack, "P-2", "Nut")
    stack.write(*MAPPINGS, rows={"Orders": [ORDER], "Lines": LINES})
    stack.run()
    [order] = stack.org.records("Order")
    assert (order["PO_Number__c"], order["AccountId"], order["EffectiveDate"], order["Status"]) == (
        "PO-1", account_id, "2026-11-21", "Draft"
    )  # fmt: skip
    items = sorted(stack.org.records("OrderItem"), key=lambda i: str(i["Line_Key__c"]))
    assert [(i["OrderId"], i["Product2Id"], i["Quantity"], i["UnitPrice"]) for i in items] == [
        (order["Id"], p1, 12, 4.5), (order["Id"], p2, 3, 10)
    ]  # fmt: skip


def test_salesforce_order_number_and_status_flow_back_into_the_sheet(stack: Stack) -> None:
    account(stack, "ACC-1", "Northwind")
    product(stack, "P-1", "Bolt")
    stack.write(*MAPPINGS, rows={"Orders": [ORDER]})
    stack.run()
    [order] = stack.org.records("Order")
    [row] = stack.book("orders_sheet", "Orders")
    assert (row["Order Number"], row["SF Status"]) == (order["OrderNumber"], "Draft")
    stack.org.update("Order", order["Id"], {"Status": "Activated"})
    stack.run()
    [row] = stack.book("orders_sheet", "Orders")
    assert (row["PO Number"], row["Notes"], row["SF Status"]) == ("PO-1", "Restock", "Activated")


def test_an_order_for_an_unknown_account_waits_as_a_dead_letter_naming_it(stack: Stack) -> None:
    account(stack, "ACC-1", "Northwind")
    product(stack, "P-1", "Bolt")
    stack.write(*MAPPINGS, rows={"Orders": [ORDER, ["PO-2", "ACC-404", "Wholesale", "21/11/2026", ""]]})
    stack.run()
    with stack.journal() as journal:
        [letter] = journal.dead_letters("orders")
    assert (letter.record_key, letter.category) == ("PO-2", "unresolved-reference")
    assert "'ACC-404'" in letter.message
    assert [o["PO_Number__c"] for o in stack.org.records("Order")] == ["PO-1"]


def test_a_line_with_an_unknown_product_waits_and_goes_through_once_the_code_is_fixed(stack: Stack) -> None:
    account(stack, "ACC-1", "Northwind")
    product(stack, "P-1", "Bolt")
    stack.write(*MAPPINGS, rows={"Orders": [ORDER], "Lines": [["PO-1/1", "PO-1", "P-404", 1, 2]]})
    stack.run()
    with stack.journal() as journal:
        [letter] = journal.dead_letters("order_lines")
    assert letter.category == "unresolved-reference" and "'P-404'" in letter.message
    assert stack.org.records("OrderItem") == []
    stack.edit("orders_sheet", "Lines", "PO-1/1", "Product Code", "P-1")
    stack.run()
    assert [i["Line_Key__c"] for i in stack.org.records("OrderItem")] == ["PO-1/1"]
    with stack.journal() as journal:
        assert journal.dead_letters("order_lines") == []
