"""Downloads of weight files (atss_core/weights/download.py, sources.py) from a real HTTP
server on 127.0.0.1 that injects every fault the issue names: a dropped connection (resumed
with Range), 503 then 200, a stalled server, a wrong length, a wrong hash, an HTML page, a
truncated archive, 404, a redirect, two processes at once and no network. Each ends with the
file in the cache or one clear message, and never a file under its final name that is not
complete and verified."""
import hashlib
import io
import os
import pickle
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import torch

from atss_core.config.paths_catalog import ModelCatalog
from atss_core.weights.download import DownloadError, OfflineError, download
from atss_core.weights.sources import resolve_weights, url_cache_path
from tests.conftest import ROOT


def weights_bytes(seed=0):
    """A real (small) .pth file: a zip archive written by torch.save."""
    buffer = io.BytesIO()
    torch.save({"model": {"w": torch.randn(64, 64, generator=torch.Generator().manual_seed(seed))}}, buffer)
    return buffer.getvalue()


class FaultyHandler(BaseHTTPRequestHandler):
    """GET /<fault>/<file name>: the file's bytes, delivered with that fault."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        server = self.server
        fault, _, name = self.path.lstrip("/").partition("/")
        with server.lock:
            server.requests.append((self.path, self.headers.get("Range")))
            count = sum(1 for path, _ in server.requests if path == self.path)
        body = server.files.get(name.split("?")[0])
        if body is None or fault == "missing":
            return self.reply(404, b"<html><title>404 Not Found</title></html>", "text/html")
        if fault == "redirect":
            self.send_response(302)
            self.send_header("Location", "/files/" + name)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        if fault == "flaky" and count == 1:
            return self.reply(503, b"busy", "text/plain")
        if fault == "drop" and count == 1:  # the full length announced, half sent, connection closed
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return None
        if fault == "stall":  # headers and a few bytes, then nothing
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:100])
            self.wfile.flush()
            time.sleep(2.0)
            self.close_connection = True
            return None
        if fault == "short":  # announces more than it ever sends, and ignores Range
            self.send_response(200)
            self.send_header("Content-Length", str(len(body) + 100))
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True
            return None
        if fault == "html":  # a cloud drive's "confirm the download" page, as a 200
            return self.reply(200, b"<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title>",
                              "text/html; charset=utf-8")
        if fault == "htmlbinary":  # the same page with a binary content type
            return self.reply(200, b"\n<html><title>Sign in</title></html>", "application/octet-stream")
        if fault == "truncated":  # a cut archive with a matching Content-Length
            return self.reply(200, body[:len(body) * 2 // 3], "application/octet-stream")
        if fault == "slow":  # for the two-process test: about 1 s in 10 pieces
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            step = len(body) // 10 + 1
            for start in range(0, len(body), step):
                self.wfile.write(body[start:start + step])
                self.wfile.flush()
                time.sleep(0.1)
            return None
        return self.serve(body)

    def reply(self, status, payload, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def serve(self, body):
        requested = self.headers.get("Range")
        start = int(requested.split("=")[1].split("-")[0]) if requested else 0
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", "bytes {}-{}/{}".format(start, len(body) - 1, len(body)))
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:])


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FaultyHandler)
    httpd.daemon_threads = True
    httpd.lock = threading.Lock()
    httpd.requests = []
    httpd.files = {}
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.url = "http://127.0.0.1:{}".format(httpd.server_address[1])
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ATSS_WEIGHTS_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ATSS_OFFLINE", raising=False)
    return tmp_path / "cache"


def publish(server, name, body=None):
    server.files[name] = weights_bytes() if body is None else body
    return server.files[name]


def fast_download(url, path, **kwargs):
    return download(url, str(path), **dict(dict(timeout=0.5, retries=2, backoff=0.01), **kwargs))


def left_in(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.suffix != ".lock")


def test_a_download_lands_in_the_cache_and_is_used_without_the_network_next_time(server, cache):
    body = publish(server, "plain.pth")
    url = server.url + "/files/plain.pth"
    path = resolve_weights(url)
    assert path == url_cache_path(url) and path.startswith(str(cache))
    assert open(path, "rb").read() == body
    before = len(server.requests)
    assert resolve_weights(url) == path and len(server.requests) == before  # the cache answers
    assert left_in(cache) == [os.path.relpath(path, cache)]


def test_a_redirect_is_followed(server, cache):
    body = publish(server, "moved.pth")
    assert open(fast_download(server.url + "/redirect/moved.pth", cache / "moved.pth"), "rb").read() == body


def test_a_dropped_connection_is_resumed_with_a_range_request(server, cache):
    body = publish(server, "dropped.pth")
    path = fast_download(server.url + "/drop/dropped.pth", cache / "dropped.pth")
    assert open(path, "rb").read() == body
    ranges = [r for p, r in server.requests if p == "/drop/dropped.pth"]
    assert ranges == [None, "bytes={}-".format(len(body) // 2)]


def test_a_server_error_is_retried(server, cache):
    body = publish(server, "busy.pth")
    assert open(fast_download(server.url + "/flaky/busy.pth", cache / "busy.pth"), "rb").read() == body
    assert sum(p == "/flaky/busy.pth" for p, _ in server.requests) == 2


def test_a_stalled_server_ends_in_a_message_and_the_part_is_kept_for_the_next_run(server, cache):
    publish(server, "stalled.pth")
    with pytest.raises(DownloadError, match=r"after 2 attempts: no data for 0.3 s after 100 bytes \(a stalled server\).*next run resumes"):
        fast_download(server.url + "/stall/stalled.pth", cache / "stalled.pth", timeout=0.3, retries=1)
    assert not (cache / "stalled.pth").exists() and (cache / "stalled.pth.part").stat().st_size >= 100


def test_a_length_that_never_arrives_is_an_error(server, cache):
    body = publish(server, "short.pth")
    with pytest.raises(DownloadError, match="connection closed after {} of {} bytes".format(len(body), len(body) + 100)):
        fast_download(server.url + "/short/short.pth", cache / "short.pth")
    assert not (cache / "short.pth").exists()


def test_the_hash_in_the_file_name_is_verified(server, cache):
    body = publish(server, "tiny-0000dead.pth")
    with pytest.raises(DownloadError, match=r"SHA-256 of the download .* does not match the 0000dead .*deleted"):
        fast_download(server.url + "/files/tiny-0000dead.pth", cache / "tiny-0000dead.pth")
    assert left_in(cache) == []
    # digits only after the hyphen are an iteration or a date, not a hash
    publish(server, "model-0090000.pth", body)
    assert open(fast_download(server.url + "/files/model-0090000.pth", cache / "model-0090000.pth"), "rb").read() == body
    good = "tiny-{}.pth".format(hashlib.sha256(body).hexdigest()[:8])
    publish(server, good, body)
    assert open(fast_download(server.url + "/files/" + good, cache / good), "rb").read() == body


@pytest.mark.parametrize("fault,message", [
    ("html", "the server sent an HTML page (Google Drive - Virus scan warning)"),
    ("htmlbinary", "the server sent an HTML or XML page (Sign in)"),
    ("truncated", "is a truncated archive"),
    ("missing", "HTTP 404 Not Found"),
])
def test_what_is_not_a_weights_file_is_refused_and_nothing_is_cached(server, cache, fault, message):
    publish(server, "page.pth")
    with pytest.raises(DownloadError, match="could not download|not a weights file|truncated") as error:
        fast_download(server.url + "/{}/page.pth".format(fault), cache / "page.pth")
    assert message in str(error.value) and server.url in str(error.value)
    assert "\n" not in str(error.value)
    assert left_in(cache) == []


def test_a_truncated_pickle_is_refused(server, cache):
    blob = pickle.dumps({"blobs": {"conv1_w": np.ones((4, 3, 7, 7), np.float32)}})
    publish(server, "cut.pkl", blob[:-10])
    with pytest.raises(DownloadError, match="truncated pickle"):
        fast_download(server.url + "/files/cut.pkl", cache / "cut.pkl")


def test_offline_names_the_url_the_cache_path_and_the_command(server, cache, monkeypatch):
    monkeypatch.setenv("ATSS_OFFLINE", "1")
    path = ModelCatalog.get("ImageNetPretrained/MSRA/R-50")
    with pytest.raises(OfflineError) as error:
        resolve_weights("catalog://ImageNetPretrained/MSRA/R-50")
    message = str(error.value)
    assert "https://dl.fbaipublicfiles.com/detectron/ImageNetPretrained/MSRA/R-50.pkl" in message
    assert path in message and "curl -L -o R-50.pkl" in message and "ATSS_OFFLINE" in message
    assert not server.requests or all("R-50" not in p for p, _ in server.requests)


def test_a_refused_connection_is_retried_then_reported(cache):
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(DownloadError, match=r"after 2 attempts: .*[Cc]onnection refused") as refused:
        fast_download("http://127.0.0.1:{}/files/x.pth".format(port), cache / "x.pth", retries=1)
    # behind a firewall this is what one sees: the message says where to put the file by hand
    assert "put the file at {} yourself".format(cache / "x.pth") in str(refused.value)


def test_the_catalog_address_can_point_at_a_mirror(server, cache, monkeypatch):
    blob = pickle.dumps({"blobs": {"conv1_w": np.ones((4, 3, 7, 7), np.float32)}})
    publish(server, "ImageNetPretrained/MSRA/R-101.pkl", blob)
    monkeypatch.setenv("ATSS_CATALOG_URL", server.url + "/files/")
    path = resolve_weights("catalog://ImageNetPretrained/MSRA/R-101")
    assert path == str(cache / "ImageNetPretrained" / "MSRA" / "R-101.pkl") and open(path, "rb").read() == blob


DOWNLOAD_SCRIPT = "import sys; from atss_core.weights.download import download; print(download(sys.argv[1], sys.argv[2]))"


def test_two_processes_download_once(server, cache):
    body = publish(server, "shared.pth")
    url, path = server.url + "/slow/shared.pth", str(cache / "shared.pth")
    processes = [subprocess.Popen([sys.executable, "-c", DOWNLOAD_SCRIPT, url, path], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=120) + (p.returncode,) for p in processes]
    assert [r[2] for r in results] == [0, 0], results
    assert [r[0].strip() for r in results] == [path, path]
    assert open(path, "rb").read() == body
    assert sum(p == "/slow/shared.pth" for p, _ in server.requests) == 1


# ------------------------------------------------------------------ through the entry points
def entry_point_env(cache, **extra):
    env = dict(os.environ, ATSS_WEIGHTS_DIR=str(cache), ATSS_DOWNLOAD_TIMEOUT="2", ATSS_DOWNLOAD_RETRIES="1")
    env.pop("ATSS_OFFLINE", None)
    env.update(extra)
    return env


def test_the_demo_takes_weights_from_a_url_and_a_bad_url_is_one_line(server, cache, tmp_path):
    from tests.tools.test_train_test_net import TINY_MODEL
    from atss_core.config import cfg as default_cfg
    from atss_core.modeling.detector import build_detection_model
    import cv2

    (tmp_path / "tiny.yaml").write_text(TINY_MODEL)
    cfg = default_cfg.clone()
    cfg.merge_from_file(str(tmp_path / "tiny.yaml"))
    buffer = io.BytesIO()
    torch.save({"model": build_detection_model(cfg).state_dict()}, buffer)
    publish(server, "detector.pth", buffer.getvalue())
    cv2.imwrite(str(tmp_path / "a.png"), np.full((64, 80, 3), 90, np.uint8))

    def demo(url):
        return subprocess.run([sys.executable, os.path.join(ROOT, "demo", "atss_demo.py"), "--config-file",
                               str(tmp_path / "tiny.yaml"), "--weights", url, "--input", str(tmp_path / "a.png"),
                               "--output", str(tmp_path / "out")], capture_output=True, text=True, timeout=300,
                              env=entry_point_env(cache))

    ok = demo(server.url + "/drop/detector.pth")
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert os.path.isfile(url_cache_path(server.url + "/drop/detector.pth"))
    bad = demo(server.url + "/html/detector.pth")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert "error: {}/html/detector.pth is not a weights file: the server sent an HTML page".format(server.url) \
        in bad.stderr


def test_train_net_downloads_the_configs_catalog_weights(server, cache, tmp_path):
    """The official configs' MODEL.WEIGHT (catalog://ImageNetPretrained/MSRA/R-50) with the
    catalog address on a loopback mirror: fetched, cached, loaded into the body."""
    from tests.tools.test_train_test_net import TINY_MODEL, make_dataset

    stem = np.random.RandomState(0).rand(32, 3, 7, 7).astype(np.float32)
    publish(server, "ImageNetPretrained/MSRA/R-50.pkl", pickle.dumps({"blobs": {"conv1_w": stem}}))
    (tmp_path / "tiny.yaml").write_text(TINY_MODEL)
    dataset = make_dataset(tmp_path / "data", n=2)
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", "train_net.py"), "--config-file", str(tmp_path / "tiny.yaml"),
         "--skip-test", "MODEL.WEIGHT", "catalog://ImageNetPretrained/MSRA/R-50", "DATASETS.TRAIN", "('{}',)".format(
             dataset), "SOLVER.MAX_ITER", "1", "SOLVER.IMS_PER_BATCH", "1", "SOLVER.BASE_LR", "0.0",
         "OUTPUT_DIR", str(tmp_path / "run"), "TENSORBOARD.ENABLED", "False"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
        env=entry_point_env(cache, ATSS_CATALOG_URL=server.url + "/redirect"))
    assert result.returncode == 0, result.stderr[-3000:]
    cached = cache / "ImageNetPretrained" / "MSRA" / "R-50.pkl"
    assert cached.is_file()
    final = torch.load(tmp_path / "run" / "model_final.pth", weights_only=True)["model"]
    assert torch.equal(final["backbone.body.stem.conv1.weight"], torch.from_numpy(stem))


def test_a_name_that_does_not_resolve_is_offline_not_retried(cache, monkeypatch):
    """DNS failure (no network): the offline message at once, no retries."""
    import socket

    calls = []

    def no_dns(*args, **kwargs):
        calls.append(args[0])
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    with pytest.raises(OfflineError, match=r"cannot download https://weights.example/w.pth \(no network: .*Name or "
                                           r"service not known\): put the file at .*w.pth"):
        fast_download("https://weights.example/w.pth", cache / "w.pth", retries=3)
    assert calls == ["weights.example"]


def test_a_pre_1_6_torch_file_is_accepted(server, cache):
    """The legacy torch.save format ends with raw tensor bytes, not the pickle STOP opcode."""
    buffer = io.BytesIO()
    torch.save({"model": {"w": torch.ones(3)}}, buffer, _use_new_zipfile_serialization=False)
    body = publish(server, "legacy.pth", buffer.getvalue())
    assert open(fast_download(server.url + "/files/legacy.pth", cache / "legacy.pth"), "rb").read() == body


def test_addresses_that_differ_in_their_query_have_their_own_cache_files(cache):
    first = url_cache_path("https://drive.example/uc?export=download&id=AAA")
    second = url_cache_path("https://drive.example/uc?export=download&id=BBB")
    assert first != second and os.path.basename(first) == os.path.basename(second) == "uc"
    assert url_cache_path("https://drive.example/a/b.pth") == str(cache / "drive.example" / "a" / "b.pth")


def test_bad_settings_are_named(cache, monkeypatch):
    monkeypatch.setenv("ATSS_DOWNLOAD_RETRIES", "-1")
    with pytest.raises(ValueError, match="ATSS_DOWNLOAD_RETRIES >= 0"):
        download("http://127.0.0.1:9/x.pth", str(cache / "x.pth"))


def test_mmdet_names_resolve_to_the_zoo_file_and_can_point_at_a_mirror(server, cache, monkeypatch):
    """mmdet://atss_r50_fpn_1x_coco asks the mirror for the zoo's file name, whose hash part
    (985f7bd0) is verified: a file that is not the zoo's is refused and not cached."""
    name = "atss_r50_fpn_1x_coco_20200209-985f7bd0.pth"
    publish(server, name)
    monkeypatch.setenv("ATSS_MMDET_URL", server.url + "/files")
    monkeypatch.setenv("ATSS_DOWNLOAD_RETRIES", "1")
    with pytest.raises(DownloadError, match="does not match the 985f7bd0"):
        resolve_weights("mmdet://atss_r50_fpn_1x_coco")
    assert ("/files/" + name, None) in server.requests
    assert left_in(cache) == []
    with pytest.raises(ValueError, match="unknown mmdetection model 'atss_r18'.*atss_r101_fpn_1x_coco"):
        resolve_weights("mmdet://atss_r18")
