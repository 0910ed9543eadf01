"""A loopback fake of the Hugging Face Hub's HTTP API, enough for `huggingface_hub` downloads.

It answers what `HfApi.list_repo_files`, `snapshot_download` and `hf_hub_download` ask, the way
huggingface.co does (checked against huggingface_hub 2.x):

- `GET /api/models/{repo}[/revision/{rev}]`: model info with `sha` and `siblings`;
- `GET /api/models/{repo}/tree/{rev}[/{path}]?recursive=`: files (`oid`, `size`, `lfs`) and folders;
- `HEAD|GET /{repo}/resolve/{rev}/{path}`: a small file answers 200 with `ETag` (its git blob id),
  `X-Repo-Commit` and `Content-Length`; an LFS file (weights, sentencepiece models) answers
  302 to a second server, the "CDN", on another origin, with `X-Linked-Etag` (its sha256),
  `X-Linked-Size` and `X-Repo-Commit`, so the client reads the metadata off the redirect and
  downloads from the CDN, as it does from the real Hub;
- unknown repo, revision or file: 404 with the Hub's `X-Error-Code`;
- `Range: bytes=N-` on a GET: 206 (the client asks only when resuming);
- `GET /api/agent-harnesses`: an empty registry (huggingface_hub asks for it once a day).

Files are served as plain HTTP, never through Xet (no `xetHash`, no `X-Xet-*` headers), which is
the path `huggingface_hub` takes for any file the Hub does not store in Xet. Every request is
recorded, and `fail()` makes one file answer an error.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

# Files a Hub repository keeps in LFS, as its default `.gitattributes` says.
LFS_SUFFIXES = (
    ".bin",
    ".safetensors",
    ".model",
    ".ckpt",
    ".pt",
    ".pth",
    ".msgpack",
    ".h5",
    ".onnx",
)
GITATTRIBUTES = "".join(
    f"*{suffix} filter=lfs diff=lfs merge=lfs -text\n" for suffix in LFS_SUFFIXES
).encode()
README = b"---\nlanguage: ja\nlibrary_name: diffusers\npipeline_tag: text-to-image\n---\n# tiny\n"


@dataclass(frozen=True, slots=True)
class Request:
    """One request a fake server answered."""

    server: str  # "hub" or "cdn"
    method: str
    path: str  # without the query string
    status: int


@dataclass(slots=True)
class _Repo:
    files: dict[str, bytes]
    commit: str
    failures: dict[str, tuple[int, frozenset[str]]] = field(default_factory=dict)

    def is_lfs(self, name: str) -> bool:
        return name.endswith(LFS_SUFFIXES)


def git_blob_id(data: bytes) -> str:
    """The id git gives a file's content (what the Hub reports as `oid` and the `ETag`)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def lfs_pointer(data: bytes) -> bytes:
    return (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256(data)}\nsize {len(data)}\n"
    ).encode()


