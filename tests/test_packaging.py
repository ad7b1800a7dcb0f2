"""What PyPI would get: an sdist and a wheel that carry the scenarios and the page, pass
`twine check --strict`, and a long description whose links lead somewhere; and what a plain
install needs (the main job, the fixture, `serve`) without the extras."""

from __future__ import annotations

import importlib.util
import re
import sys
import tarfile
import zipfile
from email.parser import Parser

import pytest

from harness.cli.main import main
from tests.fresh_venv import REPO, run, source_tree

RELATIVE_LINK = re.compile(r"\]\((?![a-z]+:|#)")


def setup_py():
    spec = importlib.util.spec_from_file_location("setup_py", REPO / "setup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # setup() runs only as a script
    return module


def test_readmes_relative_links_become_plain_paths_or_links_into_the_repository():
    long_description = setup_py().long_description
    readme = (
        "See [the plugin](docs/plugin.md), [`examples/`](examples), [top](#install) and "
        "[aiosmtpd](https://aiosmtpd.readthedocs.io/).\n"
        "[![page](docs/screenshots/a.png)](docs/screenshots/a.png)\n"
    )

    assert long_description(readme, None) == (
        "See the plugin (`docs/plugin.md`), `examples/`, [top](#install) and "
        "[aiosmtpd](https://aiosmtpd.readthedocs.io/).\n (`docs/screenshots/a.png`)\n"
    )
    linked = long_description(readme, "https://example.org/me/ses-fault-harness/")
    assert "[the plugin](https://example.org/me/ses-fault-harness/blob/main/docs/plugin.md)" in (
        linked
    )
    assert "(https://example.org/me/ses-fault-harness/raw/main/docs/screenshots/a.png)" in linked
    assert not RELATIVE_LINK.search(linked)


@pytest.mark.slow
def test_the_sdist_and_wheel_carry_the_scenarios_and_the_page_and_pass_twine(tmp_path):
    source = source_tree(tmp_path / "source")
    out = tmp_path / "dist"
    python = sys.executable
    built = run([python, "-m", "build", "--no-isolation", "--outdir", str(out), "."], source)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    wheel, sdist = next(out.glob("*.whl")), next(out.glob("*.tar.gz"))

    checked = run([python, "-m", "twine", "check", "--strict", str(wheel), str(sdist)], REPO)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    carried = {
        *(f"harness/scenarios/{p.name}" for p in (REPO / "harness/scenarios").glob("*.toml")),
        *(
            f"harness/scenarios/providers/{p.name}"
            for p in (REPO / "harness/scenarios/providers").glob("*.toml")
        ),
        *(f"harness/console/web/{p.name}" for p in (REPO / "harness/console/web").iterdir()),
        *(f"harness/reports/assets/{p.name}" for p in (REPO / "harness/reports/assets").iterdir()),
        "harness/reports/SCHEMA.md",
        "harness/py.typed",
    }
    assert carried <= in_wheel
    top = sdist.name.removesuffix(".tar.gz")
    with tarfile.open(sdist) as archive:
        in_sdist = {name.removeprefix(f"{top}/") for name in archive.getnames()}
    assert carried <= in_sdist
    assert {"LICENSE", "docs/architecture.md", "examples/mymail.py"} <= in_sdist
    assert not any("node_modules" in name for name in in_sdist)

    dist_info = next(n for n in in_wheel if n.endswith(".dist-info/METADATA"))
    metadata = Parser().parsestr(zipfile.ZipFile(wheel).read(dist_info).decode())
    assert metadata["Description-Content-Type"] == "text/markdown"
    description = metadata.get_payload()
    assert description.startswith("# ses-fault-harness")
    assert not RELATIVE_LINK.search(description), RELATIVE_LINK.search(description)
    entry_points = zipfile.ZipFile(wheel).read(dist_info.replace("METADATA", "entry_points.txt"))
    assert b"fake_ses = harness.plugin.pytest_plugin" in entry_points


# The main job, the fixture and serve, with what only the extras bring made unimportable.
WITHOUT_EXTRAS = """
import sys
for name in ("hypothesis", "xdist", "aiosmtplib", "boto3", "django"):
    sys.modules[name] = None
import smtplib
from harness import FakeSES
from harness.cli.main import build_parser, main
import harness.plugin.pytest_plugin, harness.console.app

build_parser()  # every subcommand's options
with FakeSES(profile="ses") as ses:
    smtplib.SMTP(ses.host, ses.port).sendmail("a@example.com", ["b@example.com"], b"hi")
assert len(ses.ledger.messages) == 1
sys.exit(main(["run", "session-cap", "--strategy", "robust", "--report-dir", "out", "-n", "1"]))
"""


def test_the_main_job_the_fixture_and_serve_need_no_extra(tmp_path):
    done = run([sys.executable, "-c", WITHOUT_EXTRAS], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed, 0 failed" in done.stdout


def test_hunt_without_hypothesis_says_which_extra_to_install(monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "hypothesis" else real(name)
    )

    assert main(["hunt", "--strategy", "naive"]) == 2
    assert "pip install 'ses-fault-harness[hunt]'" in capsys.readouterr().err
