"""One module per `pokemon-bot` subcommand."""
