"""Check every content file and brand of a project, collecting all problems."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

from .errors import Problem
from .inputs.assets import read_assets
from .inputs.brands import brand_folders, brand_ids, load_brand, missing_toml_problem
from .inputs.catalogs import catalog_problems, catalog_reading_problems, read_catalogs
from .inputs.files import list_folder
from .inputs.sections import image_file_problems, languages, load_sections, section_images, section_path
from .models import BASE_LANGUAGE
from .project import Project
from .quality import section_warnings
from .review import review_problems, translation_problems


def check_project(project: Project, today: dt.date, *, strict: bool = False) -> list[Problem]:
    """Return every problem in content and brands; with `strict`, warnings become errors."""
    problems: list[Problem] = []
    # The listings that find languages and brands: a folder linked out, huge, or with a garbled name.
    for folder, where in ((project.content_dir, "content"), (project.brands_dir, "brands")):
        problems += list_folder(folder, where, project.root)[1] if folder.is_dir() else []
    found_languages = languages(project)
    if BASE_LANGUAGE not in found_languages:
        problems.append(
            Problem("content", "", f"no {BASE_LANGUAGE}/ folder; every section is written in English first")
        )
    loaded = {language: load_sections(project, language, today) for language in found_languages}
    english = loaded[BASE_LANGUAGE].sections if BASE_LANGUAGE in loaded else {}
    for language, content in loaded.items():
        sections = content.sections
        problems += content.all_problems
        for section_id in project.sections.order:
            if section_id in sections or section_id in content.problems:
                continue
            path = section_path(project, language, section_id)
            if language == BASE_LANGUAGE:
                problems.append(Problem(path, "", "file not found; every section needs an English version"))
            elif section_id in project.sections.always:
                # Every handout prints it: without it no handout in this language can be built.
                message = f"file not found; every handout prints {section_id}, so none can be built in {language}"
                problems.append(Problem(path, "", message))
            elif section_id in english:
                # Only a build that needs this section fails; the others may go ahead.
                original = english[section_id].version
                problems.append(
                    Problem(path, "", f"file not found; no translation of {section_id} {original} yet", "warning")
                )
        for section in sections.values():
            problems += image_file_problems(project, section)
            problems += review_problems(section, today, project.limits)
            problems += section_warnings(section, project.limits)
            if language != BASE_LANGUAGE:
                problems += translation_problems(section, english, strict=False)
    # Templates, styles and fonts: files that cannot be read, and fonts WeasyPrint would replace unseen.
    problems += read_assets(project, thorough=True)[1]
    catalogs, unreadable = read_catalogs(project)
    problems += catalog_problems(catalogs, unreadable, found_languages)
    problems += catalog_reading_problems(catalogs, project.limits)
    ids = brand_ids(project)
    if not ids:
        problems.append(Problem("brands", "", "no brand folder with a brand.toml"))
    problems += [missing_toml_problem(project, folder) for folder in brand_folders(project) if folder.name not in ids]
    drawings: dict[Path, tuple[str, str]] = {}  # SVG file -> the file and field to name when it cannot be drawn
    for brand_id in ids:
        brand, found = load_brand(project, brand_id)
        problems += found
        if brand is not None:
            drawings[project.brands_dir / brand_id / brand.logo] = (f"brands/{brand_id}/brand.toml", "logo")
    for content in loaded.values():
        for section in content.sections.values():
            drawings.update((path, (section.path, field)) for field, _, path in section_images(project, section))
    problems += drawing_problems(project, drawings)
    if strict:
        problems = [dataclasses.replace(p, severity="error") for p in problems]
    # A catalog is a template too: one that cannot be read is named once, not by both readers.
    return sorted(dict.fromkeys(problems), key=lambda p: (p.path, p.field))


def drawing_problems(project: Project, drawings: dict[Path, tuple[str, str]]) -> list[Problem]:
    """Draw each SVG picture with the renderer, as a build would; one that parses may still not draw."""
    from .output.pdf import picture_problem

    found = []
    for path, (file, field) in drawings.items():
        # A raster has no drawing step of its own; a missing picture is named by the input checks.
        if path.suffix.lower() != ".svg" or not path.is_file():
            continue
        reason = picture_problem(path, project.readable_dirs)
        if reason is not None:
            found.append(Problem(file, field, f"{path.name} cannot be drawn: {reason}"))
    return found
