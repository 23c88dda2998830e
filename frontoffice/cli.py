"""The ``frontoffice`` command."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from frontoffice import __version__, aio
from frontoffice.bootstrap import Container, build_container
from frontoffice.config import ConfigError, Settings, load_settings
from frontoffice.domain.exceptions import DomainError
from frontoffice.domain.model import Role
from frontoffice.domain.permissions import SCOPES
from frontoffice.logs import configure_logging
from frontoffice.services.auth import generate_password
from frontoffice.services.context import Actor
from frontoffice.services.schemas import TokenIn, UserIn, UserProjectsIn
from frontoffice.store import migrate
from frontoffice.store.node_lock import DatabaseInUse, node_lock

console = Console()
err_console = Console(stderr=True)

# Exit statuses a script or a service manager can tell apart (docs/install.md).
EXIT_BAD_SETTING = 2
EXIT_NOT_MIGRATED = 3
EXIT_DATABASE_IN_USE = 4
# Seconds a stopping server waits for requests in flight (a command's answer takes milliseconds; a
# forwarded one at most the cluster's command timeout, 5 s).
GRACEFUL_SHUTDOWN_S = 10


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        err_console.print(f"[red]{exc}[/red]")
        sys.exit(2)


def _run(coro_fn: Any) -> Any:
    """Run ``coro_fn(container)`` and close the container; a domain error exits 1 with its message."""

    async def wrapper() -> Any:
        container = build_container(_settings())
        try:
            if not await migrate.is_up_to_date(container.engine):
                err_console.print(
                    "[red]The database is not migrated: run 'frontoffice db upgrade' first.[/red]"
                )
                sys.exit(3)
            return await coro_fn(container)
        finally:
            await container.close()

    try:
        return asyncio.run(wrapper())
    except DomainError as exc:
        err_console.print(
            f"[red]{exc.message}[/red] {json.dumps(exc.details, default=str) if exc.details else ''}"
        )
        sys.exit(1)


@click.group()
@click.version_option(__version__)
def main() -> None:
    """Frontoffice: omnichannel contact center with a built-in CRM."""


def _mount_planning() -> None:
    from frontoffice.wfm.cli import plan, simulate

    main.add_command(plan)
    main.add_command(simulate)


_mount_planning()


@main.group()
def config() -> None:
    """Configuration."""


@config.command("show")
def config_show() -> None:
    """Print the effective configuration, secrets masked."""
    table = Table("setting", "value", "environment variable")
    for name, value in _settings().masked().items():
        table.add_row(name, str(value), f"FRONTOFFICE_{name.upper()}")
    console.print(table)


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations (creates the SQLite file and data directory if needed)."""
    settings = _settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(settings.database_url)
    console.print(f"database at revision {migrate.head_revision(settings.database_url)}")


@db.command("status")
def db_status() -> None:
    """Show the database revision and whether migrations are pending."""
    settings = _settings()

    async def status() -> None:
        container = build_container(settings)
        try:
            current = await migrate.current_revision(container.engine)
        finally:
            await container.close()
        head = migrate.head_revision(settings.database_url)
        console.print(
            f"current: {current or '(empty)'}  head: {head}  {'up to date' if current == head else 'PENDING'}"
        )

    asyncio.run(status())


@main.command()
@click.option("--demo/--no-demo", default=True, help="Load demo data into an empty database.")
def init(demo: bool) -> None:
    """Prepare a node: migrate, create the first admin (password printed once), load demo data."""
    settings = _settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(settings.database_url)

    async def setup(c: Container) -> None:
        if await c.auth.count_users() > 0:
            console.print(
                "Existing data found; nothing reset. (Forgot the admin password? "
                "Run 'frontoffice user passwd admin'.)"
            )
            return
        password = generate_password()
        await c.auth.create_user(
            Actor.system(),
            UserIn(
                username="admin",
                display_name="Administrator",
                role=Role.ADMIN,
                language=settings.default_language,
                password=password,
            ),
        )
        lines = [f"  admin       {password}"]
        if demo:
            from frontoffice.services.demo import load_demo

            for user, pw in (await load_demo(c.contact_center, c.auth)).items():
                lines.append(f"  {user:<11} {pw}")
        console.print("[bold]First run: these sign-in passwords are shown only now — write them down.[/bold]")
        console.print("\n".join(lines))

    _run(setup)


