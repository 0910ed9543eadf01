"""`bot.presentation.Presentation` is the job layer's `Presenter`: the texts it gives for a
queue place and a progress step, and the buttons the composition root wires in."""

from __future__ import annotations

from typing import Any

import discord

from bot.i18n import t
from bot.jobs.presenter import Presenter, ResultCard, UpscaleCard
from bot.presentation import Presentation


def test_presentation_makes_the_texts_and_asks_for_the_wired_buttons() -> None:
    asked: list[tuple[str, int, str, Any]] = []

    def cancel(job_id: int, locale: str) -> discord.ui.View:
        asked.append(("cancel", job_id, locale, None))
        return discord.ui.View()

    def result(job_id: int, locale: str, *, pictures: int = 1) -> discord.ui.View:
        asked.append(("result", job_id, locale, pictures))
        return discord.ui.View()

    presenter: Presenter = Presentation(cancel_buttons=cancel, result_buttons=result)
    assert presenter.queued_text("ja", 2, None) == t("pokemon.queued_no_eta", "ja", position=2)
    assert "<t:" in presenter.queued_text("en", 2, 30.0)  # rendered by each client
    assert "2/4" in presenter.progress_text("en", 2, 4)
    upscaling = presenter.progress_text("en", 1, 4, kind="upscale")
    assert "1/4" in upscaling
    assert upscaling != presenter.progress_text("en", 1, 4)  # tiles, not steps
    assert presenter.ended_text("ja", "nsfw") == t("error.gen.nsfw", "ja")
    assert presenter.ended_text("en", "prompt_blocked") == t("error.prompt_blocked", "en")
    unknown = presenter.ended_text("en", "blocked")  # a code no text is written for
    assert unknown == t("error.gen.generation_failed", "en")
    assert presenter.already_drawing_text("en", None) == t("regen.already_pending", "en")
    place = presenter.already_drawing_text("ja", 2)
    assert place == t("regen.already_pending_place", "ja", position=2)
    presenter.progress_view(5, "ja")
    presenter.result_view(5, "en", pictures=3)
    assert asked == [("cancel", 5, "ja", None), ("result", 5, "en", 3)]
    card = ResultCard(
        prompt="ピカチュウ",
        negative_prompt="",
        seeds=[1],
        steps=3,
        seconds=1.0,
        user_id=7,
        quota=None,
        truncated=False,
        model="tiny",
    )
    embed = presenter.result_embed("en", card)
    assert embed.description == "ピカチュウ"
    assert {f.name: f.value for f in embed.fields}[t("pokemon.field_model", "en")] == "tiny"


def test_an_upscaled_pictures_embed_says_its_size_source_upscaler_and_when_it_is_not_a_png() -> (
    None
):
    presenter = Presentation(cancel_buttons=lambda *_: discord.ui.View(), result_buttons=_none)

    def card(fmt: str, filename: str) -> UpscaleCard:
        return UpscaleCard(
            size=(2048, 2048),
            source_job_id=42,
            upscaler="RealESRGAN_x4plus_anime_6B",
            format=fmt,
            filename=filename,
            seconds=2.0,
            user_id=7,
            quota=None,
        )

    png = presenter.upscaled_embed("en", card("png", "pokemon-1-x4.png"))
    assert png.title == t("upscale.title", "en", width=2048, height=2048)
    assert png.image.url == "attachment://pokemon-1-x4.png"
    values = [f.value for f in png.fields]
    assert "#42" in values
    assert r"RealESRGAN\_x4plus\_anime\_6B" in values  # markdown escaped, shows as typed
    assert png.footer.text == t("upscale.footer", "en", job=42)
    assert t("upscale.not_png", "en", format="PNG") not in values

    webp = presenter.upscaled_embed("ja", card("webp", "pokemon-1-x4.webp"))
    assert t("upscale.not_png", "ja", format="WEBP") in [f.value for f in webp.fields]
    assert webp.image.url == "attachment://pokemon-1-x4.webp"
    assert presenter.upscaled_view(5, "en") is None  # no buttons wired in


def _none(job_id: int, locale: str, *, pictures: int = 1) -> discord.ui.View:
    return discord.ui.View()
