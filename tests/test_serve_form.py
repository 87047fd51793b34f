"""The counselor's one form: language in it, what is offered is what is built, and nothing typed is lost."""

from __future__ import annotations

import html
import re
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import AVERY, TODAY, Invoke, approve, fake_render, replace_in

from handouts.compose import HandoutSpec, compose_spec
from handouts.errors import HandoutError
from handouts.render_service import RenderJob, RenderOutcome, ThreadExecutor, render_job
from handouts.serve.app import ServeConfig, make_app
from handouts.serve.security import Accounts, add_counselor, parse_auth_file
from handouts.serve.state import load_snapshot, section_choices

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

BASE = "http://127.0.0.1:8750"
FORM = {"language": "en", "brand": "example-clinic", "layout": "letter", "sections": ["mat", "overdose-safety"]}
BEHIND = "translation behind English 3.0.1 — not approved yet"


@pytest.fixture
def clients(project: Path) -> Iterator[list[TestClient]]:
    """Collect the test clients a test makes, and close them after it."""
    made: list[TestClient] = []
    yield made
    for test_client in made:
        test_client.close()


def new_client(
    made: list[TestClient],
    root: Path,
    *,
    release: bool = False,
    accounts: Accounts | None = None,
    render: Callable[[RenderJob], RenderOutcome] = fake_render,
) -> TestClient:
    """Start an app over the project (a new one is a restarted server: new secret, no sessions)."""
    hosts = () if accounts else ("127.0.0.1:8750",)
    config = ServeConfig(root=root, release=release, accounts=accounts, allowed_hosts=hosts)
    test_client = TestClient(
        make_app(config, ThreadExecutor(2, render), clock=lambda: TODAY), base_url=BASE, follow_redirects=False
    )
    made.append(test_client)
    return test_client


