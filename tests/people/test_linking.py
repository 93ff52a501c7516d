"""Person linking: identifiers first in a fixed precedence, then name and date of birth,
never a name alone; every link records its rule. All data is invented test data."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from structlog.testing import capture_logs

from app.contract.incident import Identifier
from app.incidents import models
from app.people import repository
from app.people.linking import match_key, normalise_identifier, normalise_name
from app.people.models import PersonMatchKey, PersonMerge
from tests.people.factories import (
    AMY,
    PAUL,
    child,
    days_before,
    make_incident,
    perpetrator,
    person,
    submit,
    victim,
)


def link_of(session: Session, incident_id: str, ref: str) -> models.IncidentPerson:
    row = session.scalar(
        select(models.IncidentPerson).where(
            models.IncidentPerson.incident_id == uuid.UUID(incident_id),
            models.IncidentPerson.ref == ref,
        )
    )
    assert row is not None
    return row


def survivor(session: Session, incident_id: str, ref: str) -> uuid.UUID:
    return repository.survivor_of(session, link_of(session, incident_id, ref).person_id)


def two(
    client: TestClient,
    submitter: dict[str, str],
    first: dict[str, Any],
    second: dict[str, Any],
    other: dict[str, Any] | None = None,
) -> tuple[str, str]:
    """Two incidents whose victims are ``first`` and ``second`` (perpetrators differ)."""
    other = other or perpetrator("Lee", "Varga", "1980-01-01")
    a = submit(
        client,
        submitter,
        make_incident(f"L-{uuid.uuid4().hex[:8]}", days_before(50), [first, other]),
    )
    b = submit(
        client,
        submitter,
        make_incident(
            f"L-{uuid.uuid4().hex[:8]}",
            days_before(0),
            [second, perpetrator("Noor", "Fielding", "1983-03-03")],
        ),
    )
    return a["incident_id"], b["incident_id"]


# --------------------------------------------------------------------------- normalising


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("Smith-Jones", "smithjones"),
        ("smith jones", "smithjones"),
        ("  SMITH JONES ", "smithjones"),
        ("Zoë", "zoe"),
        ("O'Brien", "obrien"),
        ("Straße", "strasse"),
        ("Ólafsdóttir", "olafsdottir"),
    ],
)
def test_names_are_normalised_for_matching(raw: str, normal: str) -> None:
    assert normalise_name(raw) == normal


def test_a_match_key_needs_given_and_family_name_and_date_of_birth() -> None:
    born = dt.date(1995, 4, 12)
    assert match_key("Amy", "Okafor", born) == match_key("AMY", "okafor", born)
    assert match_key("Amy", "Okafor", born) != match_key("Amy", "Okafor", dt.date(1995, 4, 13))
    assert match_key("Amy", None, born) is None
    assert match_key(None, "Okafor", born) is None
    assert match_key("Amy", "Okafor", None) is None
    assert match_key("Amy", "Okafor", born, unborn=True) is None
    assert match_key("-", "Okafor", born) is None
    key = match_key("Amy", "Okafor", born)
    assert key is not None
    assert "okafor" not in key  # a digest, never the name


@pytest.mark.parametrize(
    ("scheme", "raw", "stored"),
    [
        ("pnc", "08/552190B", "08/552190B"),
        ("pnc", "2008/0552190b", "08/552190B"),
        ("nhs", "943 476 5919", "9434765919"),
        ("nhs", "943-476-5919", "9434765919"),
        ("source", "p-77 1", "FORCE-A-RECORDS:P-771"),
    ],
)
def test_identifiers_are_normalised(scheme: str, raw: str, stored: str) -> None:
    identifier = Identifier(scheme=scheme, value=raw)  # type: ignore[arg-type]
    assert normalise_identifier(identifier, "force-a-records") == (scheme, stored)


# --------------------------------------------------------------------------- rules


def test_a_name_alone_never_links(
    client: TestClient, submitter: dict[str, str], session: Session
) -> None:
    a, b = two(client, submitter, victim("Amy", "Okafor"), victim("Amy", "Okafor"))
    assert survivor(session, a, "v1") != survivor(session, b, "v1")
    link = link_of(session, b, "v1")
    assert link.link_rule == "new"
    assert link.link_basis == "no identifier match; name or date of birth missing"


def test_name_and_date_of_birth_link_with_the_rule_recorded(
    client: TestClient, submitter: dict[str, str], session: Session
) -> None:
    a, b = two(
        client,
        submitter,
        victim("Amy", "Okafor-Reid", "1995-04-12"),
        victim(" AMY ", "okafor reid", "1995-04-12"),
    )
    assert survivor(session, a, "v1") == survivor(session, b, "v1")
    link = link_of(session, b, "v1")
    assert link.link_rule == "name_dob"
    assert link.link_basis == "no identifier match; name and date of birth match one person"
    # Weaker evidence: a record of its own, merged automatically (undoable).
    assert link.person_id != link_of(session, a, "v1").person_id
    merge = session.scalar(select(PersonMerge).where(PersonMerge.person_id == link.person_id))
    assert merge is not None
    assert (merge.kind, merge.into_id, merge.merged_by) == (
        "name_dob",
        link_of(session, a, "v1").person_id,
        "system:linking",
    )


def test_a_different_date_of_birth_does_not_link(
    client: TestClient, submitter: dict[str, str], session: Session
) -> None:
    a, b = two(
        client,
        submitter,
        victim("Amy", "Okafor", "1995-04-12"),
        victim("Amy", "Okafor", "1995-04-21"),
    )
    assert survivor(session, a, "v1") != survivor(session, b, "v1")


def test_strong_identifiers_link_and_record_the_scheme(
    client: TestClient, submitter: dict[str, str], session: Session
) -> None:
    a, b = two(
        client,
        submitter,
        victim("Amy", "Okafor", pnc="95/100001A"),
        victim("Aimee", "Okafore", pnc="1995/0100001a"),  # spelt differently; same PNC id
    )
    assert survivor(session, a, "v1") == survivor(session, b, "v1")
    link = link_of(session, b, "v1")
    assert (link.link_rule, link.link_basis) == ("identifier:pnc", "pnc matched")
    assert link.person_id == link_of(session, a, "v1").person_id


def test_pnc_wins_over_an_nhs_number_held_by_someone_else_and_names_are_not_used(
    client: TestClient, submitter: dict[str, str], session: Session
) -> None:
    a, b = two(
        client,
        submitter,
        victim("Amy", "Okafor", "1995-04-12", pnc="95/100001A"),
        victim("Beth", "Lindqvist", "1988-09-30", nhs="4010232137"),
    )
    third = submit(
        client,
        submitter,
        make_incident(
            "PREC-3",
            days_before(-1),
            [
                # Name and DOB are Beth's, the NHS number is Beth's, but the PNC is Amy's.
                victim("Beth", "Lindqvist", "1988-09-30", pnc="95/100001A", nhs="4010232137"),
                perpetrator(**PAUL),
            ],
        ),
    )["incident_id"]
    link = link_of(session, third, "v1")
    assert link.link_rule == "identifier:pnc"
    assert link.link_basis == (
        "pnc matched; nhs held by another person: not linked, name and date of birth not used"
    )
    assert survivor(session, third, "v1") == survivor(session, a, "v1")
    assert survivor(session, third, "v1") != survivor(session, b, "v1")
    # The NHS number stays with its holder: a record holds each identifier once.
    holders = session.scalar(select(func.count()).where(models.PersonIdentifier.scheme == "nhs"))
    assert holders == 1


def test_nhs_number_links_when_there_is_no_pnc_match(
    client: TestClient, submitter: dict[str, str], session: Session
) -> None:
    a, b = two(
        client,
        submitter,
        victim("Amy", "Okafor", nhs="943 476 5919"),
        victim("Amy", "Okafor", nhs="9434765919", pnc="95/100001A"),
    )
    link = link_of(session, b, "v1")
    assert link.link_rule == "identifier:nhs"
    assert link.link_basis == "nhs matched; learned pnc"
    # The PNC id was learned: a PNC-only incident now finds the same person.
    c = submit(
        client,
        submitter,
        make_incident(
            "LEARN-3", days_before(-2), [victim("A", "O", pnc="95/100001A"), perpetrator(**PAUL)]
        ),
    )["incident_id"]
    assert link_of(session, c, "v1").link_rule == "identifier:pnc"
    assert survivor(session, c, "v1") == survivor(session, a, "v1")


def test_source_ids_link_only_within_their_own_system(
    client: TestClient, submitter: dict[str, str], session: Session, make_key: Any
) -> None:
    a = submit(
        client,
        submitter,
        make_incident(
            "SRC-1", days_before(5), [victim("Amy", "O", source="P-1"), perpetrator(**PAUL)]
        ),
    )["incident_id"]
    b = submit(
        client,
        submitter,
        make_incident(
            "SRC-2", days_before(4), [victim("Amy", "O", source="p-1"), perpetrator(**PAUL)]
        ),
    )["incident_id"]
    assert link_of(session, b, "v1").link_rule == "identifier:source"
    assert survivor(session, a, "v1") == survivor(session, b, "v1")

    other_system = make_key("submitter", source_system="force-b-records")
    body = make_incident(
        "SRC-3", days_before(3), [victim("Amy", "O", source="P-1"), perpetrator(**PAUL)]
    )
    body["source"]["system"] = "force-b-records"
    c = submit(client, other_system, body)["incident_id"]
    assert survivor(session, c, "v1") != survivor(session, a, "v1")


def test_name_and_date_of_birth_do_not_link_a_person_with_a_different_pnc(
    client: TestClient, submitter: dict[str, str], session: Session
) -> None:
    a, b = two(
        client,
        submitter,
        victim(**AMY, pnc="95/100001A"),
        victim(**AMY, pnc="96/300003C"),
    )
    assert survivor(session, a, "v1") != survivor(session, b, "v1")
    link = link_of(session, b, "v1")
    assert link.link_rule == "new"
    assert (
        link.link_basis == "name and date of birth match a person with a different pnc: not linked"
    )


def test_an_unborn_child_is_never_linked_on_name(
    client: TestClient, submitter: dict[str, str], session: Session
) -> None:
    bodies = [
        make_incident(
            f"UNBORN-{n}",
            days_before(10 - n),
            [
                victim(**AMY),
                perpetrator(**PAUL),
                person("c1", "child", "Baby", "Okafor", unborn=True),
            ],
        )
        for n in range(2)
    ]
    a, b = (submit(client, submitter, body)["incident_id"] for body in bodies)
    assert survivor(session, a, "c1") != survivor(session, b, "c1")
    assert link_of(session, b, "c1").link_basis == "unborn"
    # The adults themselves linked on name and date of birth.
    assert survivor(session, a, "v1") == survivor(session, b, "v1")


def test_two_persons_of_one_incident_are_never_linked_to_the_same_record(
    client: TestClient, submitter: dict[str, str], session: Session
) -> None:
    twin = {"given": "Sam", "family": "Okafor", "dob": "2018-05-05"}
    incident_id = submit(
        client,
        submitter,
        make_incident(
            "TWIN-1",
            days_before(1),
            [victim(**AMY), perpetrator(**PAUL), child("c1", **twin), child("c2", **twin)],
        ),
    )["incident_id"]
    assert survivor(session, incident_id, "c1") != survivor(session, incident_id, "c2")
    assert link_of(session, incident_id, "c2").link_basis == (
        "name and date of birth match a person already in this incident"
    )


def test_linking_is_deterministic_and_stores_no_names_in_keys_or_logs(
    client: TestClient, submitter: dict[str, str], session: Session
) -> None:
    with capture_logs() as logs:
        a, b = two(client, submitter, victim(**AMY, nhs="4857773456"), victim(**AMY))
    assert survivor(session, a, "v1") == survivor(session, b, "v1")
    text = repr(logs)
    for secret in ("Okafor", "1995-04-12", "4857773456"):
        assert secret not in text
    keys = list(session.scalars(select(PersonMatchKey.key_sha256)))
    assert keys
    assert all("okafor" not in k for k in keys)


def test_a_revision_relinks_to_the_same_persons_without_new_records(
    client: TestClient, submitter: dict[str, str], session: Session
) -> None:
    body = make_incident(
        "REV-1",
        days_before(3),
        [victim(**AMY, pnc="95/100001A"), perpetrator("Unknown", "Male")],
    )
    created = submit(client, submitter, body)
    before = {ref: link_of(session, created["incident_id"], ref).person_id for ref in ("v1", "p1")}
    persons_before = session.scalar(select(func.count()).select_from(models.Person))
    body["victim_checklist"]["answers"]["stalking_harassment"] = "yes"
    r = client.post(
        f"/v1/incidents/{created['incident_id']}/revisions", json=body, headers=submitter
    )
    assert r.status_code == 201, r.text
    after = {ref: link_of(session, created["incident_id"], ref) for ref in ("v1", "p1")}
    assert after["v1"].person_id == before["v1"]
    assert after["v1"].link_rule == "identifier:pnc"
    # The perpetrator has no identifier and no date of birth: kept on the same record.
    assert after["p1"].person_id == before["p1"]
    assert after["p1"].link_rule == "revision"
    assert session.scalar(select(func.count()).select_from(models.Person)) == persons_before
