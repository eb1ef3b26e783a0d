"""A scanner station's client, `imaging scan`: the files given (a form and its card pages) sent as one scan,
its capture followed until it is read, and the answer told in Chinese; or a station's folder watched, each
batch the scanner writes sent as one scan once its files stop growing, then moved to done/ or failed/.

Progress goes to stderr through rich, the summary to stdout; httpx's request lines are kept out of both."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from errors import ExitCode
from idnumber import mask
from media import sniff

# Exit codes from the least to the most pressing: a run of several scans exits with the last one met.
RANK = [ExitCode.ok, ExitCode.pending, ExitCode.rescan, ExitCode.bad_input, ExitCode.dependency_down]
POLL = 0.5  # seconds between looks at the scan, and at a watched folder
STATES = {"queued": "排队中", "processing": "识别中", "captured": "已识别", "failed": "无法识别"}
DONE, FAILED = "done", "failed"  # a watched folder's subfolders for the files it has handled


@dataclass(frozen=True)
class Refused:
    """A file that is not sent, and why, for the person at the station."""

    path: Path
    why: str


@dataclass
class Outcome:
    """What became of one scan sent: its files, those refused, the service's answer and the exit code."""

    files: list[Path]
    refused: list[Refused] = field(default_factory=list)
    view: dict | None = None  # the scan as GET /v1/scans/{id} shows it
    error: str | None = None  # the service refused the upload, or could not be reached
    code: ExitCode = ExitCode.ok

    def to_json(self) -> dict:
        return {
            "files": [str(p) for p in self.files],
            "refused": [{"file": str(r.path), "reason": r.why} for r in self.refused],
            "error": self.error,
            "exit_code": int(self.code),
            "scan": self.view,
        }


def connect(url: str, key: str) -> httpx.Client:
    """Return the client that speaks to the service with the station's (or the person's) token."""
    return httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=60)


def quiet_http_logs() -> None:
    """Keep httpx's and httpcore's per-request lines out of the terminal the progress is drawn on."""
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


def gather(paths: Iterable[Path]) -> tuple[list[Path], list[Refused]]:
    """Return the files to send (folders walked in name order; hidden files left alone) and those that
    cannot be sent, each with why: empty, unreadable, or not a JPEG, PNG, TIFF or PDF by its bytes."""
    files: list[Path] = []
    for path in paths:
        found = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        files += [p for p in found if not any(part.startswith(".") for part in p.relative_to(path).parts)]
    sendable, refused = [], []
    for path in files:
        try:
            with path.open("rb") as f:
                head = f.read(1024)
        except OSError as exc:
            refused.append(Refused(path, f"无法读取 cannot read: {exc.strerror}"))
            continue
        if not head:
            refused.append(Refused(path, "空文件 the file is empty"))
        elif sniff(head) is None:
            refused.append(
                Refused(path, "不是扫描件（可发送 JPEG、PNG、TIFF、PDF） not a JPEG, PNG, TIFF or PDF")
            )
        else:
            sendable.append(path)
    return sendable, refused


def send(
    client: httpx.Client,
    files: list[Path],
    refused: list[Refused],
    form: dict[str, str],
    wait: float,
    console: Console,
) -> Outcome:
    """Send the files as one scan and follow its capture for up to ``wait`` seconds; ``refused`` are the
    files of the batch that are not sent, which the outcome names."""
    return follow(client, upload(client, files, refused, form, console), wait, console)


def upload(
    client: httpx.Client, files: list[Path], refused: list[Refused], form: dict[str, str], console: Console
) -> Outcome:
    """Send the files as one scan; return the outcome with the service's acceptance (or its refusal)."""
    outcome = Outcome(files, refused)
    if not files:
        return _failed(outcome, None, ExitCode.bad_input)
    with _progress(console) as progress:
        progress.add_task(f"上传 {len(files)} 个文件 uploading", total=None)
        try:
            response = client.post(
                "/v1/scans", data=form, files=[("file", (p.name, p.read_bytes())) for p in files]
            )
        except httpx.HTTPError as exc:
            return _failed(
                outcome, f"无法连接服务 cannot reach {client.base_url}: {exc}", ExitCode.dependency_down
            )
    if response.status_code >= 400:
        code = ExitCode.dependency_down if response.status_code in (502, 503, 504) else ExitCode.bad_input
        return _failed(outcome, f"服务拒绝 refused ({response.status_code}): {_detail(response)}", code)
    outcome.view = response.json()
    return outcome


def follow(client: httpx.Client, outcome: Outcome, wait: float, console: Console) -> Outcome:
    """Poll the scan uploaded until it is read or ``wait`` seconds pass; return the outcome with its view
    and exit code."""
    if outcome.view is None:
        return outcome
    accepted = outcome.view
    deadline = time.monotonic() + wait
    with _progress(console) as progress:
        task = progress.add_task(accepted["scan_id"], total=None)
        while time.monotonic() < deadline:
            try:
                status = client.get(accepted["status_url"])
            except httpx.HTTPError:
                status = None  # a moment's loss of the network: look again
            if status is not None and status.status_code == 200:
                outcome.view = status.json() | {"existing": accepted.get("existing", False)}
            state = outcome.view["status"]
            progress.update(task, description=f"{accepted['scan_id']} {STATES.get(state, state)}")
            if state in ("captured", "failed"):
                break
            time.sleep(POLL)
    outcome.code = exit_code(outcome, wait)
    return outcome


