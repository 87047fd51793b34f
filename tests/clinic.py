"""A clinic's own section and brand, as a test adds them to a project made by `handouts init`."""

from __future__ import annotations

from pathlib import Path

# A section a clinic writes itself. The clinic and its services are fictional.
OUR_SERVICES = """\
---
id: our-services
title: Care at our clinic
version: 1.0.0
language: en
status: draft
reviewers:
  - name: Riley Sample
    credentials: RN
    role: Fictional example reviewer, nursing
last_reviewed: 2026-11-20
next_review_due: 2027-11-20
sources:
  - title: "FindTreatment.gov (SAMHSA treatment locator)"
    url: https://findtreatment.gov/
key_points:
  - You can start medicine on the day you first come in.
  - You can bring a friend or family member to any visit.
  - Ask us for a ride if you have no way to get here.
brief: |
  You can start medicine on your first day here. You can bring someone you trust. Ask us for a ride if you need one.
---
Our team helps you start and stay on treatment. This page says what we offer and how to reach us.

### What we offer

- **Medicine.** You can start methadone or buprenorphine on the day you first come in.
- **Counseling.** You can see a counselor each week, alone or in a group.
- **Rides.** If you have no way to get here, ask us. We can help you get a ride.
- **Family visits.** You can bring a friend or family member to any visit.

### How to start

Call us or walk in. You do not need a letter from a doctor. You do not need to stop using first.
Bring your ID if you have one. If you do not have one, come anyway. We will help you.

### What you can do next

- Call us to ask for a first visit.
- Write down your questions and bring them.
- Tell someone you trust that you are coming.
"""

# A second brand of the clinic's own, with real-looking (fictional) details and example = false.
NORTH_BRAND = """\
name = "Northside Recovery Clinic"
short_name = "Northside"
phone = "(802) 555-0177"
address = "12 North Road, Anytown, VT 05001"
website = "https://example.org/northside"
logo = "logo.svg"
logo_alt = "Northside Recovery Clinic logo"
note = "A fictional clinic, made for the tests."

[colors]
primary = "#1d4e89"
accent = "#b5451b"
"""


def add_own_section_and_brand(root: Path) -> None:
    """Add our-services (declared in handouts.toml, before find-help) and a brand named north."""
    (root / "content/en/our-services.md").write_text(OUR_SERVICES, encoding="utf-8")
    settings = root / "handouts.toml"
    text = settings.read_text(encoding="utf-8")
    old = '"detox", "find-help"]'
    assert old in text
    settings.write_text(text.replace(old, '"detox", "our-services", "find-help"]'), encoding="utf-8")
    brand = root / "brands/north"
    brand.mkdir()
    (brand / "brand.toml").write_text(NORTH_BRAND, encoding="utf-8")
    logo = next((root / "brands").glob("*/logo.svg"))
    (brand / "logo.svg").write_bytes(logo.read_bytes())
