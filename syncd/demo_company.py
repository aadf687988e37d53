"""The example company of `syncd demo`, and the project that points the shipped mappings at the sandboxes.

Kept apart from the demo's script so the workflow tests build the very same project: the config the
demo writes is the one the tests run, so a shipped mapping that breaks against the stand-ins breaks a
test first. Everything is generated from a fixed random seed: every run tells the same story.
"""

from __future__ import annotations

import random
import shutil
import socket
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from importlib import resources
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from syncd.sandbox.mail import MailSandbox
from syncd.sandbox.salesforce import SalesforceSandbox
from syncd.sandbox.serve import Sandboxes
from syncd.sandbox.sheets import SheetsSandbox

SHIPPED_MAPPINGS = (
    "clients",
    "orders",
    "order_lines",
    "order_status",
    "inventory",
    "low_stock",
    "helpdesk_cases",
    "helpdesk_emails",
    "helpdesk_ack",
    "helpdesk_log",
    "order_confirmations",
    "monthly_inventory",
)

SPREADSHEETS = {
    "roster": ("Client roster", {"Clients": "Account No"}),
    "orders_sheet": ("Orders", {"Orders": "PO Number", "Lines": "Line"}),
    "warehouse": ("Inventory", {"Inventory": "Product Code"}),
    "helpdesk_log": ("Helpdesk log", {"Log": "Case"}),
}
"""Sheets connection -> (spreadsheet title, worksheet -> key column)."""

SELECT = {
    "Account": ["Owner.Name", "Owner.Email", "Primary_Contact__r.Name", "Primary_Contact__r.Email"],
    "Order": ["Account.Name", "Account.Email__c"],
    "Product2": ["Client_Account__r.Name", "Client_Account__r.Email__c"],
}
"""Relationship paths the shipped mappings read (a real org's connection needs the same `select`)."""

HEADERS = {
    "Clients": ["Account No", "Client", "Email", "Phone", "Tier", "Owner", "Region", "Account Status",
                "Contact", "Contact Email", "Status"],
    "Orders": ["PO Number", "Account No", "Price Book", "Order Date", "Notes", "Order Number", "SF Status"],
    "Lines": ["Line", "PO Number", "Product Code", "Quantity", "Unit Price"],
    "Inventory": ["Product Code", "Item", "On Hand", "Reorder Level"],
    "Log": ["Case", "Opened", "From", "Subject", "Status", "Closed"],
}  # fmt: skip

HELPDESK = "help@ourco.example"
PRICE_BOOK = "Wholesale"


def shipped_mappings_dir() -> Path:
    """The `mappings/` folder of a source checkout, or the copy a wheel installs under share/syncd."""
    here = Path(__file__).resolve().parent.parent / "mappings"
    if here.is_dir():
        return here
    installed = Path(sys.prefix) / "share" / "syncd" / "mappings"
    if installed.is_dir():
        return installed
    raise FileNotFoundError(
        "the shipped mapping files are not installed (looked in the checkout and share/syncd)"
    )


def salesforce_schema() -> dict[str, Any]:
    """The custom fields the workflows need (syncd/demo_data/salesforce.yaml), in the sandbox's seed shape."""
    text = (resources.files("syncd") / "demo_data" / "salesforce.yaml").read_text(encoding="utf-8")
    loaded = YAML(typ="safe").load(text)
    assert isinstance(loaded, dict)
    return loaded


def start_sandboxes(directory: Path, port_base: int | None = None) -> Sandboxes:
    """The four stand-ins, their state kept under `directory`, the org knowing the workflows' fields.

    With `port_base` they listen on four fixed ports, so `syncd sandbox --data DIR --port-base N`
    brings the same systems back later and a config written for them keeps working.
    """
    directory.mkdir(parents=True, exist_ok=True)
    seed = directory / "schema-seed.yaml"
    with seed.open("w", encoding="utf-8") as fh:
        YAML().dump({"salesforce": salesforce_schema()}, fh)
    return Sandboxes(data_dir=directory, port_base=port_base, seed=seed).start()


def free_port_block(size: int = 4, tries: int = 50) -> int:
    """The first of `size` consecutive free loopback ports (for `start_sandboxes`' port_base)."""
    rng = random.Random()
    for _ in range(tries):
        base = rng.randrange(20000, 60000)
        sockets = []
        try:
            for port in range(base, base + size):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise OSError(f"no {size} consecutive free ports found on 127.0.0.1")


