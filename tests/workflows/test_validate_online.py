"""`syncd validate --online` on the shipped mappings against the stand-ins: the org, the sheets and the
mailboxes hold every stream and field the mappings name, so it reports nothing."""

from __future__ import annotations

from syncd.online import online_problems

from .conftest import Stack


def test_shipped_mappings_pass_online_validation(stack: Stack) -> None:
    stack.write()
    assert online_problems(stack.project()) == []


def test_a_renamed_salesforce_field_is_caught_online(stack: Stack) -> None:
    stack.write("clients")
    clients = stack.root / "mappings" / "clients.yaml"
    clients.write_text(clients.read_text().replace("Tier__c", "Tier_c"))
    [problem] = online_problems(stack.project())
    assert "mappings/clients.yaml:" in problem and "has no field 'Tier_c'" in problem