def token(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, page
    return match[1]


def field_error(page: str, name: str) -> str:
    found = re.findall(rf'<span class="field-error" id="error-{name}(?:-\d+)?">([^<]*)</span>', page)
    assert found, f"no error next to {name}"
    return html.unescape(" ".join(found))


def ticked(page: str) -> list[str]:
    return re.findall(r'name="sections" value="([^"]+)" checked', page)


def chart_note(page: str) -> str:
    match = re.search(r'<textarea id="chart-note" readonly rows="\d+">([^<]*)</textarea>', page)
    assert match, page
    return html.unescape(match[1])


# -- one form, one state --------------------------------------------------------------------------------


def test_the_language_is_a_field_of_the_make_pdf_form(clients: list[TestClient], project: Path) -> None:
    page = new_client(clients, project).get("/").text
    form = page[page.index('<form method="post" action="/handout"') :]
    form = form[: form.index("</form>")]
    assert '<select id="language" name="language"' in form
    assert '<option value="es">Español (Spanish)</option>' in form
    assert 'name="action" value="language"' in form and "Show sections in this language" in form
    # Enter in a text field presses the form's first submit button: Make PDF, not the language button.
    assert form.index('value="make" hidden') < form.index('value="language"')
    assert '<form method="get"' not in page and "autofocus" not in page


def test_make_pdf_makes_the_handout_in_the_chosen_language(clients: list[TestClient], project: Path) -> None:
    test_client = new_client(clients, project)
    csrf = token(test_client.get("/").text)
    made = test_client.post("/handout", data={**FORM, "csrf": csrf, "language": "es", "action": "make"})
    assert made.status_code == 200
    assert ", Spanish, US Letter," in chart_note(made.text)
    printed = "Medicamentos para el trastorno por consumo de opioides; Seguridad ante una sobredosis; Dónde encontrar"
    assert printed in chart_note(made.text)


def test_showing_another_language_keeps_everything_typed(clients: list[TestClient], project: Path) -> None:
    test_client = new_client(clients, project)
    csrf = token(test_client.get("/").text)
    typed = {
        **FORM,
        "csrf": csrf,
        "language": "es",
        "layout": "large-print",
        "sections": ["mat", "detox"],
        "prepared_for": "Rosalind",
        "counselor": "Dana Reyes",
        "note": "Traiga su frasco de pastillas.\r\nLlame si tiene dudas.",
        "next_visit": "2026-12-02",
        "next_visit_time": "14:30",
        "action": "language",
    }
    response = test_client.post("/handout", data=typed)
    assert response.status_code == 200
    page = response.text
    assert "Your handout is ready" not in page and "Please check the form" not in page
    assert '<option value="es" selected>' in page
    # The focus comes back to the language, where the counselor left it.
    assert '<select id="language" name="language" aria-describedby="language-hint" autofocus>' in page
    assert "Síntomas de abstinencia y desintoxicación" in page
    assert ticked(page) == ["mat", "detox"]
    assert 'id="layout-large-print" name="layout" value="large-print" checked' in page
    for name, value in (("prepared_for", "Rosalind"), ("counselor", "Dana Reyes"), ("next_visit", "2026-12-02")):
        assert re.search(rf'id="{name}" name="{name}"[^>]* value="{value}"', page), name
    assert 'value="14:30"' in page
    assert ">Traiga su frasco de pastillas.\nLlame si tiene dudas.</textarea>" in page
    # And back: the same form, the same ticks, in English.
    again = test_client.post("/handout", data={**typed, "csrf": token(page), "language": "en"}).text
    assert "Withdrawal and detox" in again and ticked(again) == ["mat", "detox"] and 'value="Rosalind"' in again


def test_a_kit_ticks_its_sections_and_keeps_what_was_typed(clients: list[TestClient], project: Path) -> None:
    settings = Path(__file__).resolve().parents[1] / "handouts.toml"
    (project / "handouts.toml").write_text(settings.read_text(encoding="utf-8"), encoding="utf-8")
    test_client = new_client(clients, project)
    page = test_client.get("/").text
    assert re.search(r'name="kit" value="After an overdose"[^>]*>After an overdose</button>', page)
    fields = {**FORM, "csrf": token(page), "sections": ["self-help"], "prepared_for": "Rosalind"}
    response = test_client.post("/handout", data={**fields, "kit": "After an overdose"})
    assert response.status_code == 200
    assert ticked(response.text) == ["mat", "overdose-safety", "detox"]
    assert 'value="Rosalind"' in response.text and "Your handout is ready" not in response.text


# -- nothing typed is lost ------------------------------------------------------------------------------


def test_a_form_from_before_a_restart_comes_back_filled_with_a_fresh_token(
    clients: list[TestClient], project: Path
) -> None:
    before = new_client(clients, project)
    old = token(before.get("/").text)
    after = new_client(clients, project)  # the server restarted: a new secret, the old token means nothing
    after.cookies = before.cookies
    typed = {**FORM, "csrf": old, "language": "es", "prepared_for": "Rosalind", "note": "Llame el lunes."}
    response = after.post("/handout", data=typed)
    assert response.status_code == 403
    page = response.text
    assert "This form had expired, so nothing was made. Your entries are below; press Make PDF again." in page
    assert "Your handout is ready" not in page
    assert 'value="Rosalind"' in page and ">Llame el lunes.</textarea>" in page
    assert ticked(page) == ["mat", "overdose-safety"] and '<option value="es" selected>' in page
    fresh = token(page)
    assert fresh != old
    made = after.post("/handout", data={**typed, "csrf": fresh})
    assert made.status_code == 200 and ", Spanish, US Letter," in chart_note(made.text)


def test_signed_out_by_a_restart_the_entries_come_back_after_signing_in(
    clients: list[TestClient], project: Path, tmp_path: Path
) -> None:
    users = tmp_path / "counselors"
    add_counselor(users, "dana", "correct horse battery")

    def signed_in() -> TestClient:
        test_client = new_client(clients, project, accounts=Accounts(parse_auth_file(users)[0]))
        data = {"csrf": token(test_client.get("/login").text), "username": "dana", "password": "correct horse battery"}
        assert test_client.post("/login", data=data).status_code == 303
        return test_client

    before = signed_in()
    old = token(before.get("/").text)
    after = new_client(clients, project, accounts=Accounts(parse_auth_file(users)[0]))  # restarted: no sessions
    after.cookies = before.cookies
    typed = {**FORM, "csrf": old, "language": "es", "sections": ["mat", "detox"], "prepared_for": "Rosalind"}
    login = after.post("/handout", data=typed)
    assert login.status_code == 401
    assert "You were signed out (the server may have restarted), so nothing was made." in login.text
    assert '<input type="hidden" name="prepared_for" value="Rosalind">' in login.text
    carried = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">', login.text))
    sections = re.findall(r'<input type="hidden" name="sections" value="([^"]*)">', login.text)
    assert sections == ["mat", "detox"] and carried["language"] == "es"
    wrong = after.post("/login", data={**carried, "sections": sections, "username": "dana", "password": "guess"})
    assert wrong.status_code == 401 and 'name="prepared_for" value="Rosalind"' in wrong.text
    carried["csrf"] = token(wrong.text)
    back = after.post(
        "/login", data={**carried, "sections": sections, "username": "dana", "password": "correct horse battery"}
    )
    assert back.status_code == 200
    page = back.text
    assert "You are signed in again. Nothing was made yet" in page and "Signed in as dana" in page
    assert 'value="Rosalind"' in page and ticked(page) == ["mat", "detox"] and '<option value="es" selected>' in page
    made = after.post("/handout", data={**typed, "csrf": token(page)})
    assert made.status_code == 200 and ", Spanish, US Letter," in chart_note(made.text)


# -- one function decides what is offered and what is built ---------------------------------------------


def approve_in(run: Invoke, language: str, *section_ids: str) -> None:
    for section_id in section_ids:
        result = run("approve", section_id, "--lang", language, "--reviewer", AVERY, "--date", "2026-11-20", today=None)
        assert result.exit_code == 0, result.output


@pytest.fixture
def stale_spanish(project: Path, run: Invoke, own_brand: str) -> Path:
    """Approve detox in both languages, then edit the English one (3.0.1, approved again): Spanish is behind."""
    approve(run, "mat", "detox", "find-help", today=None)
    approve_in(run, "es", "mat", "detox", "find-help")
    detox = project / "content/en/detox.md"
    replace_in(detox, "version: 3.0.0", "version: 3.0.1")
    text = detox.read_text(encoding="utf-8")
    detox.write_text(text + "\nAsk us before you stop any medicine.\n", encoding="utf-8")
    approve(run, "detox", today=None)
    return project


def test_release_does_not_offer_a_translation_behind_english_and_refuses_it_in_the_same_words(
    clients: list[TestClient], stale_spanish: Path, own_brand: str
) -> None:
    test_client = new_client(clients, stale_spanish, release=True)
    page = test_client.get("/", params={"language": "es"}).text
    assert 'name="sections" value="detox"' not in page
    assert re.search(
        r'<input type="checkbox" id="section-detox" disabled aria-describedby="why-detox">\s*'
        r'<label lang="es" dir="auto" for="section-detox">Síntomas de abstinencia y desintoxicación</label>',
        page,
    )
    assert f'<span class="about" id="why-detox">{BEHIND[:1].upper()}{BEHIND[1:]}.</span>' in page
    assert 'name="sections" value="mat"' in page
    fields = {**FORM, "csrf": token(page), "brand": own_brand, "language": "es"}
    refused = test_client.post("/handout", data={**fields, "sections": ["mat", "detox"]})
    assert refused.status_code == 422
    assert field_error(refused.text, "sections") == (
        f"Not offered: Síntomas de abstinencia y desintoxicación ({BEHIND}). Choose from the sections listed."
    )
    assert test_client.post("/handout", data={**fields, "sections": ["mat"]}).status_code == 200
    # English detox, approved again, is offered and made.
    assert test_client.post("/handout", data={**fields, "language": "en", "sections": ["detox"]}).status_code == 200


def test_a_kit_says_which_of_its_sections_are_not_offered_here(
    clients: list[TestClient], stale_spanish: Path, own_brand: str
) -> None:
    settings = Path(__file__).resolve().parents[1] / "handouts.toml"
    (stale_spanish / "handouts.toml").write_text(settings.read_text(encoding="utf-8"), encoding="utf-8")
    test_client = new_client(clients, stale_spanish, release=True)
    page = test_client.get("/").text
    data = {**FORM, "csrf": token(page), "brand": own_brand, "language": "es", "prepared_for": "Rosalind"}
    response = test_client.post("/handout", data={**data, "kit": "after an overdose"})  # case does not count
    assert ticked(response.text) == ["mat"] and 'value="Rosalind"' in response.text
    note = re.search(r'<p class="hint" id="kit-note" role="status">([^<]*)</p>', response.text)
    assert note and html.unescape(note[1]) == (
        "Not ticked, as it is not offered here: Seguridad ante una sobredosis (draft — not approved yet); "
        f"Síntomas de abstinencia y desintoxicación ({BEHIND})."
    )


def test_without_release_a_stale_translation_is_offered_and_says_it_is_behind(
    clients: list[TestClient], stale_spanish: Path
) -> None:
    test_client = new_client(clients, stale_spanish)
    page = test_client.get("/", params={"language": "es"}).text
    assert 'name="sections" value="detox"' in page
    assert "<strong>Translation behind English 3.0.1.</strong>" in page
    made = test_client.post("/handout", data={**FORM, "csrf": token(page), "language": "es", "sections": ["detox"]})
    assert made.status_code == 200


def drop_brief(path: Path) -> None:
    """Take the brief out of a section's front matter, as a clinic's own section may lack one."""
    text = path.read_text(encoding="utf-8")
    cut = re.sub(r"^brief: \|\n(?:(?:  .*)?\n)+", "", text, count=1, flags=re.MULTILINE)
    assert cut != text
    path.write_text(cut, encoding="utf-8")


def test_every_offered_section_composes_and_no_other_does(stale_spanish: Path, own_brand: str) -> None:
    drop_brief(stale_spanish / "content/en/self-help.md")
    snapshot, _ = load_snapshot(stale_spanish, TODAY)
    assert snapshot is not None
    seen = set()
    for release in (False, True):
        for language in ("en", "es"):
            for layout in ("letter", "trifold"):
                for choice in section_choices(snapshot, language, TODAY, release=release):
                    if choice.always:
                        continue
                    spec = HandoutSpec((choice.id,), own_brand, language, layout, release=release)
                    try:
                        compose_spec(spec, snapshot.inputs, TODAY)
                        built = True
                    except HandoutError:
                        built = False
                    offered = choice.offered and not choice.layout_refusal(layout)
                    assert built == offered, (release, language, layout, choice)
                    seen.add((offered, bool(choice.layout_refusal(layout))))
    assert seen == {(True, False), (False, False), (False, True)}


def test_a_section_without_a_brief_is_not_made_into_a_brochure(clients: list[TestClient], project: Path) -> None:
    drop_brief(project / "content/en/self-help.md")
    test_client = new_client(clients, project)
    page = test_client.get("/").text
    assert re.search(r'id="about-self-help">Not in the tri-fold brochure: it has no brief\. ', page)
    data = {**FORM, "csrf": token(page), "sections": ["mat", "self-help"]}
    refused = test_client.post("/handout", data={**data, "layout": "trifold"})
    assert refused.status_code == 422
    assert field_error(refused.text, "sections") == (
        "Not in this layout: Self-help and support groups (it has no brief, and a folded brochure prints only the "
        "briefs). Choose another layout or other sections."
    )
    assert test_client.post("/handout", data={**data, "csrf": token(refused.text)}).status_code == 200


# -- the chart note ---------------------------------------------------------------------------------------


def test_the_chart_note_lists_every_printed_section_and_the_whole_name(
    clients: list[TestClient], project: Path
) -> None:
    test_client = new_client(clients, project)
    counselor = "Dana Reyes-Montgomery de la Cruz Villanueva, LCSW, LADC"
    data = {**FORM, "csrf": token(test_client.get("/").text), "counselor": counselor}
    page = test_client.post("/handout", data=data).text
    note = chart_note(page)
    assert ": Medicines for opioid use disorder; Overdose safety; Where to get help. Version " in note
    assert note.endswith(f", by {counselor}.")
    # The box is tall enough to show it all, and the Copy and Print buttons wait for JavaScript.
    rows = int(re.search(r'id="chart-note" readonly rows="(\d+)"', page)[1])  # type: ignore[index]
    assert rows * 60 >= len(note)
    assert '<p class="note-actions" hidden><button type="button" class="secondary" id="copy-note">' in page


# -- signing in ---------------------------------------------------------------------------------------------


def test_a_locked_computer_is_told_so_in_minutes_the_same_for_any_name(
    clients: list[TestClient], project: Path, tmp_path: Path
) -> None:
    users = tmp_path / "counselors"
    add_counselor(users, "dana", "correct horse battery")
    for name in ("dana", "nobody"):
        # A clock at which a 60-second lock comes back as 60.00000000000001 seconds: still 1 minute.
        accounts = Accounts(parse_auth_file(users)[0], clock=lambda: 10.530266755553463)
        test_client = new_client(clients, project, accounts=accounts)

        def sign_in(password: str, name: str = name, test_client: TestClient = test_client) -> tuple[int, str]:
            csrf = token(test_client.get("/login").text)
            answer = test_client.post("/login", data={"csrf": csrf, "username": name, "password": password})
            found = re.search(r'role="alert" id="login-error">([^<]*)<', answer.text)
            return answer.status_code, found[1] if found else ""

        wrong = (401, "That name and password do not match.")
        assert [sign_in("guess") for _ in range(4)] == [wrong] * 4
        # The try that locks says so, and so does every try while it lasts, the right password too.
        locked = (429, "Too many tries from this computer; try again in 1 minute.")
        assert sign_in("guess") == locked
        assert sign_in("correct horse battery") == locked


def test_a_brochure_hint_says_a_long_note_takes_room(clients: list[TestClient], project: Path) -> None:
    test_client = new_client(clients, project)
    page = test_client.post(
        "/handout",
        data={**FORM, "csrf": token(test_client.get("/").text), "layout": "trifold", "action": "language"},
    ).text
    hint = re.search(r'<span class="hint" id="note-hint">([^<]*)</span>', page)
    assert hint and hint[1].startswith("Up to 600 characters. The brochure") and "fewer sections" in hint[1]
    assert 'data-note-hint="Up to 600 characters."' in page  # letter's, for the script to switch to


@pytest.mark.render
def test_a_brochure_with_a_note_that_does_not_fit_says_to_shorten_the_note(
    clients: list[TestClient], project: Path
) -> None:
    test_client = new_client(clients, project, render=render_job)
    every = ["mat", "overdose-safety", "behavioral-therapy", "self-help", "detox"]
    data = {**FORM, "csrf": token(test_client.get("/").text), "layout": "trifold", "language": "es"}
    response = test_client.post("/handout", data={**data, "sections": every, "note": "Llame el lunes. " * 37})
    assert response.status_code == 422
    message = field_error(response.text, "layout")
    assert message.startswith("Does not fit the Tri-fold brochure:")
    assert message.endswith(". Shorten the note, choose fewer sections, or the Letter layout.")


def test_a_version_bumped_without_a_review_is_not_offered_in_a_release(
    clients: list[TestClient], project: Path, run: Invoke, own_brand: str
) -> None:
    approve(run, "mat", "overdose-safety", "find-help", today=None)
    replace_in(project / "content/en/mat.md", "version: 3.0.0", "version: 3.0.1")  # the text as approved
    test_client = new_client(clients, project, release=True)
    page = test_client.get("/").text
    assert '<span class="about" id="why-mat">Version 3.0.1, but 3.0.0 was approved — not approved yet.</span>' in page
    fields = {**FORM, "csrf": token(page), "brand": own_brand}
    refused = test_client.post("/handout", data=fields)
    assert "(version 3.0.1, but 3.0.0 was approved — not approved yet)" in field_error(refused.text, "sections")
    assert test_client.post("/handout", data={**fields, "sections": ["overdose-safety"]}).status_code == 200
