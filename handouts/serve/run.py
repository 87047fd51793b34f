"""Start the page: check who may reach it, warm the render workers, and run it on uvicorn."""

from __future__ import annotations

import datetime as dt
import logging
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import HandoutError, Problem, errors
from ..project import Project
from .security import is_loopback, load_accounts

LOG = logging.getLogger("handouts.serve")
LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
PUBLIC_NAME_RE = re.compile(rf"{LABEL}(?:\.{LABEL})*(?::[0-9]{{1,5}})?")


@dataclass(frozen=True)
class ServeOptions:
    """The `serve` command's options."""

    host: str = "127.0.0.1"
    port: int = 8750
    workers: int = 2
    release: bool = False
    auth_file: Path | None = None
    time_limit: float = 120.0
    # The names browsers use for this server (a reverse proxy's site name): accepted as Host, and used in links.
    public_names: tuple[str, ...] = ()
    # SMART EHR launch: the client id the EHR registered this server under, and the FHIR servers that may launch it.
    smart_client_id: str = ""
    smart_fhir: tuple[str, ...] = ()
    # CDS Hooks: each EHR allowed to call, as (iss, the address of its JWK set).
    cds_clients: tuple[tuple[str, str], ...] = ()


def host_problem(options: ServeOptions) -> str | None:
    """Return why the page may not listen on this host as asked, or None."""
    if options.auth_file is None and not options.smart_client_id and not is_loopback(options.host):
        return (
            f"--host {options.host} lets other computers open the page, and the page prints patients' names: "
            "give --auth-file FILE with a password for each counselor "
            "(make it with: handouts add-counselor FILE NAME), or --smart-client-id so only people the EHR "
            "signed in can use it, or leave --host out to serve this computer only"
        )
    if options.smart_client_id and not is_loopback(options.host) and not options.public_names:
        # The EHR sends the browser back here with a code, and the session cookie rides every request after.
        return (
            f"--host {options.host} with --smart-client-id needs --public-name: the https name a reverse proxy "
            "serves the page under (the EHR's redirect URL); plain http over the network would show the "
            "patient's chart to anyone listening"
        )
    if options.smart_client_id and not options.smart_fhir:
        return "--smart-client-id needs --smart-fhir URL: the FHIR server (the EHR's iss) that may launch this page"
    if options.smart_fhir and not options.smart_client_id:
        return "--smart-fhir needs --smart-client-id: the client id the EHR registered this page under"
    for url in options.smart_fhir:
        if (reason := _web_address_problem(url)) is not None:
            return f"--smart-fhir {reason}"
    for iss, jwks in options.cds_clients:
        if not iss or not jwks:
            shown = repr(iss or jwks)
            return f"--cds-client {shown}: expected ISS=JWKS_URL, the EHR's JWT issuer and the address of its keys"
        if (reason := _web_address_problem(jwks)) is not None:
            return f"--cds-client {reason}"
    for name in options.public_names:
        if not PUBLIC_NAME_RE.fullmatch(name):
            return f"--public-name {name!r}: expected a host name such as handouts.clinic.example, with :PORT if any"
    return None


