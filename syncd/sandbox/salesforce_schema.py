"""The sandbox org's object model: which sObjects exist, their fields, and how describe renders them.

Kept in one place, as data, so that what the sandbox accepts and what its describe advertises can never
disagree: validation, SOQL and describe all read these definitions. Field attributes follow Salesforce's
describe (createable, updateable, nillable, externalId, idLookup ...) because a connector decides what to
write from describe, and the sandbox then refuses what describe says is not allowed.

Custom objects and fields come from a seed file (YAML or JSON), see `load_seed`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

STRING_TYPES = {"string", "textarea", "email", "phone", "url", "picklist", "multipicklist", "combobox"}
NUMBER_TYPES = {"int", "double", "currency", "percent"}
SOAP_TYPES = {
    "address": "urn:address",
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "int": "xsd:int",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
}


@dataclass(frozen=True)
class FieldDef:
    """One field as describe reports it; `required` means not nillable and not defaulted on create."""

    name: str
    type: str
    label: str = ""
    length: int = 0
    required: bool = False
    createable: bool = True
    updateable: bool = True
    external_id: bool = False
    unique: bool = False
    id_lookup: bool = False
    case_sensitive: bool = False
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    auto_number: bool = False
    calculated: bool = False
    custom: bool = False
    default: Any = None
    picklist: tuple[str, ...] = ()
    precision: int = 0
    scale: int = 0
    name_field: bool = False
    compound: str | None = None
    extra_type: str | None = None

    @property
    def nillable(self) -> bool:
        return not self.required and self.type not in {"id", "boolean"} and not self.system

    @property
    def system(self) -> bool:
        return self.name in SYSTEM_FIELD_NAMES

    @property
    def defaulted_on_create(self) -> bool:
        return self.default is not None or self.auto_number or self.system or self.type == "boolean"


@dataclass(frozen=True)
class ValidationRule:
    """A seedable stand-in for a validation rule: fails when `field` equals `equals`."""

    name: str
    field: str
    equals: Any
    message: str


@dataclass
class SObjectDef:
    name: str
    key_prefix: str
    label: str
    fields: dict[str, FieldDef]
    custom: bool = False
    createable: bool = True
    updateable: bool = True
    deletable: bool = True
    rules: list[ValidationRule] = field(default_factory=list)

    def field_ci(self, name: str) -> FieldDef | None:
        """Field names are case-insensitive in SOQL and in request bodies, as in Salesforce."""
        found = self.fields.get(name)
        if found is not None:
            return found
        lowered = name.lower()
        return next((f for n, f in self.fields.items() if n.lower() == lowered), None)

    def relationship(self, name: str) -> FieldDef | None:
        lowered = name.lower()
        return next(
            (
                f
                for f in self.fields.values()
                if f.relationship_name and f.relationship_name.lower() == lowered
            ),
            None,
        )


SYSTEM_FIELD_NAMES = {
    "Id",
    "IsDeleted",
    "CreatedDate",
    "CreatedById",
    "LastModifiedDate",
    "LastModifiedById",
    "SystemModstamp",
}


def _system_fields(label: str) -> list[FieldDef]:
    ro: dict[str, Any] = {"createable": False, "updateable": False}
    return [
        FieldDef("Id", "id", f"{label} ID", 18, id_lookup=True, **ro),
        FieldDef("IsDeleted", "boolean", "Deleted", **ro),
        FieldDef("CreatedDate", "datetime", "Created Date", **ro),
        FieldDef(
            "CreatedById",
            "reference",
            "Created By ID",
            18,
            reference_to=("User",),
            relationship_name="CreatedBy",
            **ro,
        ),
        FieldDef("LastModifiedDate", "datetime", "Last Modified Date", **ro),
        FieldDef(
            "LastModifiedById",
            "reference",
            "Last Modified By ID",
            18,
            reference_to=("User",),
            relationship_name="LastModifiedBy",
            **ro,
        ),
        FieldDef("SystemModstamp", "datetime", "System Modstamp", **ro),
    ]


def _s(name: str, length: int = 255, **kw: Any) -> FieldDef:
    return FieldDef(name, "string", kw.pop("label", name), length, **kw)


def _ref(name: str, to: str, rel: str, **kw: Any) -> FieldDef:
    return FieldDef(
        name, "reference", kw.pop("label", name), 18, reference_to=(to,), relationship_name=rel, **kw
    )


def _pick(name: str, values: tuple[str, ...], **kw: Any) -> FieldDef:
    return FieldDef(name, "picklist", kw.pop("label", name), 255, picklist=values, **kw)


def _num(name: str, kind: str = "double", precision: int = 18, scale: int = 2, **kw: Any) -> FieldDef:
    return FieldDef(name, kind, kw.pop("label", name), 0, precision=precision, scale=scale, **kw)


def _auto(name: str) -> FieldDef:
    return FieldDef(
        name,
        "string",
        name,
        30,
        createable=False,
        updateable=False,
        auto_number=True,
        name_field=True,
        unique=True,
        id_lookup=True,
    )


def _calc(f: FieldDef) -> FieldDef:
    return replace(f, createable=False, updateable=False, calculated=True)


def _text(name: str, length: int = 32000) -> FieldDef:
    return FieldDef(name, "textarea", name, length)


OWNER = _ref("OwnerId", "User", "Owner", label="Owner ID", default="<current user>")

_ADDRESS = [
    _text("BillingStreet", 255),
    _s("BillingCity", 40),
    _s("BillingState", 80),
    _s("BillingPostalCode", 20),
    _s("BillingCountry", 80),
    _text("ShippingStreet", 255),
    _s("ShippingCity", 40),
    _s("ShippingState", 80),
    _s("ShippingPostalCode", 20),
    _s("ShippingCountry", 80),
]

_ro: dict[str, Any] = {"createable": False, "updateable": False}

# The Organization row as the REST API returns it (org-wide settings; read-only through the API).
_ORGANIZATION_FIELDS = [
    _s("Name", 80, **_ro),
    *(_s(n, 80, **_ro) for n in ("Division", "Street", "City", "State", "PostalCode", "Country")),
    *(_num(n, "double", 18, 15, **_ro) for n in ("Latitude", "Longitude")),
    _pick("GeocodeAccuracy", ("Address", "City"), **_ro),
    FieldDef("Address", "address", "Address", **_ro),
    *(FieldDef(n, "phone", n, 40, **_ro) for n in ("Phone", "Fax")),
    *(
        _s(n, 80, **_ro)
        for n in ("PrimaryContact", "DefaultLocaleSidKey", "TimeZoneSidKey", "LanguageLocaleKey")
    ),
    *(
        FieldDef(n, "boolean", n, **_ro)
        for n in (
            "ReceivesInfoEmails",
            "ReceivesAdminInfoEmails",
            "PreferencesRequireOpportunityProducts",
            "PreferencesTransactionSecurityPolicy",
            "PreferencesTerminateOldestSession",
            "PreferencesConsentManagementEnabled",
            "PreferencesAutoSelectIndividualOnMerge",
            "PreferencesLightningLoginEnabled",
            "PreferencesOnlyLLPermUserAllowed",
        )
    ),
    _num("FiscalYearStartMonth", "int", 9, 0, **_ro),
    FieldDef("UsesStartDateAsFiscalYearName", "boolean", "UsesStartDateAsFiscalYearName", **_ro),
    *(
        _pick(n, ("None", "Read", "Edit", "ControlledByParent"), **_ro)
        for n in (
            "DefaultAccountAccess",
            "DefaultContactAccess",
            "DefaultOpportunityAccess",
            "DefaultLeadAccess",
            "DefaultCaseAccess",
            "DefaultCalendarAccess",
            "DefaultPricebookAccess",
            "DefaultCampaignAccess",
        )
    ),
    FieldDef("DelegatedAuthenticationServiceUrl", "url", "Delegated Authentication Service URL", 1000, **_ro),
    FieldDef("ComplianceBccEmail", "email", "Compliance BCC Email", 80, **_ro),
    _pick("UiSkin", ("Theme1", "Theme2", "Theme3"), **_ro),
    _s("SignupCountryIsoCode", 2, **_ro),
    FieldDef("TrialExpirationDate", "datetime", "Trial Expiration Date", **_ro),
    _num("NumKnowledgeService", "int", 9, 0, **_ro),
    _s("OrganizationType", 40, **_ro),
    _s("NamespacePrefix", 15, **_ro),
    _s("InstanceName", 5, **_ro),
    FieldDef("IsSandbox", "boolean", "Is Sandbox", **_ro),
    _s("WebToCaseDefaultOrigin", 40, **_ro),
    _num("MonthlyPageViewsUsed", "int", 9, 0, **_ro),
    _num("MonthlyPageViewsEntitlement", "int", 9, 0, **_ro),
    FieldDef("IsReadOnly", "boolean", "Is Read Only", **_ro),
]

_STANDARD: list[tuple[str, str, str, list[FieldDef]]] = [
    (
        "Account",
        "001",
        "Account",
        [
            _s(
                "Name",
                255,
                required=True,
                name_field=True,
                label="Account Name",
                compound="Name",
                extra_type="switchablepersonname",
            ),
            _s("AccountNumber", 40),
            _pick("Type", ("Prospect", "Customer - Direct", "Customer - Channel", "Other")),
            _ref("ParentId", "Account", "Parent"),
            *_ADDRESS,
            FieldDef("Phone", "phone", "Account Phone", 40),
            FieldDef("Fax", "phone", "Account Fax", 40),
            FieldDef("Website", "url", "Website", 255),
            _pick("Industry", ("Agriculture", "Retail", "Other")),
            _num("AnnualRevenue", "currency", 18, 0),
            _num("NumberOfEmployees", "int", 8, 0),
            _pick("Rating", ("Hot", "Warm", "Cold")),
            _s("Site", 80),
            _text("Description"),
            _ref("RecordTypeId", "RecordType", "RecordType", label="Account Record Type"),
            _pick("AccountSource", ("Web", "Phone Inquiry", "Partner Referral", "Other")),
            _pick("Ownership", ("Public", "Private", "Subsidiary", "Other")),
            _num("BillingLatitude", "double", 18, 15),
            _num("BillingLongitude", "double", 18, 15),
            _pick("BillingGeocodeAccuracy", ("Address", "NearAddress", "Block", "Street", "City", "Zip")),
            _num("ShippingLatitude", "double", 18, 15),
            _num("ShippingLongitude", "double", 18, 15),
            _pick("ShippingGeocodeAccuracy", ("Address", "NearAddress", "Block", "Street", "City", "Zip")),
            _s("Sic", 20),
            _s("SicDesc", 80),
            _s("TickerSymbol", 20),
            _s("DunsNumber", 9),
            _s("Tradestyle", 255),
            _s("NaicsCode", 8),
            _s("NaicsDesc", 120),
            _s("YearStarted", 4),
            _s("Jigsaw", 20, label="Data.com Key"),
            _pick(
                "CleanStatus",
                (
                    "Matched",
                    "Different",
                    "Acknowledged",
                    "NotFound",
                    "Inactive",
                    "Pending",
                    "SelectMatch",
                    "Skipped",
                ),
            ),
            OWNER,
        ],
    ),
    (
        "Contact",
        "003",
        "Contact",
        [
            _s("LastName", 80, required=True, compound="Name", extra_type="personname"),
            _s("FirstName", 40, compound="Name", extra_type="personname"),
            _s("Salutation", 40, compound="Name", extra_type="personname"),
            _calc(_s("Name", 121, name_field=True, label="Full Name", extra_type="personname")),
            _ref("AccountId", "Account", "Account"),
            _s("Title", 128),
            _s("Department", 80),
            FieldDef("Email", "email", "Email", 80, id_lookup=True),
            FieldDef("Phone", "phone", "Business Phone", 40),
            FieldDef("MobilePhone", "phone", "Mobile Phone", 40),
            _text("MailingStreet", 255),
            _s("MailingCity", 40),
            _s("MailingPostalCode", 20),
            _s("MailingCountry", 80),
            _text("Description"),
            OWNER,
        ],
    ),
    (
        "Opportunity",
        "006",
        "Opportunity",
        [
            _s("Name", 120, required=True, name_field=True),
            _ref("AccountId", "Account", "Account"),
            FieldDef("ContactId", "reference", "Contact ID", 18, reference_to=("Contact",)),
            _pick("StageName", ("Prospecting", "In Progress", "Closed Won", "Closed Lost"), required=True),
            FieldDef("CloseDate", "date", "Close Date", required=True),
            _num("Amount", "currency", 18, 2),
            _text("Description"),
            OWNER,
        ],
    ),
    (
        "Product2",
        "01t",
        "Product",
        [
            _s("Name", 255, required=True, name_field=True, label="Product Name"),
            _s("ProductCode", 255),
            _text("Description", 4000),
            FieldDef("IsActive", "boolean", "Active", default=False),
            _pick("Family", ("None", "Hardware", "Software", "Service")),
            _s("StockKeepingUnit", 180),
            _num("QuantityOnHand__c", "double", 18, 0, custom=True, label="Quantity On Hand"),
        ],
    ),
    (
        "Pricebook2",
        "01s",
        "Price Book",
        [
            _s("Name", 255, required=True, name_field=True),
            FieldDef("IsActive", "boolean", "Active", default=False),
            FieldDef(
                "IsStandard",
                "boolean",
                "Is Standard Price Book",
                createable=False,
                updateable=False,
                default=False,
            ),
            _text("Description", 255),
        ],
    ),
    (
        "PricebookEntry",
        "01u",
        "Price Book Entry",
        [
            _ref("Pricebook2Id", "Pricebook2", "Pricebook2", required=True, updateable=False),
            _ref("Product2Id", "Product2", "Product2", required=True, updateable=False),
            _num("UnitPrice", "currency", 18, 2, required=True),
            FieldDef("IsActive", "boolean", "Active", default=False),
            FieldDef("UseStandardPrice", "boolean", "Use Standard Price", default=False),
            _calc(_s("Name", 255, name_field=True)),
            _calc(_s("ProductCode", 255)),
        ],
    ),
    (
        "Order",
        "801",
        "Order",
        [
            _auto("OrderNumber"),
            _ref("AccountId", "Account", "Account", required=True),
            FieldDef("EffectiveDate", "date", "Order Start Date", required=True),
            _pick("Status", ("Draft", "Activated"), required=True, default="Draft"),
            _ref("Pricebook2Id", "Pricebook2", "Pricebook2"),
            _s("Name", 80),
            _pick("Type", ("New", "Renewal")),
            _text("Description"),
            _calc(_num("TotalAmount", "currency", 18, 2)),
            _s("PoNumber", 80),
            OWNER,
        ],
    ),
    (
        "OrderItem",
        "802",
        "Order Product",
        [
            _auto("OrderItemNumber"),
            _ref("OrderId", "Order", "Order", required=True, updateable=False),
            _ref("PricebookEntryId", "PricebookEntry", "PricebookEntry", required=True, updateable=False),
            _ref("Product2Id", "Product2", "Product2", updateable=False),
            _num("Quantity", "double", 18, 2, required=True),
            _num("UnitPrice", "currency", 18, 2, required=True),
            _calc(_num("TotalPrice", "currency", 18, 2)),
            _s("Description", 255),
        ],
    ),
    (
        "Case",
        "500",
        "Case",
        [
            _auto("CaseNumber"),
            _ref("AccountId", "Account", "Account"),
            _ref("ContactId", "Contact", "Contact"),
            _ref("ParentId", "Case", "Parent"),
            _s("Subject", 255),
            _text("Description"),
            _pick("Status", ("New", "Working", "Escalated", "Closed"), default="New"),
            _pick("Origin", ("Phone", "Email", "Web")),
            _pick("Priority", ("High", "Medium", "Low"), default="Medium"),
            _pick("Type", ("Question", "Problem", "Feature Request")),
            FieldDef("SuppliedEmail", "email", "Web Email", 80),
            _s("SuppliedName", 80),
            FieldDef("IsClosed", "boolean", "Closed", createable=False, updateable=False, default=False),
            FieldDef("ClosedDate", "datetime", "Closed Date", createable=False, updateable=False),
            OWNER,
        ],
    ),
    (
        "EmailMessage",
        "02s",
        "Email Message",
        [
            _ref("ParentId", "Case", "Parent"),
            _ref("RelatedToId", "Account", "RelatedTo"),
            _text("Subject", 3000),
            _text("TextBody", 131072),
            _text("HtmlBody", 131072),
            FieldDef("FromAddress", "email", "From Address", 255),
            _s("FromName", 1000),
            _text("ToAddress", 4000),
            _text("CcAddress", 4000),
            FieldDef("MessageDate", "datetime", "Message Date"),
            FieldDef("Incoming", "boolean", "Is Incoming", default=False),
            _s("MessageIdentifier", 255),
            _pick("Status", ("0", "1", "2", "3", "4", "5"), default="0"),
        ],
    ),
    (
        "Task",
        "00T",
        "Task",
        [
            _s("Subject", 255),
            FieldDef("ActivityDate", "date", "Due Date Only"),
            _pick(
                "Status", ("Not Started", "In Progress", "Completed"), required=True, default="Not Started"
            ),
            _pick("Priority", ("High", "Normal", "Low"), required=True, default="Normal"),
            _ref("WhoId", "Contact", "Who"),
            _ref("WhatId", "Account", "What"),
            _text("Description"),
            OWNER,
        ],
    ),
    (
        "User",
        "005",
        "User",
        [
            _s("Username", 80, createable=False, updateable=False, unique=True, id_lookup=True),
            _s("FirstName", 40),
            _s("LastName", 80),
            _calc(_s("Name", 121, name_field=True)),
            FieldDef("Email", "email", "Email", 128),
            FieldDef("IsActive", "boolean", "Active", default=True),
        ],
    ),
    (
        "Organization",
        "00D",
        "Organization",
        [
            *_ORGANIZATION_FIELDS,
        ],
    ),
    (
        "RecordType",
        "012",
        "Record Type",
        [
            _s("Name", 80, name_field=True),
            _s("DeveloperName", 80),
            _s("SobjectType", 40),
            FieldDef("IsActive", "boolean", "Active", default=True),
        ],
    ),
]

#: Objects the API cannot create or delete records of (their rows are made by the sandbox itself).
READ_ONLY_OBJECTS = {"User", "Organization", "RecordType"}


def standard_objects() -> dict[str, SObjectDef]:
    objects: dict[str, SObjectDef] = {}
    for name, prefix, label, fields in _STANDARD:
        system = [f for f in _system_fields(label) if not (name == "Organization" and f.name == "IsDeleted")]
        defs = {f.name: f for f in [*system, *fields]}
        writable = name not in READ_ONLY_OBJECTS
        objects[name] = SObjectDef(name, prefix, label, defs, createable=writable, deletable=writable)
    return objects


_SEED_TYPES = STRING_TYPES | NUMBER_TYPES | {"boolean", "date", "datetime", "reference"}


def _seed_field(name: str, spec: dict[str, Any]) -> FieldDef:
    kind = str(spec.get("type", "string"))
    if kind not in _SEED_TYPES:
        raise ValueError(f"seed field {name}: unknown type {kind!r}")
    return FieldDef(
        name=name,
        type=kind,
        label=str(spec.get("label", name)),
        length=int(spec.get("length", 255 if kind in STRING_TYPES else 18 if kind == "reference" else 0)),
        required=bool(spec.get("required", False)),
        external_id=bool(spec.get("externalId", False)),
        unique=bool(spec.get("unique", False)),
        id_lookup=bool(spec.get("externalId", False) or spec.get("unique", False)),
        case_sensitive=bool(spec.get("caseSensitive", False)),
        reference_to=(str(spec["referenceTo"]),) if "referenceTo" in spec else (),
        relationship_name=spec.get("relationshipName"),
        custom=name.endswith("__c"),
        default=spec.get("default"),
        picklist=tuple(str(v) for v in spec.get("values", ())),
        precision=int(spec.get("precision", 18 if kind in NUMBER_TYPES else 0)),
        scale=int(spec.get("scale", 0)),
        createable=bool(spec.get("createable", True)),
        updateable=bool(spec.get("updateable", True)),
    )


def read_seed(seed: Path | dict[str, Any]) -> dict[str, Any]:
    if isinstance(seed, dict):
        return seed
    text = seed.read_text(encoding="utf-8")
    loaded = json.loads(text) if seed.suffix == ".json" else YAML(typ="safe").load(text)
    if not isinstance(loaded, dict):
        raise ValueError(f"{seed}: a seed file is a mapping with an `objects` key")
    return loaded


def apply_seed_schema(objects: dict[str, SObjectDef], seed: dict[str, Any]) -> None:
    """Add the seed's custom objects, fields and validation rules to `objects` (in place).

    Seed shape: {"objects": {"Name": {"fields": {"F__c": {type, length, externalId, required,
    unique, ...}}, "validationRules": [{name, field, equals, message}], "records": [{...}]}}}.
    A custom object (name ending in __c) gets a Name field and the next a0X key prefix.
    """
    custom_count = sum(1 for o in objects.values() if o.custom)
    for obj_name, spec in (seed.get("objects") or {}).items():
        spec = spec or {}
        obj = objects.get(obj_name)
        if obj is None:
            if not obj_name.endswith("__c"):
                raise ValueError(f"seed object {obj_name}: only custom objects (ending in __c) can be added")
            prefix = "a0" + "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[custom_count % 36]
            custom_count += 1
            label = str(spec.get("label", obj_name[:-3].replace("_", " ")))
            base = {f.name: f for f in _system_fields(label)}
            base["Name"] = _s("Name", 80, name_field=True, label=f"{label} Name")
            base["OwnerId"] = OWNER
            obj = SObjectDef(obj_name, prefix, label, base, custom=True)
            objects[obj_name] = obj
        for field_name, field_spec in (spec.get("fields") or {}).items():
            obj.fields[field_name] = _seed_field(field_name, field_spec or {})
        for rule in spec.get("validationRules") or []:
            obj.rules.append(
                ValidationRule(
                    str(rule["name"]), str(rule["field"]), rule.get("equals"), str(rule["message"])
                )
            )


# --- describe rendering -------------------------------------------------------------------------


_ADDRESS_PART = re.compile(
    r"^(Billing|Shipping|Mailing|Other)(Street|City|State|PostalCode|Country|Latitude|Longitude|GeocodeAccuracy)$"
)


def _address_compound(name: str) -> str | None:
    match = _ADDRESS_PART.match(name)
    return f"{match.group(1)}Address" if match else None


def describe_field(f: FieldDef) -> dict[str, Any]:
    """One `fields[]` entry with every key a real describe (API v59+) carries."""
    is_text = f.type in STRING_TYPES
    return {
        "aggregatable": f.type not in {"textarea"},
        "aiPredictionField": False,
        "autoNumber": f.auto_number,
        "byteLength": f.length * 3 if is_text else (18 if f.type in {"id", "reference"} else 0),
        "calculated": f.calculated,
        "calculatedFormula": None,
        "cascadeDelete": False,
        "caseSensitive": f.case_sensitive,
        "compoundFieldName": f.compound or _address_compound(f.name),
        "controllerName": None,
        "createable": f.createable,
        "custom": f.custom,
        "defaultValue": bool(f.default) if f.type == "boolean" else None,
        "defaultValueFormula": None,
        "defaultedOnCreate": f.defaulted_on_create,
        "dependentPicklist": False,
        "deprecatedAndHidden": False,
        "digits": f.precision if f.type == "int" else 0,
        "displayLocationInDecimal": False,
        "encrypted": False,
        "externalId": f.external_id,
        "extraTypeInfo": f.extra_type or ("plaintextarea" if f.type == "textarea" else None),
        "filterable": f.type != "textarea" or f.length <= 255,
        "filteredLookupInfo": None,
        "formulaTreatNullNumberAsZero": False,
        "groupable": f.type not in {"textarea", "double", "currency", "percent", "datetime"},
        "highScaleNumber": False,
        "htmlFormatted": False,
        "idLookup": f.id_lookup,
        "inlineHelpText": None,
        "label": f.label or f.name,
        "length": f.length if is_text or f.type in {"id", "reference"} else 0,
        "mask": None,
        "maskType": None,
        "name": f.name,
        "nameField": f.name_field,
        "namePointing": False,
        "nillable": f.nillable,
        "permissionable": f.custom and not f.required,
        "picklistValues": [
            {"active": True, "defaultValue": v == f.default, "label": v, "validFor": None, "value": v}
            for v in f.picklist
        ],
        "polymorphicForeignKey": False,
        "precision": f.precision if f.type in {"double", "currency", "percent"} else 0,
        "queryByDistance": False,
        "referenceTargetField": None,
        "referenceTo": list(f.reference_to),
        "relationshipName": f.relationship_name,
        "relationshipOrder": None,
        "restrictedDelete": False,
        "restrictedPicklist": False,
        "scale": f.scale if f.type in {"double", "currency", "percent"} else 0,
        "searchPrefilterable": False,
        "soapType": SOAP_TYPES.get(f.type, "xsd:string"),
        "sortable": f.type != "textarea" or f.length <= 255,
        "type": f.type,
        "unique": f.unique,
        "updateable": f.updateable,
        "writeRequiresMasterRead": False,
    }


def _urls(obj: SObjectDef, version: str) -> dict[str, str]:
    base = f"/services/data/v{version}/sobjects/{obj.name}"
    return {
        "compactLayouts": f"{base}/describe/compactLayouts",
        "rowTemplate": f"{base}/{{ID}}",
        "approvalLayouts": f"{base}/describe/approvalLayouts",
        "listviews": f"{base}/listviews",
        "describe": f"{base}/describe",
        "quickActions": f"{base}/quickActions",
        "layouts": f"{base}/describe/layouts",
        "sobject": base,
    }


def describe_global_entry(obj: SObjectDef, version: str) -> dict[str, Any]:
    return {
        "activateable": False,
        "associateEntityType": None,
        "associateParentEntity": None,
        "createable": obj.createable,
        "custom": obj.custom,
        "customSetting": False,
        "deepCloneable": False,
        "deletable": obj.deletable,
        "deprecatedAndHidden": False,
        "feedEnabled": not obj.custom,
        "hasSubtypes": False,
        "isInterface": False,
        "isSubtype": False,
        "keyPrefix": obj.key_prefix,
        "label": obj.label,
        "labelPlural": obj.label + "s",
        "layoutable": True,
        "mergeable": obj.name in {"Account", "Contact"},
        "mruEnabled": True,
        "name": obj.name,
        "queryable": True,
        "replicateable": True,
        "retrieveable": True,
        "searchable": True,
        "triggerable": True,
        "undeletable": obj.deletable,
        "updateable": obj.updateable,
        "urls": _urls(obj, version),
    }


def child_relationships(objects: dict[str, SObjectDef], parent: str) -> list[dict[str, Any]]:
    out = []
    for child in objects.values():
        for f in child.fields.values():
            if parent in f.reference_to and not f.system and f.name != "OwnerId":
                out.append(
                    {
                        "cascadeDelete": False,
                        "childSObject": child.name,
                        "deprecatedAndHidden": False,
                        "field": f.name,
                        "junctionIdListNames": [],
                        "junctionReferenceTo": [],
                        "relationshipName": child_relationship_name(child),
                        "restrictedDelete": False,
                    }
                )
    return out


def child_relationship_name(child: SObjectDef) -> str:
    """Salesforce's plural child relationship name (`Contacts`, `Opportunities`, `Orders__r`)."""
    if child.custom:
        return child.name[:-3] + "s__r"
    if child.name.endswith("y"):
        return child.name[:-1] + "ies"
    if child.name.endswith("s"):
        return child.name + "es"
    return child.name + "s"