def connections(info: dict[str, Any], spreadsheets: dict[str, str]) -> dict[str, Any]:
    """The `connections:` block reaching the sandboxes; `spreadsheets` is connection -> spreadsheet id."""
    sf, sh, imap, smtp = info["salesforce"], info["sheets"], info["imap"], info["smtp"]
    conns: dict[str, Any] = {
        "crm": {
            "kind": "salesforce",
            "login_url": sf["login_url"],
            "username": sf["username"],
            "password": sf["password"],
            "security_token": sf["security_token"],
            "ca_file": sf["ca_file"],
            "select": SELECT,
            "backoff_seconds": 0.1,
        }
    }
    for name, (_, keys) in SPREADSHEETS.items():
        conns[name] = {
            "kind": "sheets",
            "spreadsheet": spreadsheets[name],
            "endpoint": sh["base_url"],
            "ca_file": sh["ca_file"],
            "service_account_file": sh["service_account_file"],
            "keys": keys,
            "backoff_seconds": 0.1,
        }
    mail = {"host": imap["host"], "security": "none", "username": imap["user"], "password": imap["password"]}
    conns["helpdesk"] = {"kind": "imap", **mail, "port": imap["port"], "folders": ["INBOX", "Sent"]}
    conns["outbox"] = {"kind": "smtp", **mail, "port": smtp["port"], "from_address": HELPDESK}
    return conns


def write_project(
    directory: Path,
    info: dict[str, Any],
    spreadsheets: dict[str, str],
    mappings: tuple[str, ...] = SHIPPED_MAPPINGS,
    metrics: str | None = None,
) -> Path:
    """syncd.yaml for the sandboxes, and copies of the shipped `mappings` beside it; the config's path."""
    (directory / "mappings").mkdir(parents=True, exist_ok=True)
    for name in mappings:
        shutil.copy2(shipped_mappings_dir() / f"{name}.yaml", directory / "mappings" / f"{name}.yaml")
    config: dict[str, Any] = {
        "version": 1,
        "journal": "syncd.db",
        "mappings": ["mappings/*.yaml"],
        "connections": connections(info, spreadsheets),
    }
    if metrics:
        config["metrics"] = {"listen": metrics}
    path = directory / "syncd.yaml"
    path.touch(mode=0o600)
    with path.open("w", encoding="utf-8") as fh:
        fh.write("# syncd demo: the shipped mappings against the local sandboxes (`syncd sandbox`).\n")
        YAML().dump(config, fh)
    return path


def new_spreadsheets(sheets: SheetsSandbox, rows: dict[str, list[list[Any]]]) -> dict[str, str]:
    """One spreadsheet per sheets connection, each worksheet headed as the mappings expect.

    `rows` adds data rows under a worksheet's header (worksheet name -> rows of values).
    """
    ids = {}
    for conn, (title, keys) in SPREADSHEETS.items():
        ids[conn] = sheets.create_spreadsheet(title, {ws: [HEADERS[ws], *rows.get(ws, [])] for ws in keys})
    return ids


def mail(
    sender: tuple[str, str],
    subject: str,
    text: str,
    *,
    when: datetime,
    to: str = HELPDESK,
    reply_to: str | None = None,
    domain: str = "client.example",
) -> tuple[str, bytes]:
    """A message as a mail client would send it: its Message-ID and its bytes."""
    msg = EmailMessage()
    msg["From"] = f"{sender[0]} <{sender[1]}>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(when)
    message_id = make_msgid(domain=domain)
    msg["Message-ID"] = message_id
    if reply_to:
        msg["In-Reply-To"] = reply_to
        msg["References"] = reply_to
    msg.set_content(text)
    return message_id, bytes(msg)


# --- the generated company -------------------------------------------------------------------------

