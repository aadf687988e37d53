"""The Dovecot fixture itself: a fresh user logs in and sees an empty INBOX."""

from __future__ import annotations

from imapclient import IMAPClient  # type: ignore[import-untyped]

from .dovecot import Account


def test_fresh_account_has_an_empty_inbox(account: Account) -> None:
    with IMAPClient(account.host, port=account.port, ssl=False, timeout=10) as client:
        client.login(account.username, account.password)
        info = client.select_folder("INBOX", readonly=True)
        assert info[b"EXISTS"] == 0
        assert b"IDLE" in client.capabilities()
