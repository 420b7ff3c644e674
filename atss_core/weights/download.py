"""Downloads of weight files into the local cache.

A file appears under its final name only complete and verified: bytes go to ``NAME.part``
beside it (kept when the transfer breaks off, so that the next attempt resumes it with an
HTTP Range request), transient failures (connection refused or reset, timeouts, a stalled
server, HTTP 5xx) are retried with back-off, the length is checked against Content-Length
and, when the file name carries one (torchvision's ``resnet50-0676ba61.pth``), the SHA-256
prefix. A body that is not a weights file (an HTML page, a truncated archive) is refused and
deleted. Processes that ask for the same file at once download it once (a lock file beside
it). Offline, the error names the URL and the exact path to put the file at.

Environment: ATSS_OFFLINE=1 (never use the network), ATSS_DOWNLOAD_TIMEOUT (seconds without
data before a server counts as stalled, default 60), ATSS_DOWNLOAD_RETRIES (default 4).
"""
import errno
import fcntl
import hashlib
import http.client
import os
import pickle
import re
import socket
import ssl
import sys
import time
import urllib.error
import urllib.request
import zipfile

from tqdm import tqdm

from atss_core.utils.logger import progress_bar_wanted

OFFLINE_ENV = "ATSS_OFFLINE"
TIMEOUT_ENV = "ATSS_DOWNLOAD_TIMEOUT"
RETRIES_ENV = "ATSS_DOWNLOAD_RETRIES"
DEFAULT_TIMEOUT = 60.0
DEFAULT_RETRIES = 4
BACKOFF_SECONDS = 1.0  # doubled after each failed attempt
MAX_BACKOFF_SECONDS = 30.0
CHUNK = 1 << 20
# torchvision's naming: <name>-<first hex digits of the SHA-256>.<ext>; a group of digits only
# (a date, an iteration number: "model-0090000.pth") is not taken for a hash
HASH_IN_NAME = re.compile(r"-((?=[0-9a-f]*[a-f])[0-9a-f]{8,64})\.[A-Za-z0-9]+$")
# the start of a torch.save file of the pre-1.6 format: a pickled magic number, then the
# pickled object, then raw tensor bytes (so it does not end with the pickle STOP opcode)
LEGACY_TORCH_START = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)[:-1]
# HTTP statuses worth another attempt besides 5xx
RETRY_STATUSES = {408, 429}
# errors that mean "no network here", not "the server had a bad moment"
_OFFLINE_ERRNOS = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN}

class DownloadError(RuntimeError):
    """A download that failed for good; the message is one line naming the URL."""


class OfflineError(DownloadError):
    pass


class _Transient(Exception):
    """A failure worth another attempt."""


def is_offline():
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def manual_placement_hint(url, path):
    """Where to put the file by hand when the download cannot be made (a firewall, no network)."""
    return ("put the file at {} yourself, for example on a machine with internet `curl -L -o {} {}` and copy it "
            "there".format(path, os.path.basename(path), url))


def offline_message(url, path, reason):
    return "cannot download {} ({}): {}".format(url, reason, manual_placement_hint(url, path))


def _env_number(name, default, kind):
    value = os.environ.get(name, "")
    try:
        return kind(value) if value else default
    except ValueError:
        raise ValueError("{} must be a number, got {!r}".format(name, value)) from None


def download(url, path, timeout=None, retries=None, backoff=BACKOFF_SECONDS):
    """``path``, downloading ``url`` there first when it is not in the cache yet. A download
    that fails for good says where to put the file by hand."""
    if os.path.isfile(path):
        return path
    try:
        return _download(url, path, timeout, retries, backoff)
    except OfflineError:
        raise  # its message already names the path
    except DownloadError as error:
        raise DownloadError("{}; or {}".format(error, manual_placement_hint(url, path))) from None


