"""``elixirscope insights`` and ``elixirscope explain`` as a person runs them: the report
grouped by severity, --json, thresholds from the config file, clear errors; an
explanation streamed from a real local server that never sees the recorded secrets."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from programs import elixirscope, record
from servers import serving
from test_providers import SSE, openai_chunks, scripted

from elixirscope.ai.explain import explain
from elixirscope.ai.insights import insights_report
from elixirscope.ai.settings import InsightSettings

LOW_N_PLUS_ONE = "[insights]\nn_plus_one_min_total_ms = 5.0\n"


def test_insights_prints_findings_by_severity_with_where_and_what_to_run(recorded, tmp_path) -> None:
    config = tmp_path / "es.toml"
    config.write_text(LOW_N_PLUS_ONE)
    data = recorded["n_plus_one"]
    done = elixirscope("insights", "--data-dir", str(data), "--config", str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert re.match(r"run [0-9a-f]{8}  .*shop_db\.py n\+1  .*\n2 findings: 2 high\n\nHIGH \(2\)\n", text)
    ids = re.findall(r"^  (F[0-9a-f]{9})  N\+1 queries: 30 x `SELECT", text, re.M)
    assert len(ids) == 2
    assert "where   " in text and "the loop" in text and "look    elixirscope calltree --data-dir " in text
    as_json = elixirscope("insights", "--data-dir", str(data), "--config", str(config), "--json",
                          cwd=tmp_path)
    report = json.loads(as_json.stdout)
    assert [f["id"] for f in report["findings"]] == ids
    assert report["counts"] == {"high": 2, "medium": 0, "low": 0}
    local = insights_report(data, settings=InsightSettings(n_plus_one_min_total_ms=5.0))
    assert json.loads(json.dumps(local["findings"], default=str)) == report["findings"]
    # the default thresholds (Sentry's) are the configuration's when the file says nothing
    config.write_text("[insights]\nn_plus_one_min_queries = 31\n")
    done = elixirscope("insights", "--data-dir", str(data), "--config", str(config), cwd=tmp_path)
    assert "no findings" in done.stdout


def test_each_finding_prints_its_cinema_link_whole_when_the_cinema_url_is_known(
    recorded, tmp_path
) -> None:
    data = recorded["service"]
    report = insights_report(data)
    links = [f["cinema"] for f in report["findings"]]
    assert links and all(link.startswith(f"#view=timeline&run={report['run']}&t=") for link in links)
    # without the cinema's URL: the part to paste after it, and one line saying so, last
    assert re.findall(r"^    open    (\S+)$", report["text"], re.M) == links
    assert report["text"].endswith("\n\nopen: paste a link after the URL `elixirscope ui` prints "
                                   "(--ui URL prints it whole)")
    ui = "http://127.0.0.1:8765/?token=t0k#view=runs"  # its own fragment gives way
    done = elixirscope("insights", "--data-dir", str(data), "--ui", ui, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    whole = [f"http://127.0.0.1:8765/?token=t0k{link}" for link in links]
    assert re.findall(r"^    open    (\S+)$", done.stdout, re.M) == whole
    assert "paste" not in done.stdout
    configured = insights_report(data, settings=InsightSettings(ui_url=ui))["text"]
    assert re.findall(r"^    open    (\S+)$", configured, re.M) == whole
    done = elixirscope("insights", "--data-dir", str(data), "--ui", "127.0.0.1:8765", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr == (
        "elixirscope insights: --ui: '127.0.0.1:8765' is not an http:// or https:// URL\n")


def test_insights_errors_say_what_is_wrong(recorded, tmp_path) -> None:
    done = elixirscope("insights", "--data-dir", str(tmp_path / "none"), cwd=tmp_path)
    assert done.returncode == 1 and done.stderr == (
        f"elixirscope insights: nothing recorded under {tmp_path / 'none'} yet\n")
    done = elixirscope("insights", "--data-dir", str(recorded["latency"]), "zzz", cwd=tmp_path)
    assert done.returncode == 1 and "no run 'zzz'" in done.stderr
    config = tmp_path / "bad.toml"
    config.write_text("[insights]\nmailbox_depth = 1\n")
    done = elixirscope("insights", "--data-dir", str(recorded["latency"]), "--config", str(config),
                       cwd=tmp_path)
    assert done.returncode == 2 and "insights.mailbox_depth" in done.stderr
    config.write_text('[ai]\nprovider = "claude"\n')
    done = elixirscope("explain", "--data-dir", str(recorded["latency"]), "--config", str(config),
                       "1", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr == (
        "elixirscope explain: Expected `'offline' | 'openai' | 'gemini'`, got `'claude'` - at "
        f"`ai.provider` (from {config})\n")


def test_explain_offline_a_finding_and_an_event(recorded, tmp_path) -> None:
    data = recorded["crash_loop"]
    listed = elixirscope("insights", "--data-dir", str(data), "--json", cwd=tmp_path)
    loop = next(f for f in json.loads(listed.stdout)["findings"] if f["kind"] == "crash_loop")
    done = elixirscope("explain", "--data-dir", str(data), loop["id"][:6], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{loop['title']} (high)\n\n")  # paragraphs, wrapped
    said = " ".join(done.stdout.split())
    assert said.startswith(" ".join(f"{loop['title']} (high) {loop['explanation']}".split()))
    # where it raised (from the actor capture) and the state its first crash found
    (site,) = loop["locations"]
    assert f"Where: {site['file']}:{site['line']} (raised here)" in said
    assert "The state of app/parser when 'x' arrived was " in said
    assert " ".join(f"What to do: {loop['fix']}".split()) in said
    assert re.fullmatch(r"\(offline, context [\d,]+ characters\)\n", done.stderr)
    event = loop["evidence"][0]["id"]
    done = elixirscope("explain", "--data-dir", str(data), str(event), "--json", cwd=tmp_path)
    report = json.loads(done.stdout)
    assert report["target"]["type"] == "state" and report["provider"] == "offline"
    shown = elixirscope("explain", "--data-dir", str(data), f"#{event}", "--json", cwd=tmp_path)
    assert json.loads(shown.stdout)["target"] == report["target"]  # as `events` shows its id
    assert "app/parser handled 'x' in handle_call and raised ValueError" in report["answer"]
    assert report["context"].startswith("# Explain this recorded event\n")
    # the commands it suggests read the same recording when pasted as they are
    answer = " ".join(report["answer"].split())
    assert f"`elixirscope history --data-dir {data} --run {loop['run'][:8]} app/parser`" in answer
    assert f" `elixirscope {loop['commands'][0].split()[1]} --data-dir {data} --run " in said


def test_explain_errors_say_what_to_give(recorded, tmp_path) -> None:
    data = str(recorded["crash_loop"])
    done = elixirscope("explain", "--data-dir", data, "abc", cwd=tmp_path)
    assert done.returncode == 1 and done.stderr == (
        "elixirscope explain: cannot explain 'abc': give an event id (a number, #105 in "
        "`elixirscope events`) or a finding id (F and nine hex digits, F1a2b3c4d5: see "
        "`elixirscope insights`)\n")
    found = json.loads(elixirscope("insights", "--data-dir", data, "--json", cwd=tmp_path).stdout)
    first, title = found["findings"][0]["id"], found["findings"][0]["title"]
    done = elixirscope("explain", "--data-dir", data, first.lower(), cwd=tmp_path)
    assert done.returncode == 0 and title in done.stdout  # typed in lower case: the same id
    done = subprocess.run(  # its reader stopped early (| head): no error
        ["bash", "-c", "set -o pipefail; \"$0\" -m elixirscope explain --data-dir \"$1\" "
         "\"$2\" | head -1", sys.executable, data, first],
        capture_output=True, text=True, cwd=tmp_path, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0 and "elixirscope explain:" not in done.stderr
    assert done.stdout.count("\n") == 1
    for target, error, message in [
        ("999999", LookupError, "no event 999999 in run "),
        ("Fffffffff", LookupError, "no finding 'Fffffffff' in run "),
    ]:
        with pytest.raises(error, match=re.escape(message)):
            explain(data, target)


def test_a_finding_id_of_an_earlier_run_is_found_without_naming_its_run(recorded) -> None:
    """Two programs recorded into one data dir (a server and the service it calls): an id
    `insights --all-runs` printed is explained without `--run`, from the run it is in."""
    from elixirscope.ai.insights import find, find_finding
    from elixirscope.ai.recording import load_recording
    from elixirscope.query.runs import list_runs

    data = recorded["latency"]
    every = InsightSettings(slow_request_ms=0.001, slow_factor=1.0)  # a finding in every run
    newest, _, oldest = list_runs(data)
    findings, _ = find(load_recording(data, oldest.id), every)
    wanted = next(f for f in findings if f.kind == "slow_request")
    found, recording = find_finding(data, wanted.id, settings=every)
    assert (found.id, recording.run) == (wanted.id, oldest.id)
    with pytest.raises(LookupError, match=f"no finding '{wanted.id}' in run {newest.id[:8]}"):
        find_finding(data, wanted.id, run=newest.id, settings=every)  # a run named: that run


SECRETS = '''
def login(user, password):
    api_token = "tok-9f8e7d6c5b4a3921"
    if password != api_token:
        raise PermissionError(f"wrong password for {user}")


def main():
    try:
        login("ann", "hunter2-secret")
    except PermissionError:
        pass


main()
'''


def test_explain_streams_a_language_models_answer_and_never_sends_a_secret(tmp_path) -> None:
    # recorded with no redaction at all, so the recording holds the password ...
    data = record(tmp_path, "secrets", SECRETS, env={"ELIXIRSCOPE_REDACTION__PROCESSORS": "[]"})
    events = elixirscope("events", "--data-dir", str(data), "--json", "--all", cwd=tmp_path)
    assert "hunter2-secret" in events.stdout
    error = next(e for e in json.loads(events.stdout)["events"] if e["type"] == "exception")
    # ... and explain redacts it (and the token in the source) before anything is sent
    with serving(scripted((200, SSE, openai_chunks("login raised ", "PermissionError.")))) as (
            base, app):
        config = tmp_path / "llm.toml"
        config.write_text(f'[ai]\nprovider = "openai"\nopenai_url = "{base}/v1"\n'
                          'openai_key_var = "ES_SECRET_TEST_KEY"\n')
        done = elixirscope("explain", "--data-dir", str(data), "--config", str(config),
                           str(error["id"]), cwd=tmp_path, env={"ES_SECRET_TEST_KEY": "k-1"})
    assert done.returncode == 0, done.stderr
    assert done.stdout == "login raised PermissionError.\n"
    assert done.stderr == "(openai gpt-4o-mini, 46 tokens, context " + done.stderr.split("context ")[1]
    (request,) = app.requests
    body = request["body"].decode()
    assert "hunter2-secret" not in body and "tok-9f8e7d6c5b4a3921" not in body
    sent = json.loads(body)["messages"][1]["content"]
    assert "password='<redacted>'" in sent and 'api_token = "<redacted>"' in sent
    assert "PermissionError" in sent and "def login(user, password):" in sent


def test_insights_of_every_run(recorded, tmp_path) -> None:
    """``--all-runs``: each run's findings under its own header, newest first; with a run
    too, a usage error."""
    data = recorded["latency"]
    done = elixirscope("insights", "--data-dir", str(data), "--all-runs", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    every = json.loads(done.stdout)
    runs = json.loads(elixirscope("runs", "--data-dir", str(data), "--json", cwd=tmp_path).stdout)
    assert [r["run"] for r in every["runs"]] == [r["id"] for r in runs["runs"]]
    latest = json.loads(elixirscope("insights", "--data-dir", str(data), "--json", cwd=tmp_path).stdout)
    assert every["runs"][0]["findings"] == latest["findings"]
    text = elixirscope("insights", "--data-dir", str(data), "--all-runs", cwd=tmp_path).stdout
    assert text.startswith(f"all {len(runs['runs'])} runs: ")
    assert [line[4:12] for line in text.splitlines() if line.startswith("run ")] == [
        r["id"][:8] for r in runs["runs"]]
    both = elixirscope("insights", "--data-dir", str(data), "--all-runs", "--run", "a", cwd=tmp_path)
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