@main.command()
@click.option("--host", default=None, help="Override FRONTOFFICE_HTTP_HOST.")
@click.option("--port", type=int, default=None, help="Override FRONTOFFICE_HTTP_PORT.")
def serve(host: str | None, port: int | None) -> None:
    """Run the web/API server (refuses an un-migrated database)."""
    import uvicorn

    from frontoffice.web.app import create_app

    overrides: dict[str, Any] = {}
    if host:
        overrides["http_host"] = host
    if port:
        overrides["http_port"] = port
    try:
        settings = load_settings(**overrides)
    except ConfigError as exc:
        err_console.print(f"[red]{exc}[/red]")
        sys.exit(2)
    configure_logging(settings.log_format, settings.log_level)

    async def run() -> None:
        # Taken here rather than in Container.start: the lock belongs to the serving process (tests
        # and tools start several containers on one database in one process, and the one-shot
        # commands build containers that never route), and a refusal must come before anything
        # binds a port or starts the media process. Held until the process ends.
        if settings.nats_url:
            # Several nodes on one database: the routing lease replaces the node lock
            # (services/cluster.py, docs/scaling.md).
            await serve_locked()
            return
        lock = node_lock(settings.database_url)
        try:
            await lock.acquire()
        except DatabaseInUse as exc:
            err_console.print(f"[red]{escape(str(exc))}[/red]")
            sys.exit(EXIT_DATABASE_IN_USE)
        try:
            await serve_locked()
        finally:
            await lock.release()

    async def serve_locked() -> None:
        container = build_container(settings)
        if not await migrate.is_up_to_date(container.engine):
            await container.close()
            err_console.print(
                "[red]The database is not migrated (or is newer than this program). "
                "Run 'frontoffice db upgrade' first.[/red]"
            )
            sys.exit(EXIT_NOT_MIGRATED)
        app = create_app(container)
        aio.settle_heap()
        aio.favour_the_loop()
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=settings.http_host,
                port=settings.http_port,
                log_config=None,
                # One line per request is logged by the app (web/middleware.py, Observe: route, status,
                # milliseconds); uvicorn's own access line would repeat it, its arguments built for
                # every request even while the logger is off.
                access_log=False,
                proxy_headers=False,
                server_header=False,
                # Our WebSocket messages are small JSON events; compressing them for every socket cost
                # more CPU than the bandwidth is worth on the LAN links operators sit on.
                ws_per_message_deflate=False,
                # A stop (systemd, a rolling upgrade) waits this long for requests in flight, then
                # closes what is left: a client's hung connection must not keep a node from stopping.
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
            )
        )
        console.print(
            f"Frontoffice {__version__} on {settings.public_url}  — sign in at {settings.public_url}/login, "
            f"API docs at {settings.public_url}/api/docs"
        )
        await server.serve()

    aio.run(run(), settings.event_loop)


@main.group()
def user() -> None:
    """Users."""


@user.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice([r.value for r in Role]), default=Role.AGENT.value)
@click.option("--name", "display_name", default="", help="Display name.")
@click.option("--language", type=click.Choice(["en", "ru"]), default="en")
@click.option("--password", default=None, help="Password (default: generate one and print it once).")
def user_add(username: str, role: str, display_name: str, language: str, password: str | None) -> None:
    """Create a user."""
    secret = password or generate_password()

    async def add(c: Container) -> None:
        created = await c.auth.create_user(
            Actor.system(),
            UserIn(
                username=username,
                display_name=display_name,
                role=Role(role),
                language=language,
                password=secret,
            ),
        )
        console.print(f"created user {created.username} (id {created.id}, {created.role.value})")
        if password is None:
            console.print(f"password (shown once): {secret}")

    _run(add)


@user.command("passwd")
@click.argument("username")
@click.option("--password", default=None, help="New password (default: generate one and print it once).")
def user_passwd(username: str, password: str | None) -> None:
    """Set a user's password (signs their browsers out)."""
    secret = password or generate_password()

    async def change(c: Container) -> None:
        await c.auth.set_password(Actor.system(), username, secret)
        console.print(f"password of {username} changed" + ("" if password else f"; new password: {secret}"))

    _run(change)


