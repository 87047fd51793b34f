"""What the page offers: the project's content and brands, reloaded when their files change, kept when broken."""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..compose import release_refusals
from ..errors import Problem, errors
from ..inputs import Inputs, load_inputs
from ..inputs.brands import brand_ids
from ..inputs.sections import languages
from ..inputs.settings import load_project
from ..layouts import LAYOUTS
from ..models import BASE_LANGUAGE, Brand, ReviewState, Section
from ..project import CONFIG_FILE, Project
from ..review import brand_release_problems, translation_state
from ..validation import check_project

# The folders whose files make a handout; a change to any of them is a new snapshot.
WATCHED = ("content", "brands", "templates", "styles")
# More files than this in the watched folders is not a handout project; stop looking, reload on every count change.
MAX_WATCHED_FILES = 5000
DESCRIPTION_CHARS = 160
DEFAULT_TITLE = "Patient handout"


@dataclass(frozen=True)
class Snapshot:
    """One consistent, checked load of the project: what every request of that moment is composed from."""

    project: Project
    inputs: Inputs
    languages: tuple[str, ...]
    brands: tuple[Brand, ...]
    loaded: dt.datetime
    titles: dict[str, str]  # language -> the handout's title, for chart notes and feeds


@dataclass(frozen=True)
class SectionChoice:
    """A checkbox on the page: a section in one language, its review state, and whether it may be chosen."""

    id: str
    title: str
    description: str
    state: ReviewState | None  # None: no file in this language
    always: bool
    offered: bool
    reason: str = ""
    # Said next to an offered section, e.g. that its translation is behind the English.
    note: str = ""
    # A folded brochure prints each section's brief: one without can go into every layout but that.
    brief: bool = True

    def layout_refusal(self, layout: str) -> str:
        """Say why this offered section cannot go into a layout, as compose refuses it, or return ""."""
        spec = LAYOUTS.get(layout)
        if spec is None or not spec.briefs or self.brief:
            return ""
        return "it has no brief, and a folded brochure prints only the briefs"


def files_fingerprint(root: Path) -> tuple[tuple[str, int, int, int], ...]:
    """Return each watched file's path, size, modification time and inode: cheap to take on every request."""
    found: list[tuple[str, int, int, int]] = []
    for name in (CONFIG_FILE, "pyproject.toml"):
        try:
            st = os.lstat(root / name)
            found.append((name, st.st_size, st.st_mtime_ns, st.st_ino))
        except OSError:
            pass
    for folder in WATCHED:
        # Links are not followed: the loaders refuse what lies outside the project anyway.
        for dirpath, dirnames, filenames in os.walk(root / folder):
            dirnames.sort()
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                found.append((path, st.st_size, st.st_mtime_ns, st.st_ino))
                if len(found) > MAX_WATCHED_FILES:
                    return tuple(found)
    return tuple(found)


def content_fingerprint(root: Path, today: dt.date) -> tuple[object, ...]:
    """Return what a reload compares: the day (review dates move with it) and every watched file."""
    return (today, files_fingerprint(root))


def check_here(root: Path, today: dt.date) -> list[Problem]:
    """Run `check` on a project folder in this process (a render worker, in the server: it draws the SVGs)."""
    project, problems = load_project(root)
    return problems if errors(problems) else check_project(project, today)


def load_snapshot(
    root: Path, today: dt.date, check: Callable[[Path, dt.date], list[Problem]] = check_here
) -> tuple[Snapshot | None, list[Problem]]:
    """Load and check the project; return it with its warnings, or None with every problem when check fails."""
    project, problems = load_project(root)
    if errors(problems):
        return None, problems
    problems = check(root, today)
    if errors(problems):
        return None, problems
    found = languages(project)
    ids = brand_ids(project)
    inputs = load_inputs(project, found, ids, today)
    brands = tuple(brand for brand, _ in (inputs.brands[i] for i in ids) if brand is not None)
    loaded = dt.datetime.now(dt.UTC)
    return Snapshot(project, inputs, tuple(found), brands, loaded, handout_titles(project, found)), problems


def handout_titles(project: Project, found: Sequence[str]) -> dict[str, str]:
    """Read each language's handout title from its string catalog (the project's, else the tool's)."""
    from ..inputs.catalogs import read_catalog

    titles = {}
    for language in found:
        for folder in project.template_dirs:
            path = folder / "i18n" / f"{language}.toml"
            if path.is_file():
                catalog, _ = read_catalog(project, path)
                if catalog and isinstance(catalog.get("title"), str):
                    titles[language] = str(catalog["title"])
                    break
    return titles


# A request after a save waits this long for the new files to be checked, so the page shows the
# edit; a check that takes longer runs on in the background while the last good content serves.
RELOAD_WAIT_SECONDS = 2.0


