"""The counselor's page through Starlette's test client: fields, privacy, CSRF, sign-in, reload, release."""

from __future__ import annotations

import datetime as dt
import io
import logging
import os
import re
import socket
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import TODAY, Invoke, approve, fake_render, replace_in

import handouts.serve.app as app_module
from handouts.cli import cli
from handouts.errors import Problem
from handouts.render_service import RenderJob, RenderOutcome, ThreadExecutor, render_job
from handouts.serve.app import MAX_BODY_BYTES, ServeConfig, make_app
from handouts.serve.run import ServeOptions, allowed_hosts, host_problem
from handouts.serve.security import Accounts, SignIn, add_counselor, is_loopback, parse_auth_file

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

BASE = "http://127.0.0.1:8750"
FORM = {"language": "en", "brand": "example-clinic", "layout": "letter", "sections": ["mat", "overdose-safety"]}
Client = Callable[..., TestClient]


@pytest.fixture
def client(project: Path) -> Iterator[Client]:
    """Return a maker of test clients for an app over the temporary project, rendering with `render`."""
    made: list[TestClient] = []

    def make(
        render: Callable[[RenderJob], RenderOutcome] = fake_render,
        *,
        release: bool = False,
        accounts: Accounts | None = None,
        hosts: tuple[str, ...] = ("127.0.0.1:8750",),
    ) -> TestClient:
        config = ServeConfig(root=project, release=release, accounts=accounts, allowed_hosts=hosts)
        app = make_app(config, ThreadExecutor(2, render), clock=lambda: TODAY)
        test_client = TestClient(app, base_url=BASE, follow_redirects=False)
        made.append(test_client)
        return test_client

    yield make
    for test_client in made:
        test_client.close()


def token(page: str) -> str:
    """Return the CSRF token of a page's form."""
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, page
    return match[1]


def post(test_client: TestClient, **fields: object) -> Any:
    """Fill the form as a browser would (after loading the page) and submit it."""
    page = test_client.get("/")
    data = {**FORM, "csrf": token(page.text), **fields}
    return test_client.post("/handout", data={k: v for k, v in data.items() if v is not None})


def field_error(page: str, name: str) -> str:
    """Return the error text shown next to a field."""
    found = re.findall(rf'<span class="field-error" id="error-{name}(?:-\d+)?">([^<]*)</span>', page)
    assert found, f"no error next to {name}"
    return " ".join(found)


def chart_note(page: str) -> str:
    match = re.search(r'<textarea id="chart-note" readonly rows="\d+">([^<]*)</textarea>', page)
    assert match, page
    return match[1]


# -- the page and its fields ------------------------------------------------------------------------


def test_page_offers_sections_with_their_review_state_in_words(client: Client) -> None:
    page = client().get("/")
    assert page.status_code == 200
    text = page.text
    for section_id in ("mat", "overdose-safety", "detox", "self-help", "behavioral-therapy"):
        assert f'id="section-{section_id}" name="sections" value="{section_id}"' in text
    # The always-printed section is shown checked and cannot be unchecked.
    assert 'id="section-find-help" checked disabled' in text
    assert '<span class="state state-draft">Draft</span>' in text
    assert "Draft sample." in text
    for name in ("prepared_for", "counselor", "note", "next_visit", "next_visit_time"):
        assert f'<label for="{name}">' in text and f'id="{name}" name="{name}"' in text
    # Script only from the page's own files (the policy allows no other), never inline.
    assert re.findall(r"<script[^>]*>", text) == ['<script src="/static/serve.js" defer>']
    assert "</script>" in text and '<script src="/static/serve.js" defer></script>' in text
    assert "style=" not in text


def test_page_lists_spanish_titles_when_asked(client: Client) -> None:
    text = client().get("/", params={"language": "es"}).text
    assert "Medicamentos para el trastorno por consumo de opioides" in text
    assert '<option value="es" selected>Español (Spanish)</option>' in text


def test_approved_and_overdue_states_are_words(client: Client, run: Invoke) -> None:
    approve(run, "mat")
    text = client().get("/").text
    assert re.search(r'for="section-mat">[^<]+</label>\s*<span class="state state-approved">Approved</span>', text)


@pytest.mark.parametrize(
    ("fields", "name", "message"),
    [
        ({"brand": "nobody"}, "brand", "Choose one of the clinics listed."),
        ({"layout": "poster"}, "layout", "Choose one of the layouts listed."),
        ({"sections": []}, "sections", "Choose at least one section."),
        ({"sections": ["mat", "astrology"]}, "sections", "not in this project"),
        ({"note": "x" * 601}, "note", "601 characters; at most 600 fit the box."),
        ({"prepared_for": "x" * 700}, "prepared_for", "700 characters; at most 600"),
        ({"counselor": "Dana\x07"}, "counselor", "a control or invisible character"),
        ({"prepared_for": "Ana\nBell"}, "prepared_for", "Contains U+000A"),
        ({"next_visit": "12/03/2026"}, "next_visit", "Enter the date as YYYY-MM-DD"),
        ({"next_visit": "2026-02-30"}, "next_visit", "Enter the date as YYYY-MM-DD"),
        ({"next_visit": "2026-11-01"}, "next_visit", "That day has passed; today is 2026-11-23."),
        ({"next_visit": "2026-12-01", "next_visit_time": "25:00"}, "next_visit_time", "Enter the time as HH:MM"),
        ({"next_visit_time": "09:00"}, "next_visit", "Enter the date of the visit too."),
    ],
)
def test_each_field_error_comes_back_next_to_its_field(
    client: Client, fields: dict[str, object], name: str, message: str
) -> None:
    response = post(client(), **fields)
    assert response.status_code == 422
    page = response.text
    assert message.lower() in field_error(page, name).lower()
    assert f'href="#field-{name}"' in page  # the summary links to the field
    assert "Traceback" not in page


