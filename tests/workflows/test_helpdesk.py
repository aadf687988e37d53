"""mappings/helpdesk_*.yaml: helpdesk mail -> a Case on the sender's Contact, the mail on the case, an
acknowledgement in the same thread with the case number, a row in the Helpdesk log that follows the case."""

from __future__ import annotations

from datetime import timedelta

from syncd.demo_company import mail

from .conftest import NOW, Stack, account

HELPDESK = ("helpdesk_cases", "helpdesk_emails", "helpdesk_ack", "helpdesk_log")
ANN = ("Ann Northwind", "ann@northwind.example")


def arrive(stack: Stack, sender: tuple[str, str], subject: str, reply_to: str | None = None) -> str:
    message_id, raw = mail(sender, subject, "Hello, a question.", when=NOW, reply_to=reply_to)
    stack.mail.deliver("INBOX", raw)
    return message_id


def test_new_mail_opens_a_case_on_the_senders_contact_and_its_account(stack: Stack) -> None:
    account_id = account(stack, "ACC-1", "Northwind")
    message_id = arrive(stack, ANN, "Delivery date?")
    stack.write(*HELPDESK)
    stack.run()
    [case] = stack.org.records("Case")
    [contact] = stack.org.records("Contact")
    assert (case["Subject"], case["Origin"], case["Thread_Key__c"]) == ("Delivery date?", "Email", message_id)
    assert (case["ContactId"], case["AccountId"]) == (contact["Id"], account_id)


def test_the_mail_is_stored_on_the_case_and_acknowledged_in_its_thread_once(stack: Stack) -> None:
    account(stack, "ACC-1", "Northwind")
    message_id = arrive(stack, ANN, "Delivery date?")
    stack.write(*HELPDESK)
    stack.run()
    stack.run()
    stack.run()
    [case] = stack.org.records("Case")
    [stored] = stack.org.records("EmailMessage")
    assert (stored["ParentId"], stored["MessageIdentifier"], stored["Incoming"]) == (
        case["Id"],
        message_id,
        True,
    )
    [ack] = stack.sent()
    assert str(ack["To"]) == ANN[1]
    assert str(ack["Subject"]) == f"[Case {case['CaseNumber']}] Re: Delivery date?"
    assert (ack["In-Reply-To"], ack["References"]) == (message_id, message_id)


def test_a_reply_in_the_same_thread_joins_the_same_case(stack: Stack) -> None:
    account(stack, "ACC-1", "Northwind")
    first = arrive(stack, ANN, "Delivery date?")
    stack.write(*HELPDESK)
    stack.run()
    arrive(stack, ANN, "Re: Delivery date?", reply_to=first)
    stack.run()
    [case] = stack.org.records("Case")
    assert case["Subject"] == "Delivery date?"
    assert [m["ParentId"] for m in stack.org.records("EmailMessage")] == [case["Id"], case["Id"]]
    assert len(stack.sent()) == 1


def test_a_case_closed_in_salesforce_updates_its_log_row(stack: Stack) -> None:
    account(stack, "ACC-1", "Northwind")
    arrive(stack, ANN, "Delivery date?")
    stack.write(*HELPDESK)
    stack.run()
    [case] = stack.org.records("Case")
    [row] = stack.book("helpdesk_log", "Log")
    assert (row["Case"], row["From"], row["Subject"], row["Status"], row["Closed"]) == (
        case["CaseNumber"], ANN[1], "Delivery date?", "New", ""
    )  # fmt: skip
    stack.org.update("Case", case["Id"], {"Status": "Closed"})
    stack.run()
    [row] = stack.book("helpdesk_log", "Log")
    [case] = stack.org.records("Case")
    assert (row["Status"], row["Closed"]) == ("Closed", case["ClosedDate"])


def test_mail_from_an_unknown_sender_waits_naming_the_address_until_a_contact_exists(stack: Stack) -> None:
    account_id = account(stack, "ACC-1", "Northwind")
    arrive(stack, ("Chris", "chris@stranger.example"), "Price list?")
    stack.write(*HELPDESK)
    stack.run()
    with stack.journal() as journal:
        [letter] = journal.dead_letters("helpdesk_cases")
    assert letter.category == "unresolved-reference" and "'chris@stranger.example'" in letter.message
    assert stack.org.records("Case") == []
    stack.org.insert(
        "Contact", {"LastName": "Chris", "Email": "chris@stranger.example", "AccountId": account_id}
    )
    stack.run(now=NOW + timedelta(minutes=5))
    assert [c["SuppliedEmail"] for c in stack.org.records("Case")] == ["chris@stranger.example"]
    with stack.journal() as journal:
        assert journal.dead_letters("helpdesk_cases") == []


def test_the_sandbox_closes_cases_as_salesforce_does(stack: Stack) -> None:
    case = stack.org.insert("Case", {"Subject": "x"})
    assert [(c["IsClosed"], c["ClosedDate"]) for c in stack.org.records("Case")] == [(False, None)]
    stack.org.update("Case", case, {"Status": "Closed"})
    [closed] = stack.org.records("Case")
    assert closed["IsClosed"] and closed["ClosedDate"] == closed["LastModifiedDate"]
    stack.org.update("Case", case, {"Status": "Working"})
    assert [(c["IsClosed"], c["ClosedDate"]) for c in stack.org.records("Case")] == [(False, None)]