class ContentState:
    """The last good snapshot of a project, checked again in the background whenever its files change."""

    def __init__(
        self,
        root: Path,
        clock: Callable[[], dt.date] = dt.date.today,
        check: Callable[[Path, dt.date], list[Problem]] | None = None,
        *,
        time_limit: float = 120.0,
        wait: float = RELOAD_WAIT_SECONDS,
    ) -> None:
        self.root = root
        self.clock = clock
        self.check = check or check_here
        self.time_limit = time_limit
        self.wait = wait
        self.lock = threading.Lock()
        self.fingerprint: tuple[object, ...] = ()
        self.snapshot: Snapshot | None = None
        # Problems of the newest files when they fail check: shown on the page while the last good load serves.
        self.rejected: list[Problem] = []
        self.loading: threading.Event | None = None  # set when the reload in flight ends
        self.loading_since = 0.0

    def seed(self, fingerprint: tuple[object, ...], snapshot: Snapshot) -> None:
        """Start from a snapshot loaded and checked at start-up, taken when the files had this fingerprint."""
        with self.lock:
            self.fingerprint, self.snapshot = fingerprint, snapshot

    def current(self) -> tuple[Snapshot | None, list[Problem]]:
        """Return the snapshot to serve and the problems of a refused change; a changed file starts a reload."""
        today = self.clock()
        fingerprint = content_fingerprint(self.root, today)
        with self.lock:
            if fingerprint != self.fingerprint and self.loading is None:
                self.loading, self.loading_since = threading.Event(), time.monotonic()
                threading.Thread(
                    target=self._reload, args=(fingerprint, today, self.loading), name="reload", daemon=True
                ).start()
            loading, first, since = self.loading, self.snapshot is None, self.loading_since
        if loading is not None:
            # Nothing to serve yet: wait for the first load as long as a check may take. Else only the
            # first moments of a reload wait, so the page after a save shows it; later ones never do.
            loading.wait(self.time_limit if first else max(0.0, since + self.wait - time.monotonic()))
        with self.lock:
            rejected = list(self.rejected)
            if self.loading is not None and time.monotonic() - self.loading_since > self.time_limit:
                message = (
                    f"checking the changed files did not finish within {self.time_limit:g} seconds; "
                    "the last good content is served"
                )
                rejected.append(Problem(str(self.root), "", message))
            return self.snapshot, rejected

    def _reload(self, fingerprint: tuple[object, ...], today: dt.date, done: threading.Event) -> None:
        """Load and check the project off the request path; keep the result, or the last good one."""
        try:
            snapshot, problems = load_snapshot(self.root, today, self.check)
        except Exception as exc:  # a worker that died in check: listed, and tried again at the next request
            message = f"the changed files could not be checked ({type(exc).__name__}); trying again"
            with self.lock:
                self.rejected = [Problem(str(self.root), "", message)]
                self.loading = None
            done.set()
            return
        with self.lock:
            self.fingerprint = fingerprint
            if snapshot is None:
                self.rejected = errors(problems)
            else:
                self.snapshot, self.rejected = snapshot, []
            self.loading = None
        done.set()


def first_sentence(markdown: str, limit: int = DESCRIPTION_CHARS) -> str:
    """Return the first sentence of Markdown text's first paragraph as plain words, within `limit` characters."""
    from .infobutton import SENTENCE_END_RE, plain_blocks, shortened

    blocks = plain_blocks(markdown)
    if not blocks:
        return ""
    first = SENTENCE_END_RE.search(blocks[0])
    return shortened(blocks[0][: first.end()] if first else blocks[0], limit)


def section_choices(snapshot: Snapshot, language: str, today: dt.date, *, release: bool) -> list[SectionChoice]:
    """Return a checkbox for every section in `language`: offered exactly when compose would build it, else why not."""
    plan = snapshot.project.sections
    sections: dict[str, Section] = snapshot.inputs.sections.get(language, {})
    found = snapshot.inputs.problems.get(language, {})
    english = snapshot.inputs.sections.get(BASE_LANGUAGE, {})
    choices = []
    for section_id in plan.order:
        section = sections.get(section_id)
        always = section_id in plan.always
        if section is None:
            title = english[section_id].title if section_id in english else section_id
            # compose refuses a missing file and a file with errors alike; the words tell them apart.
            reason = "its file has problems (run: handouts check)" if errors(found.get(section_id, [])) else ""
            choices.append(SectionChoice(section_id, title, "", None, always, False, reason or "not translated yet"))
            continue
        state = section.review_state(today)
        lag = translation_state(section, english)
        behind = lag.status if lag else ""
        reason = ""
        if release and (refusals := release_refusals([section], today, english)):
            reason = refusal_words(section, today, behind, refusals)
        description = first_sentence(section.brief or section.body)
        note = behind if not reason else ""
        choices.append(
            SectionChoice(
                section_id, section.title, description, state, always, not reason, reason, note, bool(section.brief)
            )
        )
    return choices


def refusal_words(section: Section, today: dt.date, behind: str, refusals: Sequence[Problem]) -> str:
    """Say in a counselor's words why a release refuses a section (release_refusals decides that it does)."""
    # As release_refusals judges: by the later of `today` (a test's --today) and the real date.
    real = dt.date.today()
    today = max(today, real)
    state = section.review_state(today)
    words = []
    if behind:
        words.append(behind)
    if state == "changed":
        words.append("edited since approval")
    elif section.status != "approved":
        words.append("draft")
    elif section.approved_version is not None and section.approved_version != section.version:
        words.append(f"version {section.version}, but {section.approved_version} was approved")
    if section.is_overdue(today):
        words.append("past its review date")
    if section.last_reviewed > real:
        words.append("its review date is after today")
    if not words:
        # A rule this page has no words for yet: the library's own, without the reviewer's command.
        return "; ".join(p.message.split("; ")[0] for p in refusals)
    # A stale, edited or unapproved text waits for a reviewer's approval; an overdue one only for its review.
    pending = len(words) > section.is_overdue(today) + (section.last_reviewed > real)
    return " and ".join(words) + (" — not approved yet" if pending else "")


def offered_brands(snapshot: Snapshot, *, release: bool) -> list[Brand]:
    """Return the brands the page offers: all of them, or in a release those that are not examples."""
    return [b for b in snapshot.brands if not (release and brand_release_problems(b))]
