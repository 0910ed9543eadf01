"""`pokemon-bot doctor`, run as the real CLI in a subprocess: ✓ on a good setup, the right ✗ and fix
on each broken one, and the token never in the output."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.commands_cli.doctor import Check
from tests.generation.fakehub import FakeHub
from tests.generation.test_hub_download import hf_home, hub  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "reference" / "tiny-pokemon-ja"
HUB_ID = "svjack/Stable-Diffusion-Pokemon-ja"
# Well-formed but fake: base64 of an application id, a timestamp part, an HMAC part.
APP_ID = 1234567890123456789
HMAC = "fakeHmacPart_DoNotPrint_0123456789abcdefg"
TOKEN = base64.b64encode(str(APP_ID).encode()).decode().rstrip("=") + ".GQx7Yw." + HMAC


def doctor(tmp_path: Path, *args: str, **overrides: str | None) -> subprocess.CompletedProcess[str]:
    """Run `python -m bot doctor` from tmp_path with a good setup, changed by `overrides`
    (None removes a variable)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("POKEMON_", "DISCORD_", "HF_")) and k != "PYTHONPATH"
    }
    env.update(
        PYTHONPATH=str(ROOT),
        PYTHONIOENCODING="utf-8",
        HF_HUB_OFFLINE="1",
        HF_HOME=str(tmp_path / "hf"),
        DISCORD_TOKEN=TOKEN,
        POKEMON_MODEL=str(TINY),
        POKEMON_DEVICE="cpu",
        POKEMON_DB=str(tmp_path / "db" / "pokemon-bot.sqlite3"),
        # The translation model has its own tests below (and the good setup): loading it in
        # every run would only cost seconds.
        POKEMON_TRANSLATE="off",
        # So has the upscaler (the default is not in this empty cache).
        POKEMON_UPSCALER="off",
    )
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    result = subprocess.run(
        [sys.executable, "-m", "bot", "doctor", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert TOKEN not in output, "doctor printed the token"
    assert HMAC not in output, "doctor printed the token's secret part"
    return result


def line(result: subprocess.CompletedProcess[str], prefix: str) -> str:
    """The report line starting with `prefix`, plus its fix line if it has one."""
    lines = result.stdout.splitlines()
    for i, text in enumerate(lines):
        if text.startswith(prefix):
            fix = lines[i + 1] if i + 1 < len(lines) and lines[i + 1].startswith("    fix:") else ""
            return f"{text}\n{fix}"
    raise AssertionError(f"no line starting {prefix!r} in:\n{result.stdout}")


def make_database(path: Path) -> None:
    """A real database at the current schema, made by the storage layer."""
    from storage import Storage

    async def create() -> None:
        store = await Storage.open(path)
        await store.close()

    asyncio.run(create())


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- the good setup ----------------------------------------------------------------------------


def test_good_setup_exits_0_with_a_check_mark_for_each_area(
    tmp_path: Path, tiny_marian: Path, tiny_upscaler: Path
) -> None:
    result = doctor(
        tmp_path,
        POKEMON_TRANSLATE="auto",
        POKEMON_TRANSLATE_MODEL=str(tiny_marian),
        POKEMON_UPSCALER=str(tiny_upscaler),
    )
    assert result.returncode == 0, result.stdout
    areas = ("settings", "DISCORD_TOKEN", "model", "safety checker", "translation", "upscaler")
    areas = (*areas, "device")
    for area in (*areas, "database"):
        assert line(result, f"✓ {area}:")
    assert "✗" not in result.stdout
    assert f"application id {APP_ID}" in result.stdout
    assert "all checks passed" in result.stdout


def test_with_remote_workers_model_and_device_are_left_to_the_workers(tmp_path: Path) -> None:
    # A bot that generates through Redis has no model and no GPU by design: a Hub model that
    # is not cached and a CUDA device that is not there are no ✗ here. Redis is down (port 1).
    result = doctor(
        tmp_path,
        POKEMON_REDIS_URL="redis://127.0.0.1:1/0",
        POKEMON_MODEL=HUB_ID,
        POKEMON_DEVICE="cuda",
        POKEMON_TRANSLATE="auto",  # the default translation model, not cached here either
    )
    assert line(result, "✓ generation:").startswith(
        "✓ generation: on remote workers (POKEMON_REDIS_URL): model, safety checker, translation "
        "model, upscaler and GPU are theirs, not checked here; on each worker machine, "
        "`pokemon-bot generate"
    )
    for area in ("model", "safety checker", "translation", "upscaler", "device"):
        assert not any(
            text.split(":")[0].endswith(f" {area}") for text in result.stdout.splitlines()
        )
    assert line(result, "✓ DISCORD_TOKEN:")
    assert line(result, "✓ database:")
    assert line(result, "✗ redis:").startswith("✗ redis: cannot reach redis://127.0.0.1:1/0")
    assert result.returncode == 1  # only Redis failed
    assert [text for text in result.stdout.splitlines() if text.startswith("✗")] == [
        line(result, "✗ redis:").splitlines()[0]
    ]


def test_good_setup_does_not_create_the_database(tmp_path: Path) -> None:
    result = doctor(tmp_path)
    assert "will be created at start" in line(result, "✓ database:")
    assert not (tmp_path / "db").exists()


def test_existing_database_is_reported_migrated_and_left_unchanged(tmp_path: Path) -> None:
    db = tmp_path / "db" / "pokemon-bot.sqlite3"
    make_database(db)
    before = digest(db)
    result = doctor(tmp_path)
    assert result.returncode == 0, result.stdout
    report = line(result, "✓ database:")
    assert "is writable, migrated (schema v" in report
    assert "and intact" in report
    assert digest(db) == before


def test_older_database_is_migrated_on_a_copy_only(tmp_path: Path) -> None:
    from storage.schema import latest_version, migrate

    if latest_version() < 2:
        pytest.skip("needs at least two migrations")
    db = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(db, isolation_level=None)
    migrate(conn, target=1)
    conn.close()
    before = digest(db)
    result = doctor(tmp_path, POKEMON_DB=str(db))
    assert result.returncode == 0, result.stdout
    assert f"migrations to v{latest_version()} applied cleanly" in line(result, "✓ database:")
    assert digest(db) == before
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    conn.close()


def test_model_cached_from_the_hub_passes_offline(tmp_path: Path) -> None:
    # The Hugging Face cache layout: refs/main names a snapshot folder holding the files.
    repo = tmp_path / "hf" / "hub" / "models--svjack--Stable-Diffusion-Pokemon-ja"
    commit = "0" * 40
    shutil.copytree(TINY, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    result = doctor(tmp_path, POKEMON_MODEL=HUB_ID)
    assert result.returncode == 0, result.stdout
    assert f"{HUB_ID} cached in" in line(result, "✓ model:")


# --- each broken setup ---------------------------------------------------------------------


def test_no_token_is_a_cross_with_where_to_get_one(tmp_path: Path) -> None:
    result = doctor(tmp_path, DISCORD_TOKEN=None)
    assert result.returncode == 1
    report = line(result, "✗ DISCORD_TOKEN:")
    assert "not set" in report
    assert "fix: Developer Portal" in report


def test_empty_token_counts_as_missing(tmp_path: Path) -> None:
    result = doctor(tmp_path, DISCORD_TOKEN="")
    assert result.returncode == 1
    assert "not set" in line(result, "✗ DISCORD_TOKEN:")


def test_malformed_token_is_a_cross_and_never_printed(tmp_path: Path) -> None:
    bad = "Zm9vYmFy.GQx7Yw.anotherSecretHmacValue987"
    result = doctor(tmp_path, DISCORD_TOKEN=bad)
    assert result.returncode == 1
    report = line(result, "✗ DISCORD_TOKEN:")
    assert "malformed" in report
    assert "fix:" in report
    assert "anotherSecretHmacValue987" not in result.stdout + result.stderr


def test_token_pasted_into_another_setting_is_redacted(tmp_path: Path) -> None:
    result = doctor(tmp_path, POKEMON_MODEL=f"/nowhere/{TOKEN}")  # `doctor` asserts no token
    assert result.returncode == 1
    assert "[REDACTED]" in line(result, "✗ model:")


def test_missing_model_folder_is_a_cross_with_the_fix(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    result = doctor(tmp_path, POKEMON_MODEL=str(missing))
    assert result.returncode == 1
    report = line(result, "✗ model:")
    assert f"local folder {missing} does not exist" in report
    assert "fix: set POKEMON_MODEL" in report


def test_incomplete_model_folder_names_what_is_missing(tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(TINY, model, ignore=shutil.ignore_patterns("diffusion_pytorch_model.*"))
    (model / "tokenizer" / "spiece.model").unlink()
    result = doctor(tmp_path, POKEMON_MODEL=str(model))
    assert result.returncode == 1
    report = line(result, "✗ model:")
    assert "unet/ weights" in report
    assert "vae/ weights" in report
    assert "tokenizer/spiece.model" in report
    assert "text_encoder" not in report
    assert "fix: copy the whole checkpoint" in report


def test_model_without_optional_parts_is_a_warning_and_safety_says_none(tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(TINY, model, ignore=shutil.ignore_patterns("safety_checker", "scheduler"))
    result = doctor(tmp_path, POKEMON_MODEL=str(model))
    assert result.returncode == 0, result.stdout
    assert "lacks safety_checker/, scheduler/" in line(result, "! model:")
    assert "on, but the model has none" in line(result, "! safety checker:")


def test_safety_checker_off_while_the_model_has_one_is_a_warning(tmp_path: Path) -> None:
    result = doctor(tmp_path, POKEMON_SAFETY_CHECKER="off")
    assert result.returncode == 0, result.stdout
    assert "NSFW images can be posted" in line(result, "! safety checker:")


def test_hub_id_not_cached_offline_is_a_cross_with_the_fix(tmp_path: Path) -> None:
    result = doctor(tmp_path, POKEMON_MODEL=HUB_ID)
    assert result.returncode == 1
    report = line(result, "✗ model:")
    assert f"{HUB_ID} is not in the Hugging Face cache" in report
    assert str(tmp_path / "hf") in report
    assert "fix: run once with network access (unset HF_HUB_OFFLINE)" in report


# --- the translation model ------------------------------------------------------------------


def test_translation_folder_that_loads_is_a_check_mark_with_a_probe_translation(
    tmp_path: Path, tiny_marian: Path
) -> None:
    from generation.translate import load_translator

    result = doctor(tmp_path, POKEMON_TRANSLATE="auto", POKEMON_TRANSLATE_MODEL=str(tiny_marian))
    assert result.returncode == 0, result.stdout
    report = line(result, "✓ translation:")
    probe = load_translator(tiny_marian).translate("a fire dragon")
    assert report.startswith(f"✓ translation: {tiny_marian} on cpu: 'a fire dragon' -> {probe!r}")


def test_translation_model_cached_from_the_hub_passes_offline(
    tmp_path: Path, tiny_marian: Path
) -> None:
    repo = tmp_path / "hf" / "hub" / "models--someone--tiny-marian"
    commit = "1" * 40
    shutil.copytree(tiny_marian, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    result = doctor(
        tmp_path, POKEMON_TRANSLATE="auto", POKEMON_TRANSLATE_MODEL="someone/tiny-marian"
    )
    assert result.returncode == 0, result.stdout
    cache = tmp_path / "hf" / "hub"
    assert f"someone/tiny-marian (cached in {cache}) on cpu:" in line(result, "✓ translation:")


def test_broken_translation_folder_is_one_cross_line_with_the_fix(
    tmp_path: Path, tiny_marian: Path
) -> None:
    broken = Path(shutil.copytree(tiny_marian, tmp_path / "broken-marian"))
    (broken / "model.safetensors").write_bytes(b"\x00" * 64)
    result = doctor(tmp_path, POKEMON_TRANSLATE="auto", POKEMON_TRANSLATE_MODEL=str(broken))
    assert result.returncode == 1
    report, fix = line(result, "✗ translation:").split("\n")
    assert report.startswith(f"✗ translation: cannot load the translation model from {broken}: ")
    assert fix.startswith("    fix: point POKEMON_TRANSLATE_MODEL at a whole MarianMT folder")
    assert "POKEMON_TRANSLATE=off" in fix
    assert "passed through untranslated" in fix
    # Only translation failed: the rest of the setup is fine.
    assert [text for text in result.stdout.splitlines() if text.startswith("✗")] == [report]
    assert line(result, "✓ model:")


def test_translation_hub_id_not_cached_offline_is_a_cross_at_once(tmp_path: Path) -> None:
    started = time.monotonic()
    result = doctor(tmp_path, POKEMON_TRANSLATE="auto", POKEMON_TRANSLATE_MODEL=None)
    assert time.monotonic() - started < 60  # no Hub retries: the cache only (a bound, not a speed)
    assert result.returncode == 1
    report = line(result, "✗ translation:")
    assert "staka/fugumt-en-ja is not in the Hugging Face cache" in report
    assert str(tmp_path / "hf") in report
    assert "HF_HUB_OFFLINE=1 forbids downloading it" in report
    assert "fix: run once with network access (unset HF_HUB_OFFLINE)" in report


def test_translate_off_loads_no_translation_model(tmp_path: Path) -> None:
    result = doctor(
        tmp_path, POKEMON_TRANSLATE="off", POKEMON_TRANSLATE_MODEL=str(tmp_path / "nowhere")
    )
    assert result.returncode == 0, result.stdout
    assert line(result, "✓ translation:") == (
        "✓ translation: off (POKEMON_TRANSLATE=off): English prompts are drawn as typed\n"
    )


def test_translation_hub_id_online_is_asked_about_but_never_downloaded(
    hub: FakeHub,  # noqa: F811
    tiny_marian: Path,
) -> None:
    from bot.commands_cli.doctor import FAIL, OK, _check_translator  # pyright: ignore[reportPrivateUsage]
    from bot.settings import Settings

    hub.add_repo("someone/tiny-marian", tiny_marian)

    def check(source: str) -> Check:
        return _check_translator(
            Settings(_env_file=None, pokemon_translate="auto", pokemon_translate_model=source)
        )

    reachable = check("someone/tiny-marian")
    assert reachable.status == OK
    assert "someone/tiny-marian is not cached yet but reachable" in reachable.detail
    assert hub.downloaded("someone/tiny-marian") == []
    unknown = check("someone/no-such-model")
    assert unknown.status == FAIL
    assert "someone/no-such-model is not in the Hugging Face cache" in unknown.detail
    assert "unknown Hub model id" in unknown.detail
    hub.close()
    gone = check("someone/another-model")
    assert gone.status == FAIL
    assert "the Hub cannot be reached" in gone.detail


def test_upscaler_file_that_loads_is_a_check_mark_naming_its_shape(
    tmp_path: Path, tiny_upscaler: Path
) -> None:
    result = doctor(tmp_path, POKEMON_UPSCALER=str(tiny_upscaler))
    assert line(result, "✓ upscaler:") == (
        f"✓ upscaler: tiny-x4 (local: {tiny_upscaler}): 4x RRDBNet, 1 blocks, 8 features\n"
    )


def test_upscaler_off_is_reported_as_off(tmp_path: Path) -> None:
    result = doctor(tmp_path)
    assert line(result, "✓ upscaler:").startswith("✓ upscaler: off (POKEMON_UPSCALER=off)")
    assert result.returncode == 0, result.stdout


def test_default_upscaler_not_cached_offline_is_a_cross_with_the_fix(tmp_path: Path) -> None:
    result = doctor(tmp_path, POKEMON_UPSCALER=None)
    found = line(result, "✗ upscaler:")
    assert "RealESRGAN_x4plus_anime_6B.pth are not in the Hugging Face cache" in found
    assert "fix: run once with network access (unset HF_HUB_OFFLINE)" in found
    assert result.returncode == 1


def test_upscaler_file_that_is_no_upscaler_is_a_cross_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "w.pth").write_bytes(b"not torch")
    result = doctor(tmp_path, POKEMON_UPSCALER=str(tmp_path / "w.pth"))
    found = line(result, "✗ upscaler:")
    assert "is not a readable weights file" in found
    assert "fix: set POKEMON_UPSCALER to a Real-ESRGAN 4x" in found


def test_unwritable_database_path_is_a_cross_with_the_fix(tmp_path: Path) -> None:
    # A regular file where a folder should be: unwritable even for root, unlike a chmod.
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    result = doctor(tmp_path, POKEMON_DB=str(blocker / "pokemon-bot.sqlite3"))
    assert result.returncode == 1
    report = line(result, "✗ database:")
    assert f"cannot be created: {blocker} is not a folder" in report
    assert "fix: set POKEMON_DB" in report


def test_database_path_that_is_a_folder_is_a_cross(tmp_path: Path) -> None:
    result = doctor(tmp_path, POKEMON_DB=str(tmp_path))
    assert result.returncode == 1
    assert "is a folder, not a file" in line(result, "✗ database:")


def test_file_that_is_not_a_database_is_a_cross(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"definitely not SQLite" * 100)
    result = doctor(tmp_path, POKEMON_DB=str(junk))
    assert result.returncode == 1
    assert "file is not a database" in line(result, "✗ database:")
    assert junk.read_bytes() == b"definitely not SQLite" * 100


def test_newer_than_code_database_is_a_cross_and_left_alone(tmp_path: Path) -> None:
    db = tmp_path / "future.sqlite3"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE from_the_future (x INTEGER)")
    conn.execute("PRAGMA user_version = 999")
    conn.commit()
    conn.close()
    before = digest(db)
    result = doctor(tmp_path, POKEMON_DB=str(db))
    assert result.returncode == 1
    report = line(result, "✗ database:")
    assert "newer pokemon-bot" in report
    assert str(db) in report
    assert "pokemon-doctor-" not in report, "the message names the temporary copy"
    assert "fix: run the newer release again, or restore a backup" in report
    assert digest(db) == before


def test_invalid_settings_are_one_cross_per_field_without_their_values(tmp_path: Path) -> None:
    result = doctor(tmp_path, POKEMON_STEPS="9999", POKEMON_DEVICE="tpu-xyzzy")
    assert result.returncode == 1
    assert "less than or equal to 150" in line(result, "✗ POKEMON_STEPS:")
    assert "fix: set POKEMON_DEVICE" in line(result, "✗ POKEMON_DEVICE:")
    assert "xyzzy" not in result.stdout
    assert "9999" not in result.stdout
    # The settings that did load are still checked.
    assert line(result, "✓ model:")
    assert line(result, "✓ database:")


# --- --quick: the heartbeat only -------------------------------------------------------------


def test_quick_with_a_fresh_heartbeat_exits_0(tmp_path: Path) -> None:
    beat = tmp_path / "heartbeat"
    beat.touch()
    result = doctor(tmp_path, "--quick", POKEMON_HEARTBEAT_FILE=str(beat))
    assert result.returncode == 0, result.stdout
    assert result.stdout.startswith("✓ heartbeat: worker healthy")
    # Only the heartbeat: no model, database or token lines.
    assert len(result.stdout.strip().splitlines()) == 1


def test_quick_with_a_missing_heartbeat_fails(tmp_path: Path) -> None:
    result = doctor(tmp_path, "--quick", POKEMON_HEARTBEAT_FILE=str(tmp_path / "nothing"))
    assert result.returncode == 1
    report = line(result, "✗ heartbeat:")
    assert "does not exist" in report
    assert "fix: read the logs" in report


def test_quick_with_a_stale_heartbeat_fails(tmp_path: Path) -> None:
    beat = tmp_path / "heartbeat"
    beat.touch()
    old = time.time() - 120
    os.utime(beat, (old, old))
    result = doctor(tmp_path, "--quick", POKEMON_HEARTBEAT_FILE=str(beat))
    assert result.returncode == 1
    report = line(result, "✗ heartbeat:")
    assert "stale" in report
    assert "limit 60 s" in report


def test_quick_max_age_option_moves_the_limit(tmp_path: Path) -> None:
    beat = tmp_path / "heartbeat"
    beat.touch()
    old = time.time() - 120
    os.utime(beat, (old, old))
    result = doctor(tmp_path, "--quick", "--max-age", "600", POKEMON_HEARTBEAT_FILE=str(beat))
    assert result.returncode == 0, result.stdout


def test_quick_without_a_heartbeat_setting_fails(tmp_path: Path) -> None:
    result = doctor(tmp_path, "--quick")
    assert result.returncode == 1
    assert "POKEMON_HEARTBEAT_FILE is not set" in line(result, "✗ heartbeat:")


def test_cuda_asked_for_without_cuda_fails_with_the_fix(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = doctor(tmp_path, POKEMON_DEVICE="cuda")
    assert result.returncode == 1
    report = line(result, "✗ device:")
    assert "CUDA is not available" in report
    assert "POKEMON_DEVICE=cpu" in report


def test_auto_device_falling_back_to_cpu_is_a_warning_with_minutes_per_image(
    tmp_path: Path,
) -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = doctor(tmp_path, POKEMON_DEVICE="auto")
    assert result.returncode == 0, result.stdout
    report = line(result, "! device:")
    assert "auto fell back to the CPU" in report
    assert "cpu (float32)" in report
    assert "min per 512² image at 25 steps" in report
    assert "batch 1" in report
    assert "fix: for a live bot use a GPU" in report


def test_cpu_chosen_explicitly_is_a_check_mark_with_the_estimate(tmp_path: Path) -> None:
    result = doctor(tmp_path, POKEMON_DEVICE="cpu", POKEMON_SIZE="256", POKEMON_STEPS="10")
    report = line(result, "✓ device:")
    assert "min per 256² image at 10 steps" in report
    assert "fell back" not in report


# --- .env and the database path -------------------------------------------------------------


def test_settings_line_says_there_is_no_env_file(tmp_path: Path) -> None:
    result = doctor(tmp_path)
    assert f"no .env in {tmp_path}" in line(result, "✓ settings:")


def test_settings_line_names_the_env_file_it_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("POKEMON_STEPS=20\n", "utf-8")
    result = doctor(tmp_path)
    assert f"loaded from the environment and {tmp_path / '.env'}" in line(result, "✓ settings:")


def test_relative_database_path_is_printed_absolute(tmp_path: Path) -> None:
    result = doctor(tmp_path, POKEMON_DB="data/bot.sqlite3")
    report = line(result, "✓ database:")
    assert f"{tmp_path / 'data' / 'bot.sqlite3'} (POKEMON_DB=data/bot.sqlite3)" in report


def test_damaged_database_fails_its_integrity_check(tmp_path: Path) -> None:
    from tests.storage.test_backup import corrupt_database

    db = tmp_path / "broken.sqlite3"
    corrupt_database(db)
    before = digest(db)
    result = doctor(tmp_path, POKEMON_DB=str(db))
    assert result.returncode == 1
    report = line(result, "✗ database:")
    assert "integrity check found" in report
    assert "fix: restore a backup" in report
    assert digest(db) == before


# --- GPU ------------------------------------------------------------------------------------


@pytest.mark.gpu
def test_cuda_device_reports_the_gpu_and_its_memory(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    result = doctor(tmp_path, POKEMON_DEVICE="cuda")
    report = line(result, "✓ device:")
    assert torch.cuda.get_device_name(0) in report
    assert "GiB" in report
