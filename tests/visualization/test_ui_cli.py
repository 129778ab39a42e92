"""``elixirscope ui``: loopback unless told otherwise, a token in the URL it prints, a
clear error for what it cannot serve."""

from __future__ import annotations

import urllib.error
import urllib.request

from cinema_recordings import UiServer, elixirscope


def test_a_host_other_than_loopback_needs_allow_remote(tmp_path):
    done = elixirscope("ui", "--data-dir", str(tmp_path), "--host", "0.0.0.0", cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    assert "--host 0.0.0.0 is not a loopback address" in done.stderr
    assert "--allow-remote" in done.stderr


def test_a_missing_data_dir_is_named(tmp_path):
    done = elixirscope("ui", "--data-dir", str(tmp_path / "nothing"), cwd=tmp_path, timeout=60)
    assert done.returncode == 1
    assert f"no data dir {tmp_path / 'nothing'}" in done.stderr


def test_it_serves_with_a_random_token_and_warns_when_remote(cinema_data):
    first, second = UiServer(cinema_data), UiServer(cinema_data, "--host", "0.0.0.0", "--allow-remote")
    try:
        assert first.base.startswith("http://127.0.0.1:") and len(first.token) >= 32
        assert first.token != second.token
        with urllib.request.urlopen(first.url) as page:
            assert page.status == 200
        try:
            urllib.request.urlopen(first.base + "/api/runs")
            raise AssertionError("served without the token")
        except urllib.error.HTTPError as exc:
            assert exc.code == 403
        port = second.base.rsplit(":", 1)[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/runs?token={second.token}") as r:
            assert r.status == 200
    finally:
        first.close()
        second.close()
    assert "warning: serving on 0.0.0.0, not loopback" in second.proc.stderr.read()  # type: ignore[union-attr]