_FIRST = ["Ann", "Bo", "Carla", "Dev", "Emil", "Fatima", "Goran", "Hana", "Ivo", "Jun", "Kemal", "Lea"]
_LAST = ["Berg", "Costa", "Dahl", "Eze", "Fischer", "Greco", "Haas", "Ito", "Jansen", "Kovac", "Lund"]
_TRADE = ["Tools", "Foods", "Systems", "Textiles", "Logistics", "Pharma", "Garden", "Marine", "Print"]
_PLACE = ["Northwind", "Fabrikam", "Contoso", "Tailspin", "Proseware", "Litware", "Adatum", "Wingtip",
          "Fourth Coffee", "Lucerne", "Margie", "Alpine", "Blue Yonder", "Coho", "Humongous", "Trey"]  # fmt: skip
_ITEMS = ["Bolt", "Nut", "Washer", "Bracket", "Hinge", "Gasket", "Valve", "Spring", "Bearing", "Seal"]
_SIZES = ["M4", "M6", "M8", "M10", "S", "L", "XL", "10 mm", "20 mm", "50 mm"]
_QUESTIONS = [
    ("Delivery date for our last order?", "Could you tell us when our last order will ship?"),
    ("Invoice copy", "Please send a copy of last month's invoice."),
    ("Damaged parcel", "Two boxes arrived damaged; what should we do with them?"),
    ("Price list 2027", "Is the new price list available yet?"),
    ("Change of delivery address", "From next month please deliver to our new warehouse."),
    ("Missing item", "One line of our order was not in the delivery."),
]


@dataclass
class Company:
    """What was seeded, for the demo's story and the tests' expectations."""

    accounts: dict[str, str] = field(default_factory=dict)  # AccountNumber -> Account Id
    contacts: dict[str, str] = field(default_factory=dict)  # email -> Contact Id
    products: dict[str, str] = field(default_factory=dict)  # ProductCode -> Product2 Id
    spreadsheets: dict[str, str] = field(default_factory=dict)  # connection -> spreadsheet id
    threads: list[str] = field(default_factory=list)  # Message-IDs of mails that opened a thread
    broken: dict[str, str] = field(default_factory=dict)  # what was seeded broken -> why


def seed_company(sandboxes: Sandboxes, *, clients: int = 50, orders: int = 300, products: int = 100,
                 mails: int = 30, seed: int = 7) -> Company:  # fmt: skip
    """A small company: accounts with contacts, a price book, stock, purchase orders and helpdesk mail.

    A few records are broken on purpose, as real ones are: orders for an account or a product
    Salesforce does not know, and mail from an address no contact has.
    """
    assert sandboxes.salesforce and sandboxes.sheets and sandboxes.mail
    rng = random.Random(seed)
    company = Company()
    org = sandboxes.salesforce
    _seed_accounts(org, rng, company, clients)
    _seed_products(org, rng, company, products)
    rows = {
        "Clients": _roster_rows(org, company),
        "Inventory": _inventory_rows(org, company),
        **_order_rows(rng, company, orders),
    }
    company.spreadsheets = new_spreadsheets(sandboxes.sheets, rows)
    _seed_mail(sandboxes.mail, rng, company, mails)
    return company


def _seed_accounts(org: SalesforceSandbox, rng: random.Random, company: Company, count: int) -> None:
    for i in range(count):
        number = f"ACC-{1001 + i}"
        name = f"{_PLACE[i % len(_PLACE)]} {_TRADE[i % len(_TRADE)]}" + (f" {i // 16 + 1}" if i >= 16 else "")
        domain = name.lower().replace(" ", "") + ".example"
        account = org.insert(
            "Account",
            {
                "Name": name,
                "AccountNumber": number,
                "Type": "Prospect" if i % 10 == 9 else "Customer",
                "Email__c": f"orders@{domain}",
                "Tier__c": ["Gold", "Silver", "Bronze"][i % 3],
                "Account_Status__c": "Active",
                "Phone": f"+44 20 7946 {1000 + i}",
            },
        )
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        email = f"{first.lower()}.{last.lower()}@{domain}"
        contact = org.insert(
            "Contact", {"FirstName": first, "LastName": last, "Email": email, "AccountId": account}
        )
        org.update("Account", account, {"Primary_Contact__c": contact})
        company.accounts[number] = account
        company.contacts[email] = contact