@user.command("list")
def user_list() -> None:
    """List users."""

    async def show(c: Container) -> None:
        codes = {p.id: p.code for p in await c.interactions.list_projects(Actor.system())}
        table = Table("id", "username", "name", "role", "language", "active", "projects")
        for u in await c.auth.list_users(Actor.system()):
            table.add_row(
                str(u.id),
                u.username,
                u.display_name,
                u.role.value,
                u.language,
                "yes" if u.is_active else "no",
                "all" if u.project_ids is None else " ".join(codes.get(p, str(p)) for p in u.project_ids),
            )
        console.print(table)

    _run(show)


@user.command("projects")
@click.argument("username")
@click.argument("codes", nargs=-1)
@click.option("--all", "all_projects", is_flag=True, help="Lift the limit: the user sees every project.")
def user_projects(username: str, codes: tuple[str, ...], all_projects: bool) -> None:
    """Show or set the projects (by code) a user is limited to; without codes, show them."""

    async def change(c: Container) -> None:
        system = Actor.system()
        users = {u.username: u.id for u in await c.auth.list_users(system)}
        if username not in users:
            raise DomainError(f"No such user {username!r}", error_id="no-such-user")
        projects = {p.code: p.id for p in await c.interactions.list_projects(system)}
        if codes or all_projects:
            unknown = [code for code in codes if code not in projects]
            if unknown:
                raise DomainError(f"No such project {unknown[0]!r}", error_id="no-such-project")
            chosen = None if all_projects else [projects[code] for code in codes]
            await c.auth.set_user_projects(system, users[username], UserProjectsIn(project_ids=chosen))
        ids = (await c.auth.user_projects(system, users[username])).project_ids
        names = {v: k for k, v in projects.items()}
        shown = "all projects" if ids is None else ", ".join(names.get(p, str(p)) for p in ids)
        console.print(f"{username}: {shown}")

    _run(change)


@user.command("token")
@click.argument("username")
@click.option("--name", default="cli", help="What the token is for.")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=click.Choice(sorted(SCOPES)),
    help="What the token may do (repeat for several); default admin: the user's full rights.",
)
def user_token(username: str, name: str, scopes: tuple[str, ...]) -> None:
    """Create an API token for a user (printed once)."""

    async def create(c: Container) -> None:
        users = {u.username: u.id for u in await c.auth.list_users(Actor.system())}
        if username not in users:
            raise DomainError(f"No such user {username!r}", error_id="no-such-user")
        data = TokenIn.model_validate({"name": name, "scopes": list(scopes) or ["admin"]})
        token = await c.auth.create_token(Actor.system(), data, user_id=users[username])
        console.print(f"token (shown once): {token.token}")
        console.print(f"scopes: {', '.join(token.scopes)}")

    _run(create)


@main.group()
def cluster() -> None:
    """Several nodes on one database (docs/scaling.md)."""


@cluster.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def cluster_status(as_json: bool) -> None:
    """Nodes with their heartbeats, the routing leader and the voice node that dials campaigns (each
    with its lease's age), and the bus's health."""
    from frontoffice.services.cluster_status import read_cluster_status

    async def show(c: Container) -> None:
        status = await read_cluster_status(c.sessions, c.settings.nats_url)
        if as_json:
            click.echo(json.dumps(status.as_dict(), default=str))
            return
        for name, lease, never, unheld in (
            ("leader", status.leader, "never elected", "no node routes now"),
            (
                "dialler",
                status.dialler,
                "never taken: no voice node has dialled campaigns",
                "no voice node dials campaigns now",
            ),
        ):
            if lease.since is None:
                console.print(f"{name}: ({never})")
            else:
                console.print(
                    f"{name}: {lease.node}  epoch {lease.epoch}  lease age {lease.age_s:.1f} s"
                    + ("" if lease.held else f"  (lease NOT held: {unheld})")
                )
        console.print(f"bus: {status.bus}")
        table = Table("node", "role", "epoch", "bus", "heartbeat age (s)", "version", "url")
        for n in status.nodes:
            table.add_row(
                n.node,
                n.role if n.alive else f"{n.role} (silent)",
                "" if n.epoch is None else str(n.epoch),
                n.bus,
                f"{n.heartbeat_age_s:.1f}",
                n.version,
                n.http_url,
            )
        console.print(table)

    _run(show)
