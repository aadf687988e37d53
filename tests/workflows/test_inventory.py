"""mappings/inventory.yaml and low_stock.yaml: the warehouse sheet -> Product2 stock fields, and one
low-stock email per crossing of the reorder level."""

from __future__ import annotations

from .conftest import Stack, product


def stock(stack: Stack) -> dict[str, tuple[float, float]]:
    return {
        p["ProductCode"]: (p["QuantityOnHand__c"], p["Reorder_Level__c"])
        for p in stack.org.records("Product2")
    }


def test_the_warehouse_count_updates_salesforce_stock_and_new_items_are_created(stack: Stack) -> None:
    product(stack, "P-1", "Bolt", on_hand=100, level=10)
    stack.write("inventory", rows={"Inventory": [["P-1", "Bolt", 80, 15], ["P-9", "Gear", 5, 2]]})
    stack.run()
    assert stock(stack) == {"P-1": (80, 15), "P-9": (5, 2)}
    assert len(stack.org.records("Product2")) == 2


def test_one_low_stock_email_per_crossing_of_the_reorder_level(stack: Stack) -> None:
    product(stack, "P-1", "Bolt")
    product(stack, "P-2", "Nut")
    stack.write(
        "inventory", "low_stock", rows={"Inventory": [["P-1", "Bolt", 100, 10], ["P-2", "Nut", 50, 10]]}
    )
    stack.run()
    assert stack.sent() == []
    for counted in (4, 3, 40, 2):  # falls under, stays under, restocked, falls again
        stack.edit("warehouse", "Inventory", "P-1", "On Hand", counted)
        stack.run()
    sent = stack.sent()
    assert [str(m["Subject"]) for m in sent] == ["Low stock: Bolt (P-1)"] * 2
    assert str(sent[0]["To"]) == "warehouse@ourco.example"
    assert "down to 4" in sent[0].get_body(("plain",)).get_content()  # type: ignore[union-attr]
