"""`PokemonBot`: the discord.py client with its dependencies, cogs and one-time setup."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import discord
from discord.ext import commands

from bot.buttons import cancel_buttons, result_buttons, upscaled_buttons
from bot.command_permissions import CommandPermissions
from bot.jobs.service import JobService
from bot.messaging import PROGRESS_INTERVAL
from bot.moderation import Overwrite
from bot.presentation import Presentation
from bot.router import route
from bot.settings import Settings
from bot.sync import hash_file_for, sync_if_changed
from bot.translator import CatalogTranslator
from bot.tree import PokemonTree
from generation.tasks import Tasks

if TYPE_CHECKING:
    from generation.generator import Generator
    from storage import Storage

log = logging.getLogger(__name__)

# Loaded in this order in `setup_hook`; one cog per feature.
EXTENSIONS: tuple[str, ...] = (
    "bot.cogs.generate",
    "bot.cogs.reactions",
    "bot.cogs.ratelimit",
    "bot.cogs.usage",
    "bot.cogs.stats",
    "bot.cogs.queue",
    "bot.cogs.blocklist",
    "bot.cogs.privacy",
    "bot.cogs.settings",
    "bot.cogs.history",
    "bot.cogs.about",
)

EXIT_OK = 0
EXIT_WORKER_FATAL = 3
RETENTION_INTERVAL = 3600.0  # seconds between prompt-retention sweeps while running


def bot_intents() -> discord.Intents:
    """Guilds (channels, roles, permissions) and guild reactions: nothing privileged."""
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_reactions = True
    return intents


class PokemonBot(commands.AutoShardedBot):
    """Sharded automatically (Discord says how many shards at login; one below 2,500 servers),
    so one process keeps working as the bot grows. The bot: slash commands only, no mentions ever resolved unless a message asks for one."""

    settings: Settings
    store: Storage
    generator: Generator
    owner_ids: frozenset[int]
    service: JobService
    retention_interval: float = RETENTION_INTERVAL

    def __init__(
        self,
        *,
        settings: Settings,
        store: Storage,
        generator: Generator,
        progress_interval: float = PROGRESS_INTERVAL,
        sync_commands: bool = True,
    ) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,  # unused: no message content intent
            help_command=None,
            intents=bot_intents(),
            allowed_mentions=discord.AllowedMentions.none(),
            tree_cls=PokemonTree,
        )
        self.settings = settings
        self.store = store
        self.generator = generator
        # BotBase declares a mutable `Collection[int] | None`; ours is always a frozenset, set here
        # once (discord.py only fills it in from `is_owner`, which slash commands never call).
        self.owner_ids = frozenset(  # pyright: ignore[reportIncompatibleVariableOverride]
            settings.pokemon_owner_ids
        )
        self.service = JobService(
            store=store,
            generator=generator,
            settings=settings,
            client=self,
            # Every text, embed and button of a job's message; the buttons are the
            # interaction side's (`bot.buttons`), wired in here so neither side imports the other.
            presenter=Presentation(
                cancel_buttons=cancel_buttons,
                result_buttons=result_buttons,
                upscaled_buttons=upscaled_buttons,
            ),
            progress_interval=progress_interval,
        )
        # /pokemon's Integrations settings, which 🔁 and the buttons obey (see its module).
        self.command_permissions = CommandPermissions(self, dev_guild=settings.pokemon_dev_guild)
        self.service.command_permissions = self.command_permissions
        self.tasks = Tasks("bot")
        self.sync_commands = sync_commands
        self.exit_code = EXIT_OK
        self._shutdown: asyncio.Task[None] | None = None
        self._ready_logged = False

    @property
    def commands_hash_file(self) -> Path:
        return hash_file_for(Path(self.settings.pokemon_db))

    async def setup_hook(self) -> None:
        """One-time setup after login, before the gateway connects (so before any command)."""
        await self.tree.set_translator(CatalogTranslator())
        for name in EXTENSIONS:
            await self.load_extension(name)
        self.generator.on_fatal = self._worker_fatal
        # Prompts are kept no longer than the retention period: swept now and every hour.
        await self.apply_retention()
        self.tasks.spawn(self._retention_loop(), name="prompt-retention")
        # Fast and silent (no Discord call): the gateway connects right after.
        await self.service.resume(max_age=self.settings.pokemon_resume_max_age)
        if self.sync_commands:
            assert self.application_id is not None
            await sync_if_changed(
                self.tree,
                self.commands_hash_file,
                application_id=self.application_id,
                guild_id=self.settings.pokemon_dev_guild,
            )

    async def on_ready(self) -> None:
        self.service.connected.set()  # resumed jobs may now update their messages
        # on_ready fires again after every reconnect; say "ready" once.
        if self._ready_logged:
            return
        self._ready_logged = True
        names = ", ".join(f"{g.name} ({g.id})" for g in self.guilds) or "none yet"
        log.info("ready as %s in guilds: %s", self.user, names)

    async def on_interaction(self, interaction: discord.Interaction[PokemonBot]) -> None:
        """Every press of a button the bot ever posted, whatever process posted it, and any
        other component: answered by `bot.router` (slash commands go to the tree)."""
        await route(interaction)

    async def on_raw_app_command_permissions_update(
        self, payload: discord.RawAppCommandPermissionsUpdateEvent
    ) -> None:
        """An admin changed a command's (or the whole app's) Integrations settings."""
        if payload.application_id != self.application_id:
            return
        overwrites = [Overwrite(p.id, p.type.value, p.permission) for p in payload.permissions]
        self.command_permissions.update(payload.guild.id, payload.target_id, overwrites)

    async def on_guild_remove(self, guild: discord.Guild) -> None:
        self.command_permissions.forget(guild.id)

    async def apply_retention(self) -> int:
        """Blank the prompts of finished jobs older than POKEMON_RETENTION_DAYS; rows blanked.
        A failure is logged and retried at the next sweep, never fatal."""
        try:
            return await self.store.privacy.blank_old_prompts(self.settings.pokemon_retention_days)
        except Exception:
            log.exception("prompt retention failed; retrying in %.0f s", self.retention_interval)
            return 0

    async def _retention_loop(self) -> None:
        while True:
            await asyncio.sleep(self.retention_interval)
            await self.apply_retention()

    async def close(self) -> None:
        await self.tasks.close()
        if not hasattr(self, "_AutoShardedClient__queue"):
            # discord.py's AutoShardedClient makes its event queue only when it connects, and
            # its close() writes to it: a bot closed before it ever connected (a SIGTERM
            # during start-up) would raise. An empty queue that nobody reads is harmless.
            empty: asyncio.PriorityQueue[Any] = asyncio.PriorityQueue()
            self._AutoShardedClient__queue = empty  # pyright: ignore[reportAttributeAccessIssue]
        await super().close()

    def is_owner_id(self, user_id: int) -> bool:
        """Configured owners have every admin right in every guild."""
        return user_id in self.owner_ids

    def _worker_fatal(self, error: BaseException) -> None:
        log.critical(
            "the generation worker is unhealthy (%s); exiting so a supervisor restarts", error
        )
        self.request_shutdown(EXIT_WORKER_FATAL)

    def request_shutdown(self, exit_code: int = EXIT_OK) -> None:
        """Start a clean shutdown once (signal handlers and the fatal-worker path call this)."""
        if self._shutdown is None:
            self.exit_code = exit_code
            # Not in self.tasks: close() cancels those, and the shutdown is what calls close().
            self._shutdown = asyncio.get_running_loop().create_task(
                self.shutdown(), name="shutdown"
            )
        elif exit_code != EXIT_OK:
            self.exit_code = exit_code

    async def wait_shutdown(self) -> None:
        """Wait for a requested shutdown to finish (no-op if none was requested)."""
        if self._shutdown is not None:
            await self._shutdown

    async def shutdown(self, *, worker_timeout: float = 30.0) -> None:
        """Stop intake, let the running job finish (or leave it persisted), close the worker
        and the gateway. Queued jobs stay `queued` on disk and resume at the next start."""
        log.info("shutting down: no new jobs")
        self.service.stop_intake()
        left = await self.generator.stop(timeout=worker_timeout)
        if left:
            log.info("left %d queued jobs on disk for the next start: %s", len(left), left)
        await self.service.drain(within=10.0)
        await self.close()
