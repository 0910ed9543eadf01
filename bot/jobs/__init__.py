"""The job layer: a job's whole life, from a request to a picture on Discord, in parts.

- `service.JobService`: the one way in (start, regenerate, vary, cancel, forget, queue
  places, stop intake, drain, resume); a facade over the parts below.
- `intake.Intake`: validate against today's settings, blocklist, admit, record, submit: one
  path for every origin (`bot.origins`).
- `follow.Follower`: a job the generator holds: its events to the view, its outcome settled.
- `view.JobView`: the live view of a job: queue place, progress, pacing of edits.
- `delivery.Delivery`: where a job's message lives: edit, post, placeholder, read-back,
  "may have landed", recording the outcome with retries.
- `resume.Resume`: after a restart: read back, wait for a generator, offer again.
- `watcher.RowWatcher`: rows changed by other processes.
- `rows`: a job row and the request it holds, each built from the other.

It builds no message contents and no `discord.ui` item: it asks a `presenter.Presenter`
(`bot.presentation`, passed in by `bot.client`). The job row helpers are re-exported here.
"""

from bot.jobs.rows import (
    SOURCE_PICTURE,
    new_job,
    request_as_drawn,
    request_fields,
    request_from_job,
    source_picture_of,
)

__all__ = [
    "SOURCE_PICTURE",
    "new_job",
    "request_as_drawn",
    "request_fields",
    "request_from_job",
    "source_picture_of",
]
