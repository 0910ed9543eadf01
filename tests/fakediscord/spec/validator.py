"""Discord's own OpenAPI description, held against every request the fake receives.

`discord_spec()` loads the vendored `openapi.json` once per process. `DiscordSpec.check`
finds the operation a request is for (path template + method) and validates its body (the
JSON body, or the `payload_json` part of a multipart one) against that operation's
`requestBody` schema, with jsonschema's Draft 2020-12 validator; `$ref`s resolve inside the
document through a `referencing` registry, and each operation's validator is compiled once.

The spec is read the way Discord's README for it says Discord reads requests:

- a snowflake (`SnowflakeType`, a string of digits) may also be sent as a JSON number, as
  discord.py does for ids it holds as ints;
- "our API accepts strings for int fields if they are parseable as ints": an integer field
  also takes a string of digits (discord.py sends `default_member_permissions` so);
- `oneOf` unions mean "one of these formats" (their `x-discord-union`), so a body that fits
  two branches is not refused: every `oneOf` is read as `anyOf`.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry
from referencing.jsonschema import DRAFT202012

SPEC_FILE = Path(__file__).with_name("openapi.json")
SPEC_URI = "urn:discord-api-spec:openapi.json"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
SNOWFLAKE = "SnowflakeType"
INT_STRING = "^-?(0|[1-9][0-9]*)$"
MAX_SNOWFLAKE = 2**64 - 1
MAX_VERDICTS = 512  # bodies whose verdict is kept


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation of the spec: its path template, method and request body description."""

    template: str
    method: str  # upper case
    operation_id: str
    request_body: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class SpecViolation:
    """One way a request broke Discord's spec: an unknown endpoint, or a body rule."""

    method: str
    path: str  # as requested, without /api/v10
    operation: str  # the spec's operationId; "" when the endpoint is not in the spec
    where: str  # JSON path inside the body ("$.embeds[0].fields"); "" for the endpoint
    location: tuple[str | int, ...]  # the same path as keys, for Discord's `errors` object
    rule: str  # the schema rule broken ("maxItems: 25"), or what was wrong with the endpoint
    message: str  # what Discord would say, or jsonschema's message, shortened
    status: int = 400  # what the fake answers: 400 for a body, 404 / 405 for an endpoint

    def __str__(self) -> str:
        call = f"{self.method} {self.path}"
        if self.operation:
            call += f" ({self.operation})"
        if not self.where:
            return f"{call}: {self.rule}: {self.message}"
        return f"{call}: body {self.where}: {self.message} [rule {self.rule}]"

    @property
    def code(self) -> str:
        """Discord's error code for the rule (as in its `errors` object)."""
        keyword = self.rule.split(":", 1)[0]
        return _CODES.get(keyword, "BASE_TYPE_INVALID")


_CODES = {
    "maxLength": "BASE_TYPE_MAX_LENGTH",
    "maxItems": "BASE_TYPE_MAX_LENGTH",
    "minLength": "BASE_TYPE_MIN_LENGTH",
    "minItems": "BASE_TYPE_MIN_LENGTH",
    "required": "BASE_TYPE_REQUIRED",
    "enum": "BASE_TYPE_CHOICES",
    "const": "BASE_TYPE_CHOICES",
    "maximum": "NUMBER_TYPE_MAX",
    "minimum": "NUMBER_TYPE_MIN",
}


def discord_errors(violations: Iterable[SpecViolation]) -> dict[str, Any]:
    """Discord's nested `errors` object for a 400 50035 ("Invalid Form Body")."""
    errors: dict[str, Any] = {}
    for violation in violations:
        node = errors
        for key in violation.location:
            node = node.setdefault(str(key), {})
        node.setdefault("_errors", []).append(
            {"code": violation.code, "message": violation.message}
        )
    return errors


