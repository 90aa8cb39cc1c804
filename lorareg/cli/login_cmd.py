"""``lorareg login`` and ``lorareg logout``: a short-lived registry token for this user, by browser approval.

::

    lorareg login [--registry URL] [--role ROLE] [--json] [--no-browser]
    lorareg logout [--registry URL]

``login`` runs the OAuth 2.0 device grant (RFC 8628) against the registry (``lorareg.client.device_login``):
it prints one block on stderr — open this page, enter this code — opens the page in a browser unless
``--no-browser``, and polls politely until the person approves (exit 0), denies (exit 1) or the code
expires (exit 1); Ctrl-C stops it (exit 130). The token goes to the credentials file
(``lorareg.client.credentials``: 0600, keyed by registry URL), and every command that talks to that
registry then uses it when neither ``--token`` nor ``LORAREG_TOKEN`` is given. ``--json`` prints
``{"registry", "expires_at", "roles"}``, never the token. ``logout`` forgets the token here and revokes it
on the registry (RFC 7009).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import typer

from lorareg.cli._output import error_line, print_json, safe_text
from lorareg.cli.registry_cmd import _REGISTRY

if TYPE_CHECKING:
    from lorareg.client.device_login import DeviceCode

INTERRUPTED_EXIT_CODE = 130  # 128 + SIGINT, as shells report it
_ROLE = typer.Option(
    None,
    "--role",
    help="Ask for a narrower role than yours (viewer, publisher, reviewer, admin); default: your role.",
    show_default=False,
)


def register(app: typer.Typer) -> None:
    """Add ``login`` and ``logout`` to the root app."""
    app.command("login")(login)
    app.command("logout")(logout)


def login(
    registry: str = _REGISTRY,
    role: str | None = _ROLE,
    as_json: bool = typer.Option(False, "--json", help="Print registry, expires_at and roles as JSON."),
    no_browser: bool = typer.Option(
        False, "--no-browser", help="Only print the page and code; open nothing."
    ),
) -> None:
    """Sign in to REGISTRY in a browser and store a short-lived token for this user.

    Prints a page and a code on stderr: open the page, sign in, check the code and approve.

    The token goes to ~/.config/lorareg/credentials.json (0600; $LORAREG_CONFIG, $XDG_CONFIG_HOME first).

    Every command for REGISTRY then uses it unless --token or LORAREG_TOKEN is given.

    Exit 0 approved, 1 denied or expired, 130 on Ctrl-C. lorareg logout forgets and revokes the token.
    """
    from lorareg.client import credentials, device_login

    with device_login.http_client(registry) as http:
        try:  # from the first request on: a Ctrl-C at any point says what happened
            code = device_login.request_code(http, registry, scope=role)
            _show(code, open_browser=not no_browser)
            token = device_login.poll_for_token(http, code)
        except KeyboardInterrupt:  # typer turns it into a silent exit 130; say what happened
            error_line("interrupted; no sign-in was stored")
            raise typer.Exit(INTERRUPTED_EXIT_CODE) from None
    path = credentials.store(registry, credentials.StoredLogin(token.token, token.expires_at, token.role))
    summary = {
        "registry": credentials.registry_key(registry),
        "expires_at": token.expires_at.isoformat(),
        "roles": [token.role],
    }
    if as_json:
        print_json(summary)
        return
    typer.echo(
        f"Signed in to {safe_text(summary['registry'])} as {safe_text(token.role)} until "
        f"{token.expires_at:%Y-%m-%d %H:%M} UTC; token stored in {path}"
    )


def logout(registry: str = _REGISTRY) -> None:
    """Forget the stored token of REGISTRY and revoke it on the registry."""
    from lorareg.client import credentials, device_login
    from lorareg.errors import RemoteError

    removed = credentials.delete(registry)
    url = safe_text(credentials.registry_key(registry))
    if removed is None:
        typer.echo(f"Not signed in to {url}; nothing to do.", err=True)
        return
    try:
        with device_login.http_client(registry) as http:
            device_login.revoke(http, removed.token)
    except RemoteError as e:
        typer.echo(f"Signed out here; the registry could not revoke the token ({safe_text(e)}).", err=True)
        return
    typer.echo(f"Signed out of {url}; the token is revoked.", err=True)


def _show(code: DeviceCode, *, open_browser: bool) -> None:
    """The one block a person needs, on stderr (stdout stays for --json)."""
    page, complete = safe_text(code.verification_uri), safe_text(code.verification_uri_complete)
    user_code, minutes = safe_text(code.user_code), max(1, code.expires_in // 60)
    sys.stderr.write(
        f"Open {page} and enter the code {user_code}\n"
        f"  (or open {complete})\n"
        f"Waiting for approval in the browser (the code expires in {minutes} min; Ctrl-C to stop)...\n"
    )
    sys.stderr.flush()
    if open_browser and complete.startswith(("http://", "https://")):
        import webbrowser  # only here: it costs start-up time every other command would pay

        webbrowser.open(complete)