def describe_sobject(objects: dict[str, SObjectDef], obj: SObjectDef, version: str) -> dict[str, Any]:
    entry = describe_global_entry(obj, version)
    master = {
        "active": True,
        "available": True,
        "defaultRecordTypeMapping": True,
        "developerName": "Master",
        "master": True,
        "name": "Master",
        "recordTypeId": "012000000000000AAA",
        "urls": {
            "layout": f"/services/data/v{version}/sobjects/{obj.name}/describe/layouts/012000000000000AAA"
        },
    }
    return {
        **{k: v for k, v in entry.items() if k != "urls"},
        "actionOverrides": [],
        "childRelationships": child_relationships(objects, obj.name),
        "compactLayoutable": True,
        "defaultImplementation": None,
        "extendedBy": None,
        "extendsInterfaces": None,
        "fields": [describe_field(f) for f in obj.fields.values()],
        "implementedBy": None,
        "implementsInterfaces": None,
        "listviewable": None,
        "lookupLayoutable": None,
        "namedLayoutInfos": [],
        "networkScopeFieldName": None,
        "recordTypeInfos": [master],
        "searchLayoutable": True,
        "sobjectDescribeOption": "FULL",
        "supportedScopes": [{"label": "All records", "name": "everything"}],
        "urls": _urls(obj, version),
    }