class DiscordSpec:
    """The operations of Discord's OpenAPI description and a validator for each body."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = as_discord_reads_it(document)
        resource = DRAFT202012.create_resource(self.document)
        self._registry: Registry[Any] = Registry().with_resource(SPEC_URI, resource).crawl()
        # segment count -> [(segments with None for a {parameter}, template)]
        self._templates: dict[int, list[tuple[tuple[str | None, ...], str]]] = {}
        for template in self.document["paths"]:
            segments = tuple(
                None if s.startswith("{") and s.endswith("}") else s
                for s in template.strip("/").split("/")
            )
            self._templates.setdefault(len(segments), []).append((segments, template))
        self._validators: dict[tuple[str, str, str], Draft202012Validator] = {}
        self._verdicts: dict[tuple[str, str, str, str], tuple[SpecViolation, ...]] = {}

    # -- finding the operation -------------------------------------------------------------

    def template(self, path: str) -> str | None:
        """The spec's path template for a request path; literal segments win over
        parameters (`.../messages/@original` before `.../messages/{message_id}`)."""
        parts = path.strip("/").split("/")
        best: tuple[tuple[bool, ...], str] | None = None
        for segments, template in self._templates.get(len(parts), ()):
            if all(s is None or s == p for s, p in zip(segments, parts, strict=True)):
                rank = tuple(s is None for s in segments)  # a literal earlier ranks first
                if best is None or rank < best[0]:
                    best = (rank, template)
        return None if best is None else best[1]

    def operation(self, method: str, template: str) -> Operation | None:
        item = self.document["paths"][template]
        op = item.get(method.lower())
        if op is None:
            return None
        return Operation(template, method.upper(), op.get("operationId", ""), op.get("requestBody"))

    def methods(self, template: str) -> list[str]:
        return [m.upper() for m in self.document["paths"][template] if m in METHODS]

    # -- checking a request ----------------------------------------------------------------

    def check(
        self, method: str, path: str, media_type: str | None, body: Any
    ) -> list[SpecViolation]:
        """What is wrong with this request by the spec (empty when nothing is).

        `media_type` is None when the request had no body; for a multipart request `body` is
        its `payload_json` (None when it had none: a form of files alone)."""
        template = self.template(path)
        if template is None:
            return [_endpoint(method, path, 404, "unknown endpoint", "not in Discord's spec")]
        op = self.operation(method, template)
        if op is None:
            allowed = ", ".join(self.methods(template))
            return [
                _endpoint(method, path, 405, "method not allowed", f"{template} takes {allowed}")
            ]
        spec_body = op.request_body
        if media_type == "multipart/form-data" and body is None:
            body = {}  # files without a payload_json: no other field was sent
        if media_type is None:
            if spec_body is not None and spec_body.get("required"):
                return [_body_rule(op, path, (), "required", "a request body is required")]
            return []
        if spec_body is None:
            return [_body_rule(op, path, (), "requestBody", "this operation takes no body")]
        if media_type not in spec_body.get("content", {}):
            accepted = ", ".join(spec_body.get("content", {}))
            return [_body_rule(op, path, (), "content", f"{media_type} not accepted: {accepted}")]
        # The same body comes again and again (every test syncs the same commands): its
        # verdict is kept, by the body's JSON text.
        key = (op.template, op.method, media_type, json.dumps(body, sort_keys=True))
        verdict = self._verdicts.get(key)
        if verdict is None:
            validator = self.validator(op, media_type)
            verdict = tuple(_violation(op, "", e) for e in explain(validator.iter_errors(body)))
            if len(self._verdicts) >= MAX_VERDICTS:
                self._verdicts.clear()
            self._verdicts[key] = verdict
        return [dataclasses.replace(v, path=path) for v in verdict]

    def validator(self, op: Operation, media_type: str) -> Draft202012Validator:
        """The compiled validator for one operation's body (built on first use, then kept)."""
        key = (op.template, op.method, media_type)
        found = self._validators.get(key)
        if found is None:
            pointer = "/".join(
                _escape(p)
                for p in ("paths", op.template, op.method.lower(), "requestBody", "content")
            )
            pointer += "/" + _escape(media_type) + "/schema"
            ref = f"{SPEC_URI}#/{urllib.parse.quote(pointer, safe='/~')}"
            found = Draft202012Validator({"$ref": ref}, registry=self._registry)
            self._validators[key] = found
        return found


@functools.cache
def discord_spec() -> DiscordSpec:
    """The vendored spec, loaded once per process (about 0.1 s)."""
    return DiscordSpec(json.loads(SPEC_FILE.read_text(encoding="utf-8")))