class FakeHub:
    """The Hub's API and file endpoints on 127.0.0.1, plus a CDN on another port for LFS files.

    Use as a context manager; `endpoint` is what `HF_ENDPOINT` should be.
    """

    def __init__(self) -> None:
        self._repos: dict[str, _Repo] = {}
        self._requests: list[Request] = []
        self._lock = threading.Lock()
        self._hub = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self, "hub"))
        self._cdn = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self, "cdn"))
        self._threads: list[threading.Thread] = []
        self.endpoint = f"http://127.0.0.1:{self._hub.server_port}"
        self.cdn = f"http://127.0.0.1:{self._cdn.server_port}"

    # -- set-up ---------------------------------------------------------------------------------

    def add_repo(self, repo_id: str, folder: Path, *, commit: str | None = None) -> str:
        """Serve every file under `folder` (plus a README and .gitattributes) as `repo_id`.

        Returns the commit sha, derived from the content so it changes when a file does, unless
        `commit` names it (to stand in for a repository pinned at a known commit).
        """
        files = {
            path.relative_to(folder).as_posix(): path.read_bytes()
            for path in sorted(folder.rglob("*"))
            if path.is_file()
        }
        files.setdefault("README.md", README)
        files.setdefault(".gitattributes", GITATTRIBUTES)
        tree = "".join(f"{name}\0{git_blob_id(data)}\n" for name, data in sorted(files.items()))
        commit = commit or hashlib.sha1(tree.encode()).hexdigest()
        with self._lock:
            self._repos[repo_id] = _Repo(files=files, commit=commit)
        return commit

    def fail(
        self, repo_id: str, name: str, status: int = 500, *, methods: tuple[str, ...] = ("GET",)
    ) -> None:
        """Answer `status` for file `name` of `repo_id` (on the Hub and the CDN) for `methods`."""
        with self._lock:
            self._repos[repo_id].failures[name] = (status, frozenset(methods))

    def heal(self, repo_id: str, name: str) -> None:
        """Serve `name` normally again."""
        with self._lock:
            self._repos[repo_id].failures.pop(name, None)

    def commit(self, repo_id: str) -> str:
        """The commit sha `repo_id` is at."""
        with self._lock:
            return self._repos[repo_id].commit

    # -- what happened --------------------------------------------------------------------------

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    def downloaded(self, repo_id: str) -> list[str]:
        """The files of `repo_id` whose content was sent (a 200 or 206 GET), in order."""
        names: list[str] = []
        for request in self.requests:
            if request.method != "GET" or request.status not in (200, 206):
                continue
            name = self._file_of(request)
            if name is not None and name[0] == repo_id:
                names.append(name[1])
        return names

    def _file_of(self, request: Request) -> tuple[str, str] | None:
        parts = request.path.lstrip("/").split("/")
        if request.server == "hub" and len(parts) > 4 and parts[2] == "resolve":
            return f"{parts[0]}/{parts[1]}", "/".join(parts[4:])
        if request.server == "cdn" and len(parts) > 3:
            return f"{parts[0]}/{parts[1]}", "/".join(parts[3:])
        return None

    def _record(self, request: Request) -> None:
        with self._lock:
            self._requests.append(request)

    def _repo(self, repo_id: str) -> _Repo | None:
        with self._lock:
            return self._repos.get(repo_id)

    # -- life -----------------------------------------------------------------------------------

    def start(self) -> FakeHub:
        for server, name in ((self._hub, "fake-hub"), (self._cdn, "fake-hub-cdn")):
            thread = threading.Thread(
                target=server.serve_forever, args=(0.05,), name=name, daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def close(self) -> None:
        """Stop both servers and free their ports: later connections are refused."""
        for server in (self._hub, self._cdn):
            if self._threads:
                server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _handler(hub: FakeHub, server: str) -> type[BaseHTTPRequestHandler]:
    class Handler(_HubHandler if server == "hub" else _CdnHandler):
        pass

    Handler.hub = hub
    Handler.server_name = server
    return Handler


class _BaseHandler(BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so a stopped server leaves no pooled connection
    # that could still be answered.
    hub: FakeHub
    server_name: str

    def do_HEAD(self) -> None:
        self._dispatch(head=True)

    def do_GET(self) -> None:
        self._dispatch(head=False)

    def _dispatch(self, *, head: bool) -> None:
        raise NotImplementedError

    def log_message(self, *_args: object) -> None:
        return None

    # -- answers --------------------------------------------------------------------------------

    def answer(
        self,
        status: int,
        body: bytes = b"",
        *,
        head: bool = False,
        content_type: str = "text/plain; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.hub._record(Request(self.server_name, self.command, self._path(), status))
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def answer_json(self, status: int, data: object, **kwargs: object) -> None:
        self.answer(
            status,
            json.dumps(data).encode(),
            content_type="application/json; charset=utf-8",
            **kwargs,  # type: ignore[arg-type]
        )

    def error(self, status: int, code: str | None, message: str, *, head: bool) -> None:
        headers = {"X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        self.answer_json(status, {"error": message}, head=head, headers=headers)

    def send_file(self, data: bytes, *, head: bool, headers: dict[str, str]) -> None:
        """The content, or from a `Range: bytes=N-` offset on (206)."""
        headers = {"Accept-Ranges": "bytes", **headers}
        wanted = self.headers.get("Range")
        if wanted and not head:
            start = int(wanted.removeprefix("bytes=").split("-")[0])
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            self.answer(206, data[start:], headers=headers, content_type=_content_type(data))
            return
        self.answer(200, data, head=head, headers=headers, content_type=_content_type(data))

    def _path(self) -> str:
        return unquote(urlsplit(self.path).path)

    def _query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.path).query)


class _HubHandler(_BaseHandler):
    def _dispatch(self, *, head: bool) -> None:
        parts = self._path().lstrip("/").split("/")
        if parts == ["api", "agent-harnesses"] and not head:
            # huggingface_hub fetches this registry once a day for its user agent: an empty one.
            self.answer_json(200, {"standardEnvVars": [], "harnesses": {}})
        elif parts[:2] == ["api", "models"] and len(parts) >= 4 and not head:
            self._api(f"{parts[2]}/{parts[3]}", parts[4:])
        elif len(parts) >= 5 and parts[2] == "resolve":
            self._resolve(f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:]), head=head)
        else:
            self.error(404, None, "Not Found", head=head)

    def _commit(self, repo_id: str, revision: str, *, head: bool) -> tuple[_Repo, str] | None:
        repo = self.hub._repo(repo_id)
        if repo is None:
            self.error(401, "RepoNotFound", "Repository not found", head=head)
            return None
        if revision not in ("main", repo.commit):
            self.error(404, "RevisionNotFound", f"Invalid rev id: {revision}", head=head)
            return None
        return repo, repo.commit

    def _api(self, repo_id: str, rest: list[str]) -> None:
        if not rest or (len(rest) == 2 and rest[0] == "revision"):
            found = self._commit(repo_id, rest[1] if rest else "main", head=False)
            if found is not None:
                self.answer_json(200, _model_info(repo_id, *found))
        elif len(rest) >= 2 and rest[0] == "tree":
            found = self._commit(repo_id, rest[1], head=False)
            if found is not None:
                recursive = self._query().get("recursive", ["False"])[0].lower() == "true"
                prefix = "/".join(rest[2:])
                self.answer_json(200, list(_tree(found[0], prefix, recursive=recursive)))
        else:
            self.error(404, None, "Not Found", head=False)

    def _resolve(self, repo_id: str, revision: str, name: str, *, head: bool) -> None:
        found = self._commit(repo_id, revision, head=head)
        if found is None:
            return
        repo, commit = found
        commit_header = {"X-Repo-Commit": commit}
        if name not in repo.files:
            self.answer_json(
                404,
                {"error": "Entry not found"},
                head=head,
                headers={"X-Error-Code": "EntryNotFound", **commit_header},
            )
            return
        data = repo.files[name]
        status, methods = repo.failures.get(name, (0, frozenset()))
        if status and self.command in methods and (head or not repo.is_lfs(name)):
            self.answer(status, b"Internal Error", head=head)
            return
        if repo.is_lfs(name):
            location = f"{self.hub.cdn}/{repo_id}/{sha256(data)}/{quote(name)}"
            pointer = lfs_pointer(data)
            self.answer(
                302,
                f"Found. Redirecting to {location}".encode(),
                head=head,
                headers={
                    "Location": location,
                    "ETag": f'"{git_blob_id(pointer)}"',
                    "X-Linked-Etag": f'"{sha256(data)}"',
                    "X-Linked-Size": str(len(data)),
                    **commit_header,
                },
            )
            return
        self.send_file(data, head=head, headers={"ETag": f'"{git_blob_id(data)}"', **commit_header})