def _web_address_problem(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment:
        return f"{url!r}: expected a web address such as https://ehr.example.org/fhir"
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        # A token and a patient's chart cross this link: only a test EHR on this computer goes without TLS.
        return f"{url!r}: use https (plain http is only for an EHR on this computer)"
    return None


def public_base(options: ServeOptions) -> str:
    """Return this page's address as an EHR calls it: the public name over https, else the local address."""
    if options.public_names:
        return f"https://{options.public_names[0]}"
    return page_url(options).rstrip("/")


def allowed_hosts(options: ServeOptions) -> tuple[str, ...]:
    """Return the Host headers to accept: this computer's names, and with passwords its network names too."""
    names: tuple[str, ...] = ("127.0.0.1", "localhost", "[::1]")
    if options.host.lower() not in names and options.host not in ("0.0.0.0", "::"):  # noqa: S104
        # Another address it listens on (127.0.0.2, a LAN address): the address printed at start must open the page.
        names += (f"[{options.host}]" if ":" in options.host else options.host.lower(),)
    if options.auth_file is not None or not is_loopback(options.host):
        # Reached from other computers: by this computer's own names, never by any name a request makes up
        # (it would land in the Infobutton feed's links, and DNS rebinding needs one).
        names += tuple(dict.fromkeys(n.lower() for n in (socket.gethostname(), socket.getfqdn()) if n))
    found = tuple(dict.fromkeys(f"{name}:{options.port}" for name in names))
    if options.port == 80:
        found += names
    # A proxy's site name arrives as typed in the browser, usually with no port.
    for public in options.public_names:
        found += (public.lower(),) if ":" in public else (public.lower(), f"{public.lower()}:{options.port}")
    return tuple(dict.fromkeys(found))


def page_url(options: ServeOptions) -> str:
    """Return the address to open, as a person on this or another computer types it."""
    host = options.host
    if host in ("0.0.0.0", "::"):  # noqa: S104 - shown to the user, not bound here
        host = socket.gethostname()
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{options.port}/"


def serve(
    project: Project,
    options: ServeOptions,
    *,
    clock: Callable[[], dt.date] = dt.date.today,
    announce: Callable[[str], None] = print,
) -> None:
    """Check the options and the content, start warm workers, and serve until stopped."""
    import uvicorn

    from ..pool import START_SECONDS, HealingPool
    from .app import ServeConfig, make_app
    from .connections import GuardedH11
    from .smart import SmartSettings
    from .state import check_here, content_fingerprint, load_snapshot, offered_brands

    if (reason := host_problem(options)) is not None:
        raise HandoutError(reason)
    no_core_dumps()
    accounts = load_accounts(options.auth_file) if options.auth_file is not None else None
    root = str(project.root)
    # The first look at the content runs here, so the workers start with the assets they will use.
    assets = _assets(project)
    executor = HealingPool(options.workers, root, assets, options.time_limit)
    # Checks of changed content run in a worker of their own: one that hangs (a hostile picture) holds
    # neither a render worker nor a request, however few workers there are.
    checker = HealingPool(1, root, assets, options.time_limit)
    try:

        def check(folder: Path, today: dt.date) -> list[Problem]:
            # In a worker: drawing the SVGs loads WeasyPrint, which this process never does; a check
            # past the time limit has its worker killed and is a problem of those files.
            try:
                found: list[Problem] = checker.call(check_here, folder, today).result(
                    timeout=options.time_limit + START_SECONDS
                )
            except TimeoutError:
                limit = f"{options.time_limit:g}"
                return [Problem(str(folder), "", f"check did not finish within {limit} seconds")]
            return found

        today = clock()
        fingerprint = content_fingerprint(project.root, today)
        snapshot, problems = load_snapshot(project.root, today, check)
        if snapshot is None:
            raise HandoutError("cannot serve: the content does not pass check", errors(problems))
        if options.release and not offered_brands(snapshot, release=True):
            # Said now, not as an empty page later: an IT lead starting a release server needs the clinic's brand.
            raise HandoutError(
                "cannot serve --release: every brand is a made-up example (example = true); "
                "put your clinic's details in a brand and remove that line"
            )
        base = public_base(options)
        smart = (
            SmartSettings(options.smart_client_id, options.smart_fhir, f"{base}/callback")
            if options.smart_client_id
            else None
        )
        config = ServeConfig(
            root=project.root,
            release=options.release,
            accounts=accounts,
            allowed_hosts=allowed_hosts(options),
            # Bound to every address: a browser may type any of this computer's addresses.
            local_addresses=options.host in ("0.0.0.0", "::"),  # noqa: S104
            public_name=options.public_names[0] if options.public_names else "",
            port=options.port,
            time_limit=options.time_limit,
            smart=smart,
            # Reached from other computers or through a proxy, with no passwords: only people the EHR signed in.
            launch_only=smart is not None
            and options.auth_file is None
            and (not is_loopback(options.host) or bool(options.public_names)),
            cds_clients=options.cds_clients,
        )
        app = make_app(config, executor, clock=clock, check=check, loaded=(fingerprint, snapshot))
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=options.host,
                port=options.port,
                # Our own access log (method, path, status); uvicorn's would add the query string.
                access_log=False,
                log_config=None,
                server_header=False,
                # A reverse proxy on this computer may say the browser used https (for Secure cookies).
                proxy_headers=True,
                forwarded_allow_ips="127.0.0.1",
                limit_concurrency=200,
                timeout_keep_alive=5,
                # A deadline for each request to arrive whole and a cap on connections per address:
                # slow clients are cut off instead of holding every place under the limit above.
                http=GuardedH11,
            )
        )
        _access_log()
        announce(f"Serving patient handouts at {page_url(options)}  (open it in a browser; Ctrl-C stops)")
        if options.release:
            announce("Release mode: only approved sections within their review date are offered.")
        if smart is not None:
            announce(f"SMART launch URL: {base}/launch  redirect URL: {base}/callback  (register both in the EHR)")
        if options.cds_clients:
            announce(f"CDS Hooks discovery: {base}/cds-services")
        server.run()
    finally:
        executor.close()
        checker.close()


def no_core_dumps() -> None:
    """Keep a crash of this process or a render worker from writing its memory, and a patient's name, to disk."""
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    # 1, not 0: a core file needs at least a page, and the kernel skips a piped dump (apport,
    # systemd-coredump) only at exactly 1. Workers inherit the limit.
    soft = 1 if hard == resource.RLIM_INFINITY or hard >= 1 else 0
    resource.setrlimit(resource.RLIMIT_CORE, (soft, hard))


def _access_log() -> None:
    # One line per request on stderr: when, method, path, status. Nothing a patient typed is in any of them.
    access = logging.getLogger("handouts.serve.access")
    if not access.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
        access.addHandler(handler)
    access.setLevel(logging.INFO)
    access.propagate = False


def _assets(project: Project) -> str:
    from ..inputs.assets import combine_digests, read_assets

    return combine_digests(read_assets(project)[0])
