"""Discord's OpenAPI description (vendored, see README.md) and the checks the fake makes with it."""

from .validator import DiscordSpec, SpecViolation, discord_errors, discord_spec

__all__ = ["DiscordSpec", "SpecViolation", "discord_errors", "discord_spec"]