def _download(url, path, timeout, retries, backoff):
    if is_offline():
        raise OfflineError(offline_message(url, path, "{} is set".format(OFFLINE_ENV)))
    timeout = _env_number(TIMEOUT_ENV, DEFAULT_TIMEOUT, float) if timeout is None else timeout
    retries = _env_number(RETRIES_ENV, DEFAULT_RETRIES, int) if retries is None else retries
    if timeout <= 0 or retries < 0:
        raise ValueError("{} must be > 0 and {} >= 0 (got {} and {})".format(TIMEOUT_ENV, RETRIES_ENV, timeout, retries))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with _FileLock(path + ".lock", url):
        if os.path.isfile(path):  # another process finished it while this one waited
            return path
        part = path + ".part"
        for attempt in range(retries + 1):
            try:
                _fetch(url, path, part, timeout)
                break
            except _Transient as error:
                if attempt == retries:
                    raise DownloadError("could not download {} after {} attempts: {}{}".format(
                        url, retries + 1, error, "; the bytes so far are kept in {} and the next run resumes them"
                        .format(part) if os.path.isfile(part) else "")) from None
                wait = min(backoff * 2 ** attempt, MAX_BACKOFF_SECONDS)
                _say("download of {} failed ({}); retrying in {:.0f} s".format(url, error, wait))
                time.sleep(wait)
        try:
            verify_weights_file(part, os.path.basename(path), url)
        except DownloadError:
            os.remove(part)
            raise
        os.replace(part, path)
    _say("downloaded {} to {}".format(url, path))
    return path


def _fetch(url, path, part, timeout):
    """One attempt: appends to ``part`` from where it ends (Range) until the server's length."""
    have = os.path.getsize(part) if os.path.isfile(part) else 0
    headers = {"User-Agent": "atss_core"}
    if have:
        headers["Range"] = "bytes={}-".format(have)
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:  # nothing left to send: the kept part may be the whole file
            return
        if 500 <= error.code < 600 or error.code in RETRY_STATUSES:
            raise _Transient("HTTP {} {}".format(error.code, error.reason)) from None
        raise DownloadError("could not download {}: HTTP {} {}".format(url, error.code, error.reason)) from None
    except urllib.error.URLError as error:
        reason = error.reason
        if isinstance(reason, ssl.SSLError):  # a certificate problem does not go away by waiting
            raise DownloadError("could not download {}: {}".format(url, reason)) from None
        if isinstance(reason, socket.gaierror) and reason.errno == socket.EAI_AGAIN:
            raise _Transient("temporary failure in name resolution") from None
        if isinstance(reason, socket.gaierror) or getattr(reason, "errno", None) in _OFFLINE_ERRNOS:
            raise OfflineError(offline_message(url, path, "no network: {}".format(reason))) from None
        raise _Transient(str(reason)) from None
    except (OSError, http.client.HTTPException) as error:  # timeouts, resets before the headers
        raise _Transient(str(error) or type(error).__name__) from None
    with response:
        length = response.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if have and response.status == 206:
            start = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
            if not start or int(start.group(1)) != have:  # not the continuation of what is kept
                os.remove(part)
                raise _Transient("the server resumed at another position ({})".format(
                    response.headers.get("Content-Range")))
            total = None if length is None else have + length
            mode = "ab"
        else:
            have, total, mode = 0, length, "wb"
        content_type = response.headers.get("Content-Type", "")
        if content_type.startswith("text/html"):
            raise DownloadError("{} is not a weights file: the server sent an HTML page ({})".format(
                url, _html_title(response.read(4096))))
        received = _copy(response, part, mode, have, total, os.path.basename(path), timeout)
    if total is not None and received < total:
        raise _Transient("the connection closed after {} of {} bytes".format(received, total))
    if total is not None and received > total:
        os.remove(part)
        raise DownloadError("{} sent {} bytes where it announced {}".format(url, received, total))