def test_language_not_offered_is_refused(client: Client) -> None:
    response = post(client(), language="fr")
    assert response.status_code == 422
    assert "Choose one of the languages listed." in response.text


def test_a_refused_form_keeps_what_was_typed(client: Client) -> None:
    page = post(client(), prepared_for="Rosalind", next_visit="2020-01-01").text
    assert 'value="Rosalind"' in page
    assert 'id="section-mat" name="sections" value="mat" checked' in page


def test_a_good_form_gives_a_pdf_link_and_a_chart_note(client: Client) -> None:
    test_client = client()
    response = post(test_client, prepared_for="Ana", counselor="Dana Reyes", next_visit="2026-12-02")
    assert response.status_code == 200
    page = response.text
    note = chart_note(page)
    assert note.startswith("Gave patient handout &#34;Opioid use disorder: treatment and support&#34; (draft sample")
    assert "Medicines for opioid use disorder; Overdose safety; Where to get help." in note
    assert re.search(r"Version [0-9a-f]{12}, English, US Letter, 2026-11-23, by Dana Reyes\.$", note)
    assert "Ana" not in note  # the patient's name is the PDF's, not the chart's
    link = re.search(r'href="(/pdf/[^"]+)"', page)
    assert link
    pdf = test_client.get(link[1])
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == 'inline; filename="handout-en-letter.pdf"'
    assert pdf.content.startswith(b"%PDF-fake")
    # Another browser (no cookie of this one) cannot read it.
    with TestClient(test_client.app, base_url=BASE) as other:
        assert other.get(link[1]).status_code == 404


# -- private by construction ------------------------------------------------------------------------


def test_every_response_is_no_store_with_a_strict_policy(client: Client) -> None:
    test_client = client()
    for response in (test_client.get("/"), post(test_client), test_client.get("/static/serve.css")):
        headers = response.headers
        assert headers["cache-control"] == "no-store"
        policy = headers["content-security-policy"]
        assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy
        assert headers["referrer-policy"] == "no-referrer"


def test_tailoring_travels_only_in_post_bodies(client: Client) -> None:
    test_client = client()
    assert test_client.get("/handout", params={"prepared_for": "Ana"}).status_code == 405
    # A name put in the page's address is neither shown nor used.
    assert "Zoltan" not in test_client.get("/", params={"prepared_for": "Zoltan"}).text


def test_bodies_are_capped_and_only_plain_forms_are_read(client: Client) -> None:
    test_client = client()
    csrf = token(test_client.get("/").text)
    big = test_client.post("/handout", data={**FORM, "csrf": csrf, "note": "x" * (MAX_BODY_BYTES + 10)})
    assert big.status_code == 413
    files = test_client.post("/handout", data={"csrf": csrf}, files={"note": ("a.txt", b"hello")})
    assert files.status_code == 415


def test_a_form_without_its_token_is_refused(client: Client) -> None:
    test_client = client()
    test_client.get("/")
    missing = test_client.post("/handout", data=FORM)
    assert missing.status_code == 403
    assert "This form had expired, so nothing was made." in missing.text
    # A token made for another browser does not pass either.
    with TestClient(test_client.app, base_url=BASE) as other:
        foreign = token(other.get("/").text)
    assert test_client.post("/handout", data={**FORM, "csrf": foreign}).status_code == 403


def test_other_host_names_and_proxies_are_refused_without_passwords(client: Client) -> None:
    test_client = client()
    assert test_client.get("/", headers={"host": "rebind.example:8750"}).status_code == 421
    proxied = test_client.get("/", headers={"x-forwarded-for": "10.0.0.9"})
    assert proxied.status_code == 403
    assert "--auth-file" in proxied.text


