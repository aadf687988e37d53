"""The helpdesk mappings reading a real IMAP server (Dovecot), not only the pymap stand-in."""

from __future__ import annotations

from imapclient import IMAPClient  # type: ignore[import-untyped]
from ruamel.yaml import YAML

from syncd.demo_company import mail
from tests.mail.conftest import account as dovecot_account  # noqa: F401 - fixtures used by name
from tests.mail.conftest import dovecot  # noqa: F401
from tests.mail.dovecot import Account

from .conftest import NOW, Stack, account

HELPDESK = ("helpdesk_cases", "helpdesk_emails", "helpdesk_ack")
ANN = ("Ann Northwind", "ann@northwind.example")


def on_dovecot(stack: Stack, box: Account) -> None:
    """Point the shipped project's helpdesk connection at the Dovecot mailbox."""
    assert stack.config is not None
    yaml = YAML()
    config = yaml.load(stack.config.read_text())
    config["connections"]["helpdesk"].update(
        {"host": box.host, "port": box.port, "username": box.username, "password": box.password,
         "allow_plaintext": True, "folders": ["INBOX"]}
    )  # fmt: skip
    with stack.config.open("w") as fh:
        yaml.dump(config, fh)


def append(box: Account, raw: bytes) -> None:
    client = IMAPClient(box.host, box.port, ssl=False, timeout=10)
    client.login(box.username, box.password)
    try:
        client.append("INBOX", raw)
    finally:
        client.logout()


def test_dovecot_mail_opens_a_case_that_is_acknowledged_in_its_thread(
    stack: Stack,
    dovecot_account: Account,  # noqa: F811
) -> None:
    account(stack, "ACC-1", "Northwind")
    stack.write(*HELPDESK)
    on_dovecot(stack, dovecot_account)
    message_id, raw = mail(ANN, "Delivery date?", "When?", when=NOW)
    append(dovecot_account, raw)
    stack.run()
    [case] = stack.org.records("Case")
    [stored] = stack.org.records("EmailMessage")
    [ack] = stack.sent()
    assert (case["Thread_Key__c"], stored["ParentId"]) == (message_id, case["Id"])
    assert (str(ack["Subject"]), ack["In-Reply-To"]) == (
        f"[Case {case['CaseNumber']}] Re: Delivery date?",
        message_id,
    )


def test_a_dovecot_reply_joins_its_threads_case(stack: Stack, dovecot_account: Account) -> None:  # noqa: F811
    account(stack, "ACC-1", "Northwind")
    stack.write(*HELPDESK)
    on_dovecot(stack, dovecot_account)
    first, raw = mail(ANN, "Delivery date?", "When?", when=NOW)
    append(dovecot_account, raw)
    stack.run()
    append(dovecot_account, mail(ANN, "Re: Delivery date?", "Any news?", when=NOW, reply_to=first)[1])
    stack.run()
    [case] = stack.org.records("Case")
    assert [m["ParentId"] for m in stack.org.records("EmailMessage")] == [case["Id"], case["Id"]]
    assert len(stack.sent()) == 1