class _CdnHandler(_BaseHandler):
    """Serves LFS content by sha256, as a signed CDN URL would (no Hub headers)."""

    def _dispatch(self, *, head: bool) -> None:
        parts = self._path().lstrip("/").split("/")
        repo = self.hub._repo("/".join(parts[:2])) if len(parts) > 3 else None
        name = "/".join(parts[3:])
        data = repo.files.get(name) if repo is not None else None
        if repo is None or data is None or sha256(data) != parts[2]:
            self.answer(403, b"<Error><Code>AccessDenied</Code></Error>", head=head)
            return
        status, methods = repo.failures.get(name, (0, frozenset()))
        if status and self.command in methods:
            self.answer(status, b"<Error><Code>InternalError</Code></Error>", head=head)
            return
        filename = name.rsplit("/", 1)[-1]
        self.send_file(
            data,
            head=head,
            headers={
                "ETag": f'"{sha256(data)}"',
                "Content-Disposition": (
                    f"attachment; filename*=UTF-8''{quote(filename)}; filename=\"{filename}\";"
                ),
            },
        )


def _content_type(data: bytes) -> str:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "application/octet-stream"
    return "text/plain; charset=utf-8"


def _model_info(repo_id: str, repo: _Repo, commit: str) -> dict[str, object]:
    return {
        "_id": hashlib.md5(repo_id.encode()).hexdigest()[:24],
        "id": repo_id,
        "modelId": repo_id,
        "author": repo_id.split("/", maxsplit=1)[0],
        "sha": commit,
        "lastModified": "2022-11-03T12:00:00.000Z",
        "createdAt": "2022-11-03T12:00:00.000Z",
        "private": False,
        "disabled": False,
        "gated": False,
        "downloads": 0,
        "likes": 0,
        "library_name": "diffusers",
        "pipeline_tag": "text-to-image",
        "tags": ["diffusers", "text-to-image", "ja"],
        "siblings": [{"rfilename": name} for name in sorted(repo.files)],
        "usedStorage": sum(len(data) for data in repo.files.values()),
    }


def _tree(repo: _Repo, prefix: str, *, recursive: bool) -> Iterator[dict[str, object]]:
    """Entries under `prefix`, folders first at each level, like the Hub's tree endpoint."""
    base = f"{prefix}/" if prefix else ""
    folders: set[str] = set()
    files: list[str] = []
    for name in sorted(repo.files):
        if not name.startswith(base):
            continue
        rest = name[len(base) :].split("/")
        for depth in range(1, len(rest) if recursive else min(2, len(rest))):
            folders.add(base + "/".join(rest[:depth]))
        if recursive or len(rest) == 1:
            files.append(name)
    for folder in sorted(folders):
        tree_id = hashlib.sha1(folder.encode()).hexdigest()
        yield {"type": "directory", "oid": tree_id, "size": 0, "path": folder}
    for name in files:
        data = repo.files[name]
        entry: dict[str, object] = {"type": "file", "size": len(data), "path": name}
        if repo.is_lfs(name):
            pointer = lfs_pointer(data)
            entry["oid"] = git_blob_id(pointer)
            entry["lfs"] = {"oid": sha256(data), "size": len(data), "pointerSize": len(pointer)}
        else:
            entry["oid"] = git_blob_id(data)
        yield entry
