"""The Discord side: commands, reactions, messages, i18n, wiring and the CLI."""