# -- reading the spec as Discord reads requests ----------------------------------------------


def as_discord_reads_it(document: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the document with snowflakes open to numbers, integer fields open to
    int-parseable strings, and `oneOf` read as `anyOf` (see the module's docstring)."""
    copied = copy.deepcopy(dict(document))
    schemas = copied["components"]["schemas"]
    snowflake = schemas[SNOWFLAKE]
    schemas[SNOWFLAKE] = {
        **snowflake,
        "type": ["string", "integer"],
        "minimum": 0,
        "maximum": MAX_SNOWFLAKE,
    }
    _widen(copied)
    return copied


def _widen(node: Any) -> None:
    if isinstance(node, list):
        for item in node:
            _widen(item)
        return
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    # `type` as a keyword is a string or a list; a property named "type" maps to a schema.
    if kind == "integer" or (isinstance(kind, list) and "integer" in kind):
        kinds = [kind] if isinstance(kind, str) else list(kind)
        if "string" not in kinds:
            node["type"] = [*kinds, "string"]
            node.setdefault("pattern", INT_STRING)
    if isinstance(node.get("oneOf"), list):
        node["anyOf"] = node.pop("oneOf")
    for value in node.values():
        _widen(value)


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


# -- explaining a failure --------------------------------------------------------------------


def explain(errors: Iterable[ValidationError]) -> Iterator[ValidationError]:
    """The leaf errors that say what is wrong: inside a union, the branches the instance
    plainly is not (another `type` discriminator, another JSON type) are set aside, and the
    closest remaining branch is explained instead of "not valid under any of the given
    schemas"."""
    seen: set[tuple[str, str, str]] = set()
    for error in errors:
        for leaf in _leaves(error):
            key = (leaf.json_path, str(leaf.validator), leaf.message)
            if key not in seen:
                seen.add(key)
                yield leaf


def _leaves(error: ValidationError) -> list[ValidationError]:
    if error.validator not in ("anyOf", "oneOf") or not error.context:
        return [error]
    branches: dict[Any, list[ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    live = [errs for errs in branches.values() if not any(_rules_out(e) for e in errs)]
    if not live:
        return [error]
    # The closest branch: the fewest errors, then the deepest one.
    closest = min(live, key=lambda errs: (len(errs), -max(len(e.path) for e in errs)))
    return [leaf for sub in closest for leaf in _leaves(sub)]


def _rules_out(error: ValidationError) -> bool:
    """This branch of a union is plainly not what the instance is meant to be."""
    if error.validator == "type" and not error.relative_path:
        return True
    return (
        error.validator in ("enum", "const")
        and len(error.relative_path) == 1
        and error.relative_path[0] == "type"
    )


def _violation(op: Operation, path: str, error: ValidationError) -> SpecViolation:
    location = tuple(error.absolute_path)
    keyword = str(error.validator)
    value: Any = error.validator_value
    message = _MESSAGES.get(keyword, lambda _v: None)(value) or _shorten(error.message)
    where = error.json_path
    if keyword == "required" and isinstance(error.instance, dict):
        missing = [k for k in value if k not in error.instance][:1]
        location += tuple(missing)
        where += "".join(f".{k}" for k in missing)
    return SpecViolation(
        method=op.method,
        path=path,
        operation=op.operation_id,
        where=where,
        location=location,
        rule=f"{keyword}: {_shorten(json.dumps(value, ensure_ascii=False), 80)}",
        message=message,
    )


_MESSAGES: dict[str, Any] = {
    "maxLength": lambda v: f"Must be {v} or fewer in length.",
    "maxItems": lambda v: f"Must be {v} or fewer in length.",
    "minLength": lambda v: f"Must be {v} or more in length.",
    "minItems": lambda v: f"Must be {v} or more in length.",
    "required": lambda v: "This field is required",
}


def _body_rule(
    op: Operation, path: str, location: tuple[str | int, ...], rule: str, message: str
) -> SpecViolation:
    return SpecViolation(op.method, path, op.operation_id, "$", location, rule, message)


def _endpoint(method: str, path: str, status: int, rule: str, message: str) -> SpecViolation:
    return SpecViolation(method.upper(), path, "", "", (), rule, message, status)


def _shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