def _progress(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _failed(outcome: Outcome, error: str | None, code: ExitCode) -> Outcome:
    outcome.error, outcome.code = error, code
    return outcome


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        detail = response.text
    return detail if isinstance(detail, str) else str(detail)


def exit_code(outcome: Outcome, wait: float) -> ExitCode:
    """Return the exit code the outcome deserves: 3 the service away, 2 a file refused or unreadable,
    4 a rescan asked for, 5 not read within the wait, else 0 (the first that applies)."""
    if outcome.code == ExitCode.dependency_down:
        return outcome.code
    view = outcome.view or {}
    if outcome.refused or outcome.error or view.get("status") == "failed":
        return ExitCode.bad_input
    if view.get("rescans") or view.get("problems"):
        return ExitCode.rescan
    if wait > 0 and view.get("status") != "captured":
        return ExitCode.pending
    return ExitCode.ok


def summary(outcome: Outcome) -> list[str]:
    """Return what the person at the station reads about a scan sent, in Chinese."""
    lines = [f"✗ 未发送 {r.path}：{r.why}" for r in outcome.refused]
    if outcome.error:
        return [*lines, f"✗ 未发送 {len(outcome.files)} 个文件：{outcome.error}"]
    view = outcome.view or {}
    if not view:
        return lines
    again = "（这些文件已发送过，以下是当时的扫描）" if view.get("existing") else ""
    lines.append(f"扫描 {view['scan_id']}：{len(outcome.files)} 个文件{again}")
    if view["status"] == "failed":
        return [*lines, f"  无法识别：{view.get('error') or ''}"]
    if view["status"] != "captured":
        return [*lines, f"  {STATES.get(view['status'], view['status'])}，稍后查看 {view['status_url']}"]
    for number, document in enumerate(view["documents"], 1):
        lines += _document_lines(number, document)
    for rescan in view.get("rescans", []):
        lines.append(f"✗ {rescan['zh']}")
    # Pages that became no document: refused ones and card-shaped regions passed over are to scan again.
    lines += [f"{'✗' if p['rescan'] else '·'} {p['zh']}" for p in view.get("left_out", [])]
    lines += [f"! {notice}" for notice in view.get("notices", [])]
    # A page to scan again is neither read nor keyed: its fields count nowhere.
    fields = [f for d in view["documents"] if d["status"] != "exception" for f in d["fields"].values()]
    accepted = sum(f["status"] in ("accepted", "keyed") for f in fields)
    pending = sum(f["status"] == "key_entry" for f in fields)
    tail = f"共 {len(view['documents'])} 份文档；{accepted} 个字段已识别，{pending} 个字段送人工录入"
    again = {r["page"] for r in view.get("rescans", [])}
    again |= {p["page"] for p in view.get("left_out", []) if p["rescan"]}
    if again:
        tail += f"；{len(again)} 页需重新扫描"
    return [*lines, tail]


def _document_lines(number: int, document: dict) -> list[str]:
    pages = "、".join(str(p) for p in document["pages"])
    state = (
        "需重新扫描" if document["status"] == "exception" else ("已在档" if document.get("on_file") else "")
    )
    lines = [f"{number}. {document['label']}（第{pages}页）{state}"]
    if document["status"] == "exception":
        return [*lines, "   字段未识别：重新扫描后再识别"]
    for name, f in document["fields"].items():
        if f["status"] in ("accepted", "keyed"):
            value = mask(f["value"]) if "id_number" in name else f["value"]
            lines.append(f"   ✓ {f['label']}：{value}")
        elif f["status"] == "key_entry":
            lines.append(f"   → {f['label']}：送人工录入")
        elif f["status"]:
            lines.append(f"   ✗ {f['label']}：{f['status']}")
    return lines


def watch(
    folder: Path,
    handle: Callable[[list[Path]], Outcome],
    settle: float,
    stop: threading.Event,
    say: Callable[[str], None],
) -> None:
    """Send each batch the station writes into the folder as one scan once no file has appeared or grown
    for ``settle`` seconds, then move its files to done/<scan id>/ or failed/<...>/ (with why.txt);
    until ``stop`` is set. While the service is away the files stay where they are and are tried again."""
    (folder / DONE).mkdir(exist_ok=True)
    (folder / FAILED).mkdir(exist_ok=True)
    seen: dict[Path, tuple[int, int]] = {}
    since = time.monotonic()
    while not stop.is_set():
        now = _files(folder)
        if now != seen:
            seen, since = now, time.monotonic()
        elif now and time.monotonic() - since >= settle:
            outcome = handle(sorted(now))
            if outcome.code == ExitCode.dependency_down:
                say(f"服务暂不可用，{settle * 10:.0f} 秒后重试：{outcome.error}")
                stop.wait(settle * 10)
            else:
                file_away(folder, outcome)
            seen = {}
        stop.wait(POLL)


def _files(folder: Path) -> dict[Path, tuple[int, int]]:
    found = {}
    for path in folder.iterdir():
        if path.is_file() and not path.name.startswith("."):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue  # gone between the listing and the look
            found[path] = (stat.st_size, stat.st_mtime_ns)
    return found


def file_away(folder: Path, outcome: Outcome) -> None:
    """Move a batch's files: sent and read (or still being read) to done/<scan id>/, refused ones and a
    scan that could not be read to failed/<scan id or time>/ with why.txt."""
    view = outcome.view or {}
    name = view.get("scan_id") or time.strftime("%Y%m%dT%H%M%S")
    unreadable = outcome.error or view.get("status") == "failed"
    moves = [(p, FAILED if unreadable else DONE, outcome.error or view.get("error")) for p in outcome.files]
    moves += [(r.path, FAILED, r.why) for r in outcome.refused]
    for path, where, why in moves:
        target = folder / where / name
        target.mkdir(parents=True, exist_ok=True)
        shutil.move(path, target / path.name)
        if where == FAILED:
            with (target / "why.txt").open("a", encoding="utf-8") as note:
                note.write(f"{path.name}: {why}\n")
