"""What the renderer may read, autoescaping, and never leaving a partial PDF behind."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
from conftest import TODAY, Invoke, approve, days_ago, in_months, replace_in
from pdfcheck import page_texts

from handouts.atomic import write_atomic
from handouts.build import BuildRequest, build
from handouts.compose import HandoutSpec
from handouts.errors import HandoutError
from handouts.output.pdf import RefusedURL, fetcher_class
from handouts.project import Project

FORBIDDEN = ("file:///etc/hostname", "http://127.0.0.1:9/")


@pytest.fixture
def fetcher(project: Path) -> object:
    return fetcher_class()(Project(project).readable_dirs)


@pytest.mark.render
def test_fetcher_serves_project_files_and_data_uris(fetcher: object, project: Path) -> None:
    css = fetcher.fetch((project / "styles/base.css").as_uri())  # type: ignore[attr-defined]
    assert css.content_type == "text/css"
    assert b"Atkinson Hyperlegible" in css.read()
    data = fetcher.fetch("data:text/plain;base64,aGVsbG8=")  # type: ignore[attr-defined]
    assert data.read() == b"hello"


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/hostname",
        "http://127.0.0.1:9/",
        "https://127.0.0.1:9/logo.svg",
        "ftp://127.0.0.1:9/x",
    ],
)
@pytest.mark.render
def test_fetcher_refuses_outside_files_and_every_network_scheme(fetcher: object, url: str) -> None:
    with pytest.raises(RefusedURL, match="refused to load"):
        fetcher.fetch(url)  # type: ignore[attr-defined]


@pytest.mark.render
def test_fetcher_refuses_paths_that_climb_out_or_symlink_out(fetcher: object, project: Path) -> None:
    with pytest.raises(RefusedURL, match="outside the templates"):
        fetcher.fetch((project / "styles").as_uri() + "/../../../../etc/hostname")  # type: ignore[attr-defined]
    (project / "styles/escape.css").symlink_to("/etc/hostname")
    with pytest.raises(RefusedURL, match="outside the templates"):
        fetcher.fetch((project / "styles/escape.css").as_uri())  # type: ignore[attr-defined]


@pytest.mark.render
def test_fetcher_refuses_a_climb_that_the_fallback_to_the_tools_folder_would_let_out(project: Path) -> None:
    # The project's styles/ links to a folder deep inside it: the climb stays in brands/ from there,
    # but from the tool's styles/, which a file missing from the project's is read from, it reaches /.
    from handouts.project import tool_data_dir

    climb = len((tool_data_dir() / "styles").resolve().parts) - 1
    deep = project / "brands/example-clinic" / "/".join(["d"] * climb)
    deep.mkdir(parents=True)
    own = project / "styles"
    own.rename(project / "old-styles")
    own.symlink_to(deep)
    url = own.as_uri() + "/" + "%2e%2e/" * climb + "etc/hostname"
    fetcher = fetcher_class()(Project(project).readable_dirs, Project(project).fallbacks)
    with pytest.raises(RefusedURL, match="outside the templates"):
        fetcher.fetch(url)  # type: ignore[attr-defined]


@pytest.mark.parametrize("target", ["/etc/hostname", "../../../../../../etc/hostname", *FORBIDDEN])
def test_content_image_outside_the_project_is_a_check_error_and_stops_the_build(
    run: Invoke, project: Path, tmp_path: Path, target: str
) -> None:
    replace_in(project / "content/en/detox.md", "### What withdrawal", f"![A chart]({target})\n\n### What withdrawal")
    message = (
        f"content/en/detox.md: body: image {target!r} must be a file beside the section, not a URL or outside path"
    )
    assert message in run("check").output
    out = tmp_path / "out"
    result = run("build", "--sections", "detox", "-o", str(out))
    assert result.exit_code == 1
    assert result.output == f"Error: cannot build: 1 problem(s)\n{message}\n"
    assert not out.exists()


def test_reference_style_image_outside_the_project_is_a_check_error(run: Invoke, project: Path) -> None:
    path = project / "content/en/detox.md"
    replace_in(path, "### What withdrawal", "![A chart][c]\n\n### What withdrawal")
    path.write_text(path.read_text() + "\n[c]: ../../../../etc/hostname\n")
    result = run("check")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "content/en/detox.md: body: image '../../../../etc/hostname' must be a file beside the section, "
        "not a URL or outside path",
        "Aborted: 1 problem in 1 file.",
    ]


@pytest.mark.render
def test_content_image_symlinked_out_of_the_project_is_refused_by_the_renderer(
    run: Invoke, project: Path, tmp_path: Path
) -> None:
    (project / "content/en/chart.png").symlink_to("/etc/hostname")
    replace_in(project / "content/en/detox.md", "### What withdrawal", "![A chart](chart.png)\n\n### What withdrawal")
    out = tmp_path / "out"
    result = run("build", "--sections", "detox", "-o", str(out))
    assert result.exit_code == 1
    # Named inside the project, as every message names a file: no machine path.
    assert result.output == (
        "Error: cannot render: refused to load content/en/chart.png: outside the templates, styles, brands and "
        "content folders\n"
    )
    assert not out.exists()


@pytest.mark.render
def test_content_image_beside_the_section_is_printed(run: Invoke, project: Path, tmp_path: Path) -> None:
    logo = project / "brands/example-clinic/logo.svg"
    (project / "content/en/chart.svg").write_bytes(logo.read_bytes())
    replace_in(
        project / "content/en/detox.md",
        "### What withdrawal",
        "![A sun badge](chart.svg)\n\n### What withdrawal",
    )
    result = run("build", "--sections", "detox", "--html", "-o", str(tmp_path / "d.pdf"))
    assert result.exit_code == 0, result.output
    assert '<img src="content/en/chart.svg" alt="A sun badge"' in (tmp_path / "d.html").read_text()


@pytest.mark.parametrize("url", FORBIDDEN)
@pytest.mark.parametrize("form", ['<image href="{}" width="9" height="9"/>', "<style>@import '{}';</style>"])
def test_brand_logo_that_references_outside_resources_fails_check_and_build(
    run: Invoke, project: Path, tmp_path: Path, url: str, form: str
) -> None:
    replace_in(project / "brands/example-clinic/logo.svg", "</svg>", form.format(url) + "</svg>")
    message = f"brands/example-clinic/brand.toml: logo: 'logo.svg' loads '{url}'; a logo must be self-contained"
    assert message in run("check").output.splitlines()
    out = tmp_path / "out"
    result = run("build", "--sections", "detox", "-o", str(out))
    assert result.exit_code == 1
    assert result.output == f"Error: cannot build: 1 problem(s)\n{message}\n"
    assert not out.exists()


@pytest.mark.render
@pytest.mark.parametrize("url", FORBIDDEN)
def test_renderer_refuses_what_an_svg_asks_for_even_past_validation(project: Path, url: str) -> None:
    from handouts.output.pdf import render_pdf

    image = f'<image href="{url}" width="9" height="9"/>'
    svg = f'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9">{image}</svg>'
    (project / "brands/example-clinic/evil.svg").write_text(svg)
    html = '<html lang="en"><title>t</title><img src="brands/example-clinic/evil.svg" alt="x"></html>'
    with pytest.raises(HandoutError, match=f"cannot render: refused to load {url}"):
        render_pdf(html, base_url=project.as_uri() + "/", roots=Project(project).readable_dirs)


@pytest.mark.parametrize("logo", FORBIDDEN)
def test_brand_logo_field_with_a_url_fails_check(run: Invoke, project: Path, logo: str) -> None:
    replace_in(project / "brands/example-clinic/brand.toml", 'logo = "logo.svg"', f'logo = "{logo}"')
    result = run("check")
    assert result.exit_code == 1
    assert (
        f"brands/example-clinic/brand.toml: logo: expected a file name inside the brand folder, got '{logo}'"
        in result.output
    )


@pytest.mark.render
def test_raw_html_in_content_prints_as_text(run: Invoke, project: Path, tmp_path: Path) -> None:
    replace_in(
        project / "content/en/detox.md",
        "It is hard, but it passes.",
        "It is hard, but it passes. <b>x</b><script>1</script>",
    )
    out = tmp_path / "d.pdf"
    result = run("build", "--sections", "detox", "--html", "-o", str(out))
    assert result.exit_code == 0, result.output
    html = out.with_suffix(".html").read_text()
    assert "&lt;b&gt;x&lt;/b&gt;&lt;script&gt;1&lt;/script&gt;" in html
    assert "<script>" not in html


@pytest.mark.render
def test_brand_text_is_escaped(run: Invoke, project: Path, tmp_path: Path) -> None:
    replace_in(
        project / "brands/example-clinic/brand.toml",
        'short_name = "Maple Street (example)"',
        """short_name = 'M" data-x="1</div><i>'""",
    )
    out = tmp_path / "d.pdf"
    result = run("build", "--sections", "detox", "--html", "-o", str(out))
    assert result.exit_code == 0, result.output
    html = out.with_suffix(".html").read_text()
    # Also inside the attribute that carries the footer line: a quote must not end it.
    # The name sits between first-strong isolates (U+2068, U+2069), which print nothing.
    assert 'data-footer="Sample · \u2068M&#34; data-x=&#34;1&lt;/div&gt;&lt;i&gt;\u2069 · Handout ' in html
    assert 'data-x="1' not in html
    assert 'M" data-x="1</div><i> · Handout' in " ".join(page_texts(out))


def request(tmp_path: Path, out: Path) -> BuildRequest:
    return BuildRequest(HandoutSpec(sections=("detox",), brand="example-clinic", language="en", layout="letter"), out)


@pytest.mark.render
def test_failed_render_leaves_no_file_and_keeps_the_old_one(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "handout.pdf"
    out.write_bytes(b"%PDF- previous good copy")

    def broken_render(*args: object, **kwargs: object) -> object:
        raise HandoutError("cannot render: renderer crashed")

    with pytest.raises(HandoutError, match="renderer crashed"):
        build(Project(project), request(tmp_path, out), TODAY, render=broken_render)
    assert out.read_bytes() == b"%PDF- previous good copy"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["handout.pdf", "project"]


@pytest.mark.render
def test_interrupted_write_removes_the_temporary_file(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    out = tmp_path / "o" / "handout.pdf"

    def interrupted(src: str, dst: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build(Project(project), request(tmp_path, out), TODAY)
    assert list(out.parent.iterdir()) == []


@pytest.mark.render
def test_release_refuses_sections_past_their_review_date(run: Invoke, own_brand: str, tmp_path: Path) -> None:
    # Reviewed a few days ago by the real calendar, which is what a release checks.
    day = days_ago(3)
    approve(run, "detox", "find-help", date=day.isoformat(), today=None)
    out = tmp_path / "x.pdf"
    release = ("build", "--release", "--brand", own_brand, "--sections", "detox", "-o", str(out))
    assert run(*release, today=None).exit_code == 0
    out.unlink()
    # A later --today is only stricter: the day after the review falls due, the release is refused.
    due = in_months(day, 12)
    later = due + dt.timedelta(days=1)
    overdue = run(*release, today=later)
    assert overdue.exit_code == 1
    assert overdue.output.splitlines() == [
        "warning: --today is for tests; release rules use the later of it and today's real date",
        "Error: release refused: 2 problem(s)",
        f"content/en/detox.md: next_review_due: review overdue since {due}; a release needs a current review; "
        f'review it, then run: handouts approve detox --reviewer "Name, Credentials"',
        f"content/en/find-help.md: next_review_due: review overdue since {due}; a release needs a current review; "
        f'review it, then run: handouts approve find-help --reviewer "Name, Credentials"',
    ]
    assert not out.exists()
    # Without --release an overdue section still prints, and check calls it a warning.
    assert run("build", "--sections", "detox", "-o", str(out), today=later).exit_code == 0


@pytest.mark.parametrize("mode", [0o600, 0o664])
def test_write_atomic_keeps_the_mode_of_the_file_it_replaces(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "mat.md"
    path.write_bytes(b"old")
    path.chmod(mode)
    write_atomic(path, b"new")
    assert path.read_bytes() == b"new"
    assert stat.S_IMODE(path.stat().st_mode) == mode


def test_write_atomic_makes_new_files_0644_and_syncs_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    synced: list[bool] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    path = tmp_path / "new" / "handout.pdf"
    write_atomic(path, b"%PDF-")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    # The file's data first, then the folder that now names it.
    assert synced == [False, True]