def test_any_host_but_loopback_needs_an_auth_file(tmp_path: Path) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.20")
    reason = host_problem(ServeOptions(host="0.0.0.0"))
    assert reason is not None and "--auth-file" in reason and "patients' names" in reason
    assert host_problem(ServeOptions(host="0.0.0.0", auth_file=tmp_path / "users")) is None
    assert allowed_hosts(ServeOptions()) == ("127.0.0.1:8750", "localhost:8750", "[::1]:8750")
    lan = allowed_hosts(ServeOptions(host="0.0.0.0", auth_file=tmp_path / "users"))
    assert "127.0.0.1:8750" in lan and f"{socket.gethostname().lower()}:8750" in lan
    assert not any("0.0.0.0" in host for host in lan)
    public = allowed_hosts(ServeOptions(host="0.0.0.0", auth_file=tmp_path / "u", public_names=("Handouts.Example",)))
    assert "handouts.example" in public and "handouts.example:8750" in public
    assert "127.0.0.2:8750" in allowed_hosts(ServeOptions(host="127.0.0.2"))
    assert "localhost.:8750" not in allowed_hosts(ServeOptions(host="localhost"))
    # Spellings that are loopback only to some resolvers, or not in this Python, are refused, not guessed.
    for host in ("127.1", "localhost.", "", "0", "0x7f000001"):
        assert host_problem(ServeOptions(host=host)) is not None, host


def test_serve_refuses_a_lan_host_without_auth_before_starting(run: Invoke) -> None:
    result = run("serve", "--host", "0.0.0.0")
    assert result.exit_code == 1
    assert "--host 0.0.0.0 lets other computers open the page" in result.output
    assert "Traceback" not in result.output


@pytest.mark.render  # starts the warm workers, which check the content
def test_serve_release_refuses_to_start_with_only_the_example_brand(run: Invoke) -> None:
    result = run("serve", "--release", "--workers", "1")
    assert result.exit_code == 1
    assert "cannot serve --release: every brand is a made-up example (example = true)" in result.output


# -- signing in -------------------------------------------------------------------------------------


def test_add_counselor_writes_an_argon2_hash_readable_by_its_owner_only(tmp_path: Path) -> None:
    users = tmp_path / "counselors"
    result = CliRunner().invoke(cli, ["add-counselor", str(users), "dana"], input="correct horse\ncorrect horse\n")
    assert result.exit_code == 0, result.output
    assert "Added dana" in result.output
    assert oct(users.stat().st_mode & 0o777) == "0o600"
    hashes, problems = parse_auth_file(users)
    assert problems == [] and hashes["dana"].startswith("$argon2id$")
    assert "correct horse" not in users.read_text()
    short = CliRunner().invoke(cli, ["add-counselor", str(users), "lee"], input="short\nshort\n")
    assert "at least 10 characters" in short.output


