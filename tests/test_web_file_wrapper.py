"""``wsgi.file_wrapper``: files from WSGI apps (plain, Flask, Django) go out with sendfile."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from _web_helpers import WebProcess, wait_until
from conftest import write_tree

SIZE = 700 * 1024 + 3  # more than one sendfile slice would not matter; not a round number

APPS = {
    "fileapps.py": """
        import io
        import os

        HERE = os.path.dirname(os.path.abspath(__file__))
        MARKERS = os.environ["MARKERS"]


        def mark(name):
            open(os.path.join(MARKERS, name), "w").close()


        class Watched(io.FileIO):
            # A real file that notes whether Python code read it, and when it was closed.
            def __init__(self, name, marker):
                super().__init__(os.path.join(HERE, "data.bin"))
                self.marker = marker

            def read(self, size=-1):
                mark(self.marker + ".read")
                return super().read(size)

            def readinto(self, buffer):
                mark(self.marker + ".read")
                return super().readinto(buffer)

            def close(self):
                if not self.closed:
                    mark(self.marker + ".closed")
                super().close()


        class WatchedBytes(io.BytesIO):
            def close(self):
                mark("bytes.closed")
                super().close()


        def app(environ, start_response):
            wrapper = environ["wsgi.file_wrapper"]
            path = environ["PATH_INFO"]
            headers = [("Content-Type", "application/octet-stream")]
            if path == "/whole":
                start_response("200 OK", headers)
                return wrapper(Watched("data.bin", "whole"), 8192)
            if path == "/part":
                # From the file's position, and no more than the Content-Length given.
                file = Watched("data.bin", "part")
                file.seek(100)
                start_response("200 OK", [*headers, ("Content-Length", "1000")])
                return wrapper(file)
            if path == "/bytes":
                start_response("200 OK", headers)
                return wrapper(WatchedBytes(b"not a real file " * 1000), 4096)
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"no such thing"]
    """,
    "flaskfiles.py": """
        import os

        from flask import Flask, send_file

        app = Flask(__name__)
        HERE = os.path.dirname(os.path.abspath(__file__))


        @app.route("/download")
        def download():
            return send_file(os.path.join(HERE, "data.bin"), mimetype="application/octet-stream")
    """,
    "djangofiles.py": """
        import os

        import django
        from django.conf import settings

        settings.configure(DEBUG=False, SECRET_KEY="test", ROOT_URLCONF=__name__,
                           ALLOWED_HOSTS=["*"], MIDDLEWARE=[])
        django.setup()

        from django.core.signals import request_finished
        from django.core.wsgi import get_wsgi_application
        from django.http import FileResponse
        from django.urls import path

        HERE = os.path.dirname(os.path.abspath(__file__))


        def finished(sender, **kwargs):
            # Sent by the response's close(), which Django hands to the file wrapper.
            open(os.path.join(os.environ["MARKERS"], "django.closed"), "w").close()


        request_finished.connect(finished)


        def download(request):
            return FileResponse(open(os.path.join(HERE, "data.bin"), "rb"))


        urlpatterns = [path("download", download)]
        app = get_wsgi_application()
    """,
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_tree(tmp_path_factory.mktemp("files"), APPS)
    (root / "data.bin").write_bytes(os.urandom(SIZE))
    (root / "markers").mkdir()
    return root


@pytest.fixture(scope="module")
def server(folder: Path) -> Iterator[WebProcess]:
    env = {"MARKERS": str(folder / "markers")}
    with WebProcess(["--wsgi", "fileapps:app"], cwd=folder, env=env) as process:
        yield process


def test_a_wrapped_file_is_sent_with_sendfile_and_closed(server: WebProcess,
                                                         folder: Path) -> None:
    data = (folder / "data.bin").read_bytes()
    response = server.get("/whole")
    assert response.status == 200
    assert response.headers["content-length"] == str(SIZE)
    assert response.body == data
    markers = folder / "markers"
    assert wait_until(lambda: (markers / "whole.closed").exists())
    # Sent by its descriptor: no Python code read the file.
    assert not (markers / "whole.read").exists()


def test_from_the_files_position_up_to_the_content_length(server: WebProcess,
                                                          folder: Path) -> None:
    data = (folder / "data.bin").read_bytes()
    response = server.get("/part")
    assert response.status == 200
    assert response.headers["content-length"] == "1000"
    assert response.body == data[100:1100]
    assert wait_until(lambda: (folder / "markers" / "part.closed").exists())
    head = server.request("HEAD", "/part")
    assert head.headers["content-length"] == "1000" and head.body == b""


def test_a_file_like_object_that_is_not_a_file_is_iterated(server: WebProcess,
                                                            folder: Path) -> None:
    response = server.get("/bytes")
    assert response.status == 200
    assert response.body == b"not a real file " * 1000
    assert wait_until(lambda: (folder / "markers" / "bytes.closed").exists())


def test_flask_send_file(folder: Path) -> None:
    data = (folder / "data.bin").read_bytes()
    with WebProcess(["--wsgi", "flaskfiles:app"], cwd=folder) as process:
        response = process.get("/download")
        assert response.status == 200
        assert response.headers["content-length"] == str(SIZE)
        assert response.body == data
        # A Range makes Werkzeug wrap the file in its own iterable: served by iteration.
        partial = process.get("/download", {"Range": "bytes=10-19"})
        assert partial.status == 206
        assert partial.body == data[10:20]
        head = process.request("HEAD", "/download")
        assert head.headers["content-length"] == str(SIZE) and head.body == b""


def test_django_file_response(folder: Path) -> None:
    data = (folder / "data.bin").read_bytes()
    env = {"MARKERS": str(folder / "markers")}
    with WebProcess(["--wsgi", "djangofiles:app"], cwd=folder, env=env) as process:
        response = process.get("/download")
        assert response.status == 200
        assert response.headers["content-length"] == str(SIZE)
        assert response.body == data
        assert wait_until(lambda: (folder / "markers" / "django.closed").exists())
