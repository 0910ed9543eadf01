"""The bot's end-to-end fixtures (`tests/bot/conftest.py`), shared with the reliability tests.

`bot_rig`, `pokemon_bot`, `bot_settings`, `tiny_engine`, `tiny_upscale_runner` and
`fake_discord` are the same fixtures the bot's own tests use: the real client over real
sockets against the loopback fake Discord, the real worker thread on the tiny checkpoint (and
the tiny upscaler), a real SQLite file.
"""

from __future__ import annotations

from tests.bot.conftest import (  # noqa: F401 - fixtures, re-exported for this folder
    bot_rig,
    bot_settings,
    pokemon_bot,
    tiny_engine,
    tiny_upscale_runner,
)
from tests.fakediscord.plugin import fake_discord  # noqa: F401 - the fixture