def test_add_counselor_never_rewrites_a_file_that_is_not_a_password_file(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("my shopping list\n")
    result = CliRunner().invoke(cli, ["add-counselor", str(notes), "dana"], input="correct horse\ncorrect horse\n")
    assert result.exit_code == 1
    assert "cannot update it" in result.output
    assert notes.read_text() == "my shopping list\n"


def test_sign_in_is_needed_and_works(client: Client, tmp_path: Path) -> None:
    users = tmp_path / "counselors"
    add_counselor(users, "dana", "correct horse battery")
    accounts = Accounts(parse_auth_file(users)[0])
    test_client = client(accounts=accounts, hosts=())
    assert test_client.get("/").headers["location"] == "/login"
    login = test_client.get("/login")
    csrf = token(login.text)
    wrong = test_client.post("/login", data={"csrf": csrf, "username": "dana", "password": "wrong password"})
    assert wrong.status_code == 401
    right = test_client.post("/login", data={"csrf": csrf, "username": "dana", "password": "correct horse battery"})
    assert right.status_code == 303
    page = test_client.get("/")
    assert page.status_code == 200 and "Signed in as dana" in page.text
    assert post(test_client).status_code == 200
    test_client.post("/logout", data={"csrf": token(page.text)})
    assert test_client.get("/").status_code == 303


def test_wrong_passwords_lock_only_the_address_they_come_from(tmp_path: Path) -> None:
    users = tmp_path / "counselors"
    add_counselor(users, "dana", "correct horse battery")
    now = [1000.0]
    accounts = Accounts(parse_auth_file(users)[0], clock=lambda: now[0])
    for _ in range(4):
        assert accounts.sign_in("dana", "guess", "203.0.113.9") == SignIn()
    # The fifth wrong try locks the stranger's address for a minute, and says so...
    assert accounts.sign_in("dana", "guess", "203.0.113.9").wait_seconds == 60.0
    assert accounts.sign_in("dana", "correct horse battery", "203.0.113.9").wait_seconds == 60.0
    # ...twice as long with each further wrong try...
    now[0] += 61
    assert accounts.sign_in("dana", "guess", "203.0.113.9").wait_seconds == 120.0
    assert accounts.sign_in("dana", "correct horse battery", "203.0.113.9").wait_seconds == 120.0
    # ...while the counselor at another computer signs in at once.
    assert accounts.name_wait("dana") == 0
    assert accounts.sign_in("dana", "correct horse battery", "192.0.2.20").session is not None
    # Quiet for the window, and the stranger's address is forgiven.
    now[0] += 601
    assert accounts.sign_in("dana", "correct horse battery", "203.0.113.9").session is not None


def test_many_wrong_passwords_for_a_name_slow_it_down_but_never_refuse_it(tmp_path: Path) -> None:
    users = tmp_path / "counselors"
    add_counselor(users, "dana", "correct horse battery")
    now = [1000.0]
    accounts = Accounts(parse_auth_file(users)[0], clock=lambda: now[0])
    for number in range(12):  # from twelve computers, each under its own limit
        assert accounts.sign_in("dana", "guess", f"198.51.100.{number}").session is None
    assert 0 < accounts.name_wait("dana") <= 10
    now[0] += accounts.name_wait("dana")
    assert accounts.sign_in("dana", "correct horse battery", "192.0.2.20").session is not None


def test_a_stranger_cannot_lock_the_counselor_out_through_the_page(client: Client, tmp_path: Path) -> None:
    users = tmp_path / "counselors"
    add_counselor(users, "dana", "correct horse battery")
    accounts = Accounts(parse_auth_file(users)[0])
    app = client(accounts=accounts, hosts=()).app
    stranger = TestClient(app, base_url=BASE, follow_redirects=False, client=("203.0.113.9", 5000))
    counselor = TestClient(app, base_url=BASE, follow_redirects=False, client=("192.0.2.20", 5000))

    def sign_in(test_client: TestClient, password: str) -> Any:
        csrf = token(test_client.get("/login").text)
        return test_client.post("/login", data={"csrf": csrf, "username": "dana", "password": password})

    assert [sign_in(stranger, "guess").status_code for _ in range(5)] == [401] * 4 + [429]
    refused = sign_in(stranger, "correct horse battery")
    assert refused.status_code == 429 and "Too many tries from this computer; try again in 1 minute." in refused.text
    assert sign_in(counselor, "correct horse battery").status_code == 303


def test_sixty_sign_ins_at_once_hash_at_most_two_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import concurrent.futures as cf

    users = tmp_path / "counselors"
    add_counselor(users, "dana", "correct horse battery")
    accounts = Accounts(parse_auth_file(users)[0])
    running, most = [0], [0]
    lock = threading.Lock()
    real = accounts.hasher

    class Counted:
        def verify(self, hashed: str, password: str) -> bool:
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
            try:
                time.sleep(0.2)  # a slow machine: many wait for the two hashing slots
                return bool(real.verify(hashed, password))
            finally:
                with lock:
                    running[0] -= 1

    monkeypatch.setattr(accounts, "hasher", Counted())
    with cf.ThreadPoolExecutor(60) as pool:
        answers = list(pool.map(lambda n: accounts.sign_in(f"made-up-{n}", "guess", f"10.0.0.{n}"), range(60)))
    assert most[0] == 2
    busy = [a for a in answers if a.busy]
    assert 0 < len(busy) <= 60 - 18 and all(a.session is None for a in answers)


def test_a_counselor_removed_from_the_password_file_is_signed_out_and_cannot_sign_in(tmp_path: Path) -> None:
    from handouts.serve.security import load_accounts

    users = tmp_path / "counselors"
    add_counselor(users, "dana", "correct horse battery")
    add_counselor(users, "lee", "staple battery horse")
    accounts = load_accounts(users)
    session = accounts.sign_in("lee", "staple battery horse", "192.0.2.20").session
    assert accounts.user(session) == "lee"
    kept = [line for line in users.read_text().splitlines() if not line.startswith("lee:")]
    users.write_text("\n".join(kept) + "\n")
    assert accounts.user(session) is None
    assert accounts.sign_in("lee", "staple battery horse", "192.0.2.20").session is None
    assert accounts.sign_in("dana", "correct horse battery", "192.0.2.20").session is not None


def test_a_password_file_others_can_change_is_refused(tmp_path: Path, run: Invoke) -> None:
    users = tmp_path / "counselors"
    add_counselor(users, "dana", "correct horse battery")
    users.chmod(0o666)
    result = run("serve", "--host", "0.0.0.0", "--auth-file", str(users), "--workers", "1")
    assert result.exit_code == 1
    assert f"{users}: others can change it (mode 666); run: chmod 600 {users}" in result.output
    assert "Traceback" not in result.output


# -- reload -----------------------------------------------------------------------------------------


def test_an_edit_is_offered_without_a_restart_and_a_broken_one_keeps_the_last_good(
    client: Client, project: Path
) -> None:
    test_client = client()
    assert "Medicines for opioid use disorder" in test_client.get("/").text
    mat = project / "content/en/mat.md"
    replace_in(mat, "title: Medicines for opioid use disorder", "title: Medicines that treat opioid use disorder")
    page = test_client.get("/").text
    assert "Medicines that treat opioid use disorder" in page
    replace_in(mat, "version: 3.0.0", "version: two")
    page = test_client.get("/").text
    assert "The latest changes to the handouts were not used" in page
    assert "content/en/mat.md: version:" in page
    assert "Medicines that treat opioid use disorder" in page  # the last good load still serves
    replace_in(mat, "version: two", "version: 2.0.1")
    page = test_client.get("/").text
    assert "were not used" not in page


# -- release ----------------------------------------------------------------------------------------


def test_release_offers_only_approved_sections_and_no_example_brand(
    client: Client, run: Invoke, own_brand: str
) -> None:
    page = client(release=True).get("/").text
    assert 'name="sections"' not in page
    unavailable = r'for="section-mat">Medicines for opioid use disorder</label>\s*<span class="state state-unavail'
    assert re.search(unavailable, page)
    assert '<span class="about" id="why-mat">Draft — not approved yet.</span>' in page
    # The example clinic is not offered; the clinic's own brand (here a copy of it) is.
    assert "made-up example" not in page
    assert f'<input type="hidden" name="brand" value="{own_brand}">' in page
    # Approved on the test's fixed today, the server's clock: a fixed date judged by the real one would
    # fall outside the review interval a year from now.
    approve(run, "mat", "find-help")
    test_client = client(release=True)
    page = test_client.get("/").text
    assert 'value="mat"' in page and 'value="detox"' not in page
    assert "Draft sample." not in page
    refused = post(test_client, brand=own_brand, sections=["mat", "detox"])
    assert refused.status_code == 422
    assert "Not offered: Withdrawal and detox (draft — not approved yet)." in field_error(refused.text, "sections")
    example = post(test_client, brand="example-clinic", sections=["mat"])
    assert "Choose one of the clinics listed." in field_error(example.text, "brand")
    assert post(test_client, brand=own_brand, sections=["mat"]).status_code == 200


# -- real renders -----------------------------------------------------------------------------------


@pytest.mark.render
def test_a_brochure_that_does_not_fit_says_by_how_much(client: Client) -> None:
    every = ["mat", "overdose-safety", "behavioral-therapy", "self-help", "detox"]
    response = post(client(render_job), layout="trifold", sections=every, language="es")
    assert response.status_code == 422
    message = field_error(response.text, "layout")
    assert message.startswith("Does not fit the Tri-fold brochure:")
    assert re.search(r"\d\.\d in too long", message)


@pytest.mark.render
def test_no_patient_name_reaches_a_file_or_a_log(
    client: Client, project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    name = "Quillonmarta" + os.urandom(4).hex()
    started = time.time()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    caplog.set_level(logging.DEBUG)
    try:
        test_client = client(render_job)
        response = post(test_client, prepared_for=name, counselor="Dana", note=f"See you soon, {name}.")
        assert response.status_code == 200
        link = re.search(r'href="(/pdf/[^"]+)"', response.text)
        assert link
        pdf = test_client.get(link[1]).content
    finally:
        root.removeHandler(handler)
    from pypdf import PdfReader

    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert name in text
    assert name not in caplog.text and name not in stream.getvalue()
    assert "GET / 200" in caplog.text and "POST /handout 200" in caplog.text
    assert name not in chart_note(response.text)
    # Everywhere this process could write: the project, the temporary folders (the test's among them),
    # the caches under home (fontconfig's), and the folder it runs in.
    places = [project, Path(tempfile.gettempdir()), Path.home() / ".cache", Path.cwd()]
    assert files_holding(name.encode(), since=started, places=places) == []
    # The search can tell: a file the test writes with the name is found.
    planted = project / "planted.txt"
    planted.write_bytes(b"x " + name.encode())
    assert files_holding(name.encode(), since=started, places=places) == [str(planted)]


def files_holding(needle: bytes, since: float, places: list[Path]) -> list[str]:
    """Return every file under `places` changed since `since` that holds `needle` (any file it can read)."""
    # GNU find lists the files changed since then (written or their inode changed) three times as fast
    # as a walk in Python; only those are read.
    when = f"@{since:.3f}"
    roots = sorted({str(place.resolve()) for place in places if place.is_dir()})
    command = ["find", *roots, "-type", "f"]
    command += ["(", "-newermt", when, "-o", "-newerct", when, ")", "-print0"]
    listed = subprocess.run(command, capture_output=True, check=False).stdout
    found = []
    for path in dict.fromkeys(filter(None, listed.split(b"\0"))):
        try:
            with open(path, "rb") as handle:
                if needle in handle.read(64 * 1024 * 1024):
                    found.append(os.fsdecode(path))
        except OSError:
            continue
    return found


# -- Infobutton -------------------------------------------------------------------------------------

ATOM = "{http://www.w3.org/2005/Atom}"
ICD10CM, RXNORM, SNOMED = "2.16.840.1.113883.6.90", "2.16.840.1.113883.6.88", "2.16.840.1.113883.6.96"


def infobutton(test_client: TestClient, code: str, system: str, **extra: str) -> Any:
    params = {"mainSearchCriteria.v.c": code, "mainSearchCriteria.v.cs": system, **extra}
    # EHRs send more than the search criteria; what the door does not use is ignored.
    params |= {"patientPerson.administrativeGenderCode.c": "F", "age.v.v": "34", "age.v.u": "a"}
    return test_client.get("/infobutton", params=params)


def atom_entries(response: Any) -> list[tuple[str, str, str]]:
    """Return (title, link, hreflang) of each entry of an Atom answer."""
    import xml.etree.ElementTree as ET

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    feed = ET.fromstring(response.content)  # noqa: S314 - our own answer
    assert feed.tag == f"{ATOM}feed"
    found = []
    for entry in feed.findall(f"{ATOM}entry"):
        link = entry.find(f"{ATOM}link")
        title = entry.find(f"{ATOM}title")
        assert link is not None and title is not None and link.get("type") == "application/pdf"
        found.append((title.text or "", link.get("href", ""), link.get("hreflang", "")))
    return found


def test_infobutton_answers_an_icd10_code_with_an_atom_feed(client: Client) -> None:
    entries = atom_entries(infobutton(client(), "F11.20", ICD10CM))
    links = [link for _, link, _ in entries]
    assert links[:2] == [f"{BASE}/handouts/en/mat.pdf", f"{BASE}/handouts/en/overdose-safety.pdf"]
    assert f"{BASE}/handouts/en/find-help.pdf" not in links
    # The dot is optional in ICD-10-CM codes as EHRs send them.
    assert atom_entries(infobutton(client(), "F1120", ICD10CM)) == entries


def test_infobutton_answers_an_rxnorm_code_in_json(client: Client) -> None:
    response = infobutton(client(), "7242", RXNORM, knowledgeResponseType="application/json")
    assert response.headers["content-type"] == "application/json"
    feed = response.json()["feed"]
    assert [e["title"]["_value"] for e in feed["entry"]] == ["Overdose safety"]
    assert feed["entry"][0]["link"][0]["href"] == f"{BASE}/handouts/en/overdose-safety.pdf"
    buprenorphine = infobutton(client(), "1819", RXNORM, knowledgeResponseType="application/json").json()
    assert [e["title"]["_value"] for e in buprenorphine["feed"]["entry"]] == ["Medicines for opioid use disorder"]


def test_infobutton_answers_in_spanish(client: Client) -> None:
    for code in ("es", "es-MX", "sp"):
        entries = atom_entries(infobutton(client(), "7242", RXNORM, **{"informationRecipient.languageCode.c": code}))
        assert entries == [("Seguridad ante una sobredosis", f"{BASE}/handouts/es/overdose-safety.pdf", "es")]


def test_infobutton_gives_an_empty_feed_for_an_unknown_code(client: Client) -> None:
    test_client = client()
    assert atom_entries(infobutton(test_client, "J45.909", ICD10CM)) == []
    assert atom_entries(infobutton(test_client, "F11.20", "1.2.3.4.5")) == []
    assert atom_entries(test_client.get("/infobutton")) == []
    page = infobutton(test_client, "J45.909", ICD10CM, knowledgeResponseType="text/html")
    assert page.status_code == 200 and "No handout here matches ICD-10-CM J45.909." in page.text


def test_infobutton_html_lists_links_to_the_pdfs(client: Client) -> None:
    page = infobutton(client(), "75544000", SNOMED, knowledgeResponseType="text/html").text
    assert f'<a href="{BASE}/handouts/en/mat.pdf" hreflang="en" type="application/pdf">' in page
    assert "Patient handouts for SNOMED CT 75544000" in page


def test_infobutton_in_a_release_lists_only_approved_sections(client: Client, run: Invoke, own_brand: str) -> None:
    approve(run, "overdose-safety", "find-help")
    entries = atom_entries(infobutton(client(release=True), "F11.20", ICD10CM))
    assert [title for title, _, _ in entries] == ["Overdose safety"]


@pytest.mark.render
def test_an_infobutton_link_returns_the_untailored_pdf(client: Client) -> None:
    test_client = client(render_job)
    link = atom_entries(infobutton(test_client, "7242", RXNORM, **{"informationRecipient.languageCode.c": "es"}))[0][1]
    pdf = test_client.get(link.removeprefix(BASE))
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    from pypdf import PdfReader

    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "Seguridad ante una sobredosis" in text
    assert test_client.get("/handouts/es/astrology.pdf").status_code == 404


def test_build_takes_the_next_visit_time_and_never_echoes_a_bad_one(run: Invoke) -> None:
    result = run("build", "--next-visit", "2026-12-01", "--next-visit-time", "25:61")
    assert result.exit_code == 2
    assert "Invalid value for --next-visit-time: no such time of day" in result.output
    assert "25:61" not in result.output
    shape = run("build", "--next-visit-time", "2pm")
    assert "expected a time as HH:MM, 24-hour" in shape.output and "2pm" not in shape.output


# -- hostile requests -------------------------------------------------------------------------------

FORM_TYPE = {"content-type": "application/x-www-form-urlencoded"}


def test_a_chunked_body_past_the_cap_is_refused_as_too_large(client: Client) -> None:
    test_client = client()
    csrf = token(test_client.get("/").text)

    def chunks() -> Iterator[bytes]:
        # No Content-Length: the cap must hold while the body streams in.
        yield f"csrf={csrf}&language=en&brand=example-clinic&sections=mat&note=".encode()
        for _ in range(MAX_BODY_BYTES // 1024 + 2):
            yield b"x" * 1024

    response = test_client.post("/handout", content=chunks(), headers=FORM_TYPE)
    assert response.status_code == 413
    assert response.text == "Too much data for one handout."
    assert response.headers["cache-control"] == "no-store"


def test_a_chunked_body_under_the_cap_is_read(client: Client) -> None:
    test_client = client()
    csrf = token(test_client.get("/").text)
    body = f"csrf={csrf}&language=en&brand=example-clinic&layout=letter&sections=mat&prepared_for=Ana".encode()
    response = test_client.post("/handout", content=iter([body[:10], body[10:]]), headers=FORM_TYPE)
    assert response.status_code == 200
    assert "Your handout is ready" in response.text


def test_an_error_in_a_handler_says_so_in_plain_words_and_logs_only_its_type(
    client: Client, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(spec: object, inputs: object, today: object) -> None:
        raise ValueError(f"cannot place {spec.tailoring.prepared_for}")  # type: ignore[attr-defined]

    monkeypatch.setattr(app_module, "compose_spec", broken)
    caplog.set_level(logging.INFO)
    response = post(client(), prepared_for="Quillonmarta")
    assert response.status_code == 500
    assert response.text == "Something went wrong on the server. Nothing was saved."
    assert response.headers["cache-control"] == "no-store"
    assert "Quillonmarta" not in caplog.text
    assert "internal error: ValueError" in caplog.text


@pytest.mark.parametrize("header", ["X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-IP", "Via"])
def test_any_proxy_header_is_refused_without_passwords(client: Client, header: str) -> None:
    assert client().get("/", headers={header: "1.2.3.4"}).status_code == 403


def test_sign_out_answers_only_this_computers_names(client: Client) -> None:
    test_client = client()
    csrf = token(test_client.get("/").text)
    response = test_client.post("/logout", data={"csrf": csrf}, headers={"host": "rebind.example:8750"})
    assert response.status_code == 421


def test_the_access_log_line_cannot_be_split_by_the_path(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="handouts.serve.access")
    client().get("/x%0a2026-01-01%2000:00:00%20GET%20/%20200")
    lines = [r.getMessage() for r in caplog.records if r.name == "handouts.serve.access"]
    assert lines and all("\n" not in line for line in lines)


def test_guesses_spread_over_other_names_do_not_unlock_a_counselor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import handouts.serve.security as security

    users = tmp_path / "counselors"
    add_counselor(users, "dana", "correct horse battery")
    monkeypatch.setattr(security, "MAX_FAILURE_NAMES", 3)
    accounts = Accounts(parse_auth_file(users)[0], clock=lambda: 1000.0)
    for number in range(12):
        assert accounts.sign_in("dana", "guess", f"198.51.100.{number}").session is None
    # Failures under many made-up names fill the table; dana's record must stay.
    for number in range(10):
        accounts.sign_in(f"nobody{number}", "guess", f"198.51.100.{number}")
    assert accounts.name_wait("dana") > 0
    assert len(accounts.names.failures) <= 3 and len(accounts.addresses.failures) <= 3


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
def test_an_auth_file_that_is_a_named_pipe_is_refused_not_waited_on(tmp_path: Path) -> None:
    pipe = tmp_path / "counselors"
    os.mkfifo(pipe)
    users, problems = parse_auth_file(pipe)
    assert users == {} and problems and "named pipe" in problems[0].message


def test_signing_out_ends_access_to_the_pdfs_this_browser_made(client: Client, tmp_path: Path) -> None:
    users = tmp_path / "counselors"
    add_counselor(users, "dana", "correct horse battery")
    add_counselor(users, "lee", "staple battery horse")
    test_client = client(accounts=Accounts(parse_auth_file(users)[0]), hosts=())

    def sign_in(name: str, password: str) -> None:
        csrf = token(test_client.get("/login").text)
        assert test_client.post("/login", data={"csrf": csrf, "username": name, "password": password}).is_redirect

    sign_in("dana", "correct horse battery")
    made = post(test_client, prepared_for="Ana")
    link = re.search(r'href="(/pdf/[^"]+)"', made.text)
    assert link and test_client.get(link[1]).status_code == 200
    test_client.post("/logout", data={"csrf": token(made.text)})
    # The next counselor at this shared computer finds the address in the history: it is gone.
    sign_in("lee", "staple battery horse")
    assert test_client.get(link[1]).status_code == 404


def test_serve_turns_off_core_dumps_that_would_write_a_patients_name_to_disk() -> None:
    import resource

    from handouts.serve.run import no_core_dumps

    before = resource.getrlimit(resource.RLIMIT_CORE)
    try:
        # Core dumps on first, as on a machine that allows them: else a no-op would pass. Raising the
        # hard limit needs root; without it, the soft one goes up to the hard one.
        try:
            resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        except (ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_CORE, (before[1], before[1]))
        on = resource.getrlimit(resource.RLIMIT_CORE)
        if on[0] in (0, 1):
            pytest.skip("core dumps cannot be turned on here (hard limit 0 and not root)")
        no_core_dumps()
        soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
        assert soft <= 1 and hard == on[1]
    finally:
        resource.setrlimit(resource.RLIMIT_CORE, before)


def test_a_reload_that_raised_is_tried_again(project: Path) -> None:
    from handouts.serve.state import ContentState, check_here

    calls = []

    def flaky(root: Path, today: object) -> list[object]:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the worker died")
        return check_here(root, today)  # type: ignore[arg-type]

    state = ContentState(project, lambda: TODAY, check=flaky)  # type: ignore[arg-type]
    snapshot, rejected = state.current()
    assert snapshot is None and "could not be checked (RuntimeError); trying again" in str(rejected[0])
    snapshot, rejected = state.current()
    assert snapshot is not None and rejected == [] and len(calls) == 2


def test_many_asking_at_once_for_a_generic_pdf_cause_one_render(client: Client) -> None:
    import concurrent.futures as cf

    renders = []

    def slow(job: RenderJob) -> RenderOutcome:
        renders.append(job.key)
        time.sleep(0.3)
        return fake_render(job)

    test_client = client(slow)
    with cf.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: test_client.get("/handouts/en/mat.pdf"), range(8)))
    assert [a.status_code for a in answers] == [200] * 8
    assert len(renders) == 1


def test_a_check_that_hangs_during_a_reload_never_holds_up_the_page(project: Path) -> None:
    from handouts.serve.state import check_here

    release = threading.Event()
    calls: list[float] = []

    def hangs_after_the_first(root: Path, today: dt.date) -> list[Problem]:
        calls.append(time.monotonic())
        if len(calls) > 1:
            release.wait(60)  # a check stuck on a hostile file
        return check_here(root, today)

    config = ServeConfig(root=project, allowed_hosts=("127.0.0.1:8750",), time_limit=3.0)
    app = make_app(config, ThreadExecutor(2, fake_render), clock=lambda: TODAY, check=hangs_after_the_first)
    with TestClient(app, base_url=BASE) as test_client:
        assert "Medicines for opioid use disorder" in test_client.get("/").text
        mat = project / "content/en/mat.md"
        replace_in(mat, "title: Medicines for opioid use disorder", "title: Medicines that work")
        for round_ in range(3):
            started = time.monotonic()
            page = test_client.get("/").text
            made = post(test_client)
            # The page and a PDF answer while the check hangs: only the first request after the save
            # waits (at most RELOAD_WAIT_SECONDS) for the new files; the others answer at once.
            assert time.monotonic() - started < (6 if round_ == 0 else 2)
            assert "Medicines for opioid use disorder" in page and "Medicines that work" not in page
            assert made.status_code == 200 and "/pdf/" in made.text
        while time.monotonic() - calls[1] < 3.5:
            time.sleep(0.1)
        page = test_client.get("/").text
        assert "checking the changed files did not finish within 3 seconds" in page
        assert "Medicines for opioid use disorder" in page
        release.set()
        deadline = time.monotonic() + 20
        while "Medicines that work" not in (page := test_client.get("/").text) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "Medicines that work" in page and "did not finish" not in page


def test_with_passwords_a_made_up_host_is_refused_and_never_reaches_the_feed(client: Client, tmp_path: Path) -> None:
    users = tmp_path / "counselors"
    add_counselor(users, "dana", "correct horse battery")
    options = ServeOptions(host="0.0.0.0", auth_file=users, public_names=("handouts.clinic.example",))
    test_client = client(accounts=Accounts(parse_auth_file(users)[0]), hosts=allowed_hosts(options))
    params = {"mainSearchCriteria.v.c": "F11.20", "mainSearchCriteria.v.cs": ICD10CM}
    evil = test_client.get("/infobutton", params=params, headers={"host": "evil.example"})
    assert evil.status_code == 421 and "evil.example" not in evil.text
    feed = test_client.get("/infobutton", params=params, headers={"host": "handouts.clinic.example"})
    assert feed.status_code == 200
    assert "http://handouts.clinic.example/handouts/en/mat.pdf" in [link for _, link, _ in atom_entries(feed)]


def test_a_browser_id_the_server_did_not_issue_is_replaced(client: Client) -> None:
    test_client = client()
    made = post(test_client)
    link = re.search(r'href="(/pdf/[^"]+)"', made.text)
    assert link
    issued = test_client.cookies["handouts_browser"]
    browser, _, signature = issued.partition(".")
    assert len(browser) == 43 and len(signature) == 43
    # A cookie the client made up (the old format, or a changed id under the same signature) is not taken.
    for forged in ("A" * 43, f"{'B' * 43}.{signature}"):
        other = TestClient(test_client.app, base_url=BASE, follow_redirects=False, cookies={"handouts_browser": forged})
        page = other.get("/")
        assert page.cookies.get("handouts_browser") not in (None, forged)
        assert other.get(link[1]).status_code == 404
    assert test_client.get(link[1]).status_code == 200


def test_one_browser_making_many_pdfs_never_evicts_another_browsers() -> None:
    from handouts.serve.app import MAX_PDFS_PER_BROWSER, PdfShelf

    shelf = PdfShelf()
    kept = shelf.put("browser-b", b"%PDF b", "b.pdf")
    tokens = [shelf.put("browser-a", b"%PDF a", "a.pdf") for _ in range(66)]
    assert shelf.get("browser-b", kept) is not None
    assert sum(shelf.get("browser-a", t) is not None for t in tokens) == MAX_PDFS_PER_BROWSER
    assert shelf.get("browser-a", tokens[-1]) is not None and shelf.get("browser-a", tokens[0]) is None