def _copy(response, part, mode, have, total, name, timeout):
    """Streams the body into ``part``; returns the bytes it now holds. A dropped or stalled
    connection keeps what arrived."""
    received = have
    with open(part, mode) as f, _Progress(name, total, have) as progress:
        while True:
            try:
                chunk = response.read1(CHUNK)  # what has arrived: a stall keeps the bytes before it
            except socket.timeout:
                raise _Transient("no data for {:g} s after {} bytes (a stalled server)".format(timeout, received)) \
                    from None
            except (OSError, http.client.HTTPException) as error:
                raise _Transient("the connection broke after {} bytes ({})".format(
                    received, type(error).__name__)) from None
            if not chunk:
                return received
            f.write(chunk)
            received += len(chunk)
            progress.update(len(chunk))


def _html_title(head):
    found = re.search(rb"<title>(.*?)</title>", head, re.IGNORECASE | re.DOTALL)
    text = found.group(1) if found else head[:80]
    return " ".join(text.decode("utf-8", "replace").split())


def verify_weights_file(path, name, url):
    """Raises DownloadError unless ``path`` looks like a complete weights file and matches the
    SHA-256 prefix its ``name`` carries (if any)."""
    with open(path, "rb") as f:
        head = f.read(512)
    if head.lstrip()[:1] == b"<":
        raise DownloadError("{} is not a weights file: the server sent an HTML or XML page ({})".format(
            url, _html_title(head)))
    if head.startswith(b"PK\x03\x04"):
        if not zipfile.is_zipfile(path):
            raise DownloadError("{} is a truncated archive (no zip directory at its end)".format(url))
    elif head.startswith(LEGACY_TORCH_START):
        pass  # raw tensor bytes at its end: its length was checked against Content-Length
    elif head[:1] == b"\x80":
        with open(path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b".":
                raise DownloadError("{} is a truncated pickle (it does not end with the STOP opcode)".format(url))
    else:
        raise DownloadError("{} is not a weights file (it begins with {!r})".format(url, head[:16]))
    expected = HASH_IN_NAME.search(name)
    if expected:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(CHUNK), b""):
                digest.update(block)
        if not digest.hexdigest().startswith(expected.group(1)):
            raise DownloadError("{}: the SHA-256 of the download ({}...) does not match the {} in its name; "
                                "the file was deleted".format(url, digest.hexdigest()[:12], expected.group(1)))


class _Progress:
    """A tqdm bar (size, rate, ETA) on a terminal; a line per quarter on stderr otherwise (a
    log file; printed, not logged, so that whichever process downloads is heard)."""

    def __init__(self, name, total, initial):
        self.name, self.total, self.done = name, total, initial
        self.start, self.start_bytes = time.time(), initial
        self.bar = tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=name,
                        disable=not progress_bar_wanted())
        self.next_quarter = (4 * initial // total + 1) if total else None
        if self.bar.disable:
            _say("downloading {} ({}){}".format(name, _megabytes(total) if total else "size unknown",
                                                ", resuming at {}".format(_megabytes(initial)) if initial else ""))

    def update(self, count):
        self.done += count
        self.bar.update(count)
        if self.bar.disable and self.total and self.next_quarter <= 4 and self.done * 4 >= self.next_quarter * self.total:
            rate = (self.done - self.start_bytes) / max(time.time() - self.start, 1e-6)
            _say("{}: {}% of {} ({}/s)".format(self.name, 100 * self.done // self.total, _megabytes(self.total),
                                              _megabytes(rate)))
            self.next_quarter = 4 * self.done // self.total + 1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.bar.close()
        return False


def _say(line):
    print(line, file=sys.stderr, flush=True)


def _megabytes(count):
    return "{:.1f} MB".format(count / 1e6)


class _FileLock:
    """An exclusive lock on ``path`` (flock): one process per machine downloads a file."""

    def __init__(self, path, url):
        self.path, self.url = path, url

    def __enter__(self):
        self.file = open(self.path, "a")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _say("waiting for another process that is downloading {}".format(self.url))
            fcntl.flock(self.file, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.file, fcntl.LOCK_UN)
        self.file.close()
        return False