def _seed_products(org: SalesforceSandbox, rng: random.Random, company: Company, count: int) -> None:
    book = org.insert("Pricebook2", {"Name": PRICE_BOOK, "IsActive": True})
    owners = [a for n, a in company.accounts.items() if int(n[4:]) % 5 == 1]  # every 5th client keeps stock
    for i in range(count):
        code = f"P-{2001 + i}"
        level = rng.choice([10, 20, 50])
        product = org.insert(
            "Product2",
            {
                "Name": f"{_ITEMS[i % len(_ITEMS)]} {_SIZES[i // len(_ITEMS) % len(_SIZES)]}",
                "ProductCode": code,
                "IsActive": True,
                "QuantityOnHand__c": level + rng.randint(5, 200),
                "Reorder_Level__c": level,
                "Client_Account__c": owners[i % len(owners)] if i % 2 == 0 else None,
            },
        )
        org.insert(
            "PricebookEntry",
            {"Pricebook2Id": book, "Product2Id": product, "UnitPrice": rng.choice([1.5, 4, 12.5, 30]),
             "IsActive": True},
        )  # fmt: skip
        company.products[code] = product


def _roster_rows(org: SalesforceSandbox, company: Company) -> list[list[Any]]:
    """The sheet the coordinator already keeps: most customers, typed in by hand, a few missing."""
    rows = []
    for record in org.records("Account"):
        if record["Type"] != "Customer" or record["AccountNumber"] in ("ACC-1002", "ACC-1004"):
            continue
        rows.append([record["AccountNumber"], record["Name"], record["Email__c"], record["Phone"]])
    return rows


def _inventory_rows(org: SalesforceSandbox, company: Company) -> list[list[Any]]:
    """The warehouse's last count: what Salesforce has, give or take what moved since."""
    rows = []
    for n, record in enumerate(org.records("Product2")):
        counted = int(record["QuantityOnHand__c"]) - (3 if n % 7 == 0 else 0)
        rows.append([record["ProductCode"], record["Name"], counted, int(record["Reorder_Level__c"])])
    return rows


def _order_rows(rng: random.Random, company: Company, count: int) -> dict[str, list[list[Any]]]:
    customers = [n for n in company.accounts if int(n[4:]) % 10 != 0]  # ACC-1010 etc. are prospects
    codes = list(company.products)
    orders: list[list[Any]] = []
    lines: list[list[Any]] = []
    start = datetime(2026, 9, 1, tzinfo=UTC)
    for i in range(count):
        po = f"PO-{7001 + i}"
        account = customers[i % len(customers)]
        day = start + timedelta(days=i * 80 // count)
        notes = "Quarterly restock" if i % 25 == 0 else ""
        orders.append([po, account, PRICE_BOOK, day.strftime("%d/%m/%Y"), notes])
        for line in range(1, rng.randint(1, 3) + 1):
            lines.append(
                [f"{po}/{line}", po, rng.choice(codes), rng.randint(1, 40), rng.choice([2, 5, 12.5])]
            )
    orders[-2][1] = "ACC-9999"
    company.broken[str(orders[-2][0])] = "an order for account ACC-9999, which Salesforce does not have"
    lines[-1][2] = "P-0404"
    company.broken[str(lines[-1][0])] = "an order line for product P-0404, which is not in the price book"
    return {"Orders": orders, "Lines": lines}


def _seed_mail(mail_box: MailSandbox, rng: random.Random, company: Company, count: int) -> None:
    when = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    contacts = list(company.contacts)
    opened: list[tuple[str, str, tuple[str, str]]] = []
    strangers = 2
    for n in range(count):
        when += timedelta(minutes=rng.randint(10, 90))
        if n >= count - strangers:
            sender = ("Chris Unknown", f"chris{n}@stranger.example")
            subject, text = rng.choice(_QUESTIONS)
            company.broken[sender[1]] = f"helpdesk mail from {sender[1]}, whom no Contact has"
            mail_box.deliver("INBOX", mail(sender, subject, text, when=when)[1])
        elif n % 6 == 5 and opened:
            original, subject, sender = opened[n % len(opened)]
            text = "Any news on this? Thank you."
            mail_box.deliver("INBOX", mail(sender, f"Re: {subject}", text, when=when, reply_to=original)[1])
        else:
            email = contacts[n % len(contacts)]
            name = email.split("@")[0].replace(".", " ").title()
            subject, text = rng.choice(_QUESTIONS)
            message_id, raw = mail((name, email), subject, text, when=when)
            mail_box.deliver("INBOX", raw)
            opened.append((message_id, subject, (name, email)))
            company.threads.append(message_id)
