"""Plugins written for twistd: a service maker with ``tapname``/``makeService`` is listed as
broken under its tapname, with the one-line porting advice, by every command that shows it."""

from __future__ import annotations

from pathlib import Path

from _plugin_helpers import make_dist
from conftest import run_dropins, write_tree

TWISTD_MAKER = '''
from zope.interface import implementer

from dropins import IPlugin, Options
from dropins.service.interfaces import IServiceMaker


@implementer(IPlugin, IServiceMaker)
class MyServiceMaker:
    tapname = "{tapname}"
    description = "Run this! It'll make your dog happy."
    options = Options

    def makeService(self, options):
        raise AssertionError("never called")


serviceMaker = MyServiceMaker()
'''

ADVICE = "provides IServiceMaker but has tapname/makeService: rename to name/make_service"


def test_twistd_shaped_service_maker_says_how_to_port_it(tmp_path: Path) -> None:
    dev = write_tree(tmp_path / "dev", {
        "dropins/plugins/myproject_plugin.py": TWISTD_MAKER.format(tapname="myproject")})
    site = tmp_path / "site"
    make_dist(site, "old-tap", "1.0", {"dropins.plugins": {"oldtap": "old_tap:serviceMaker"}},
              {"old_tap.py": TWISTD_MAKER.format(tapname="oldtap")})
    env = {"PYTHONPATH": f"{dev}:{site}", "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    module = dev / "dropins/plugins/myproject_plugin.py"
    expected = {"myproject": f"myproject: broken: {module}: {ADVICE}",
                "oldtap": f"oldtap: broken: {site / 'old_tap.py'}: {ADVICE}"}
    for _ in range(2):  # freshly scanned, then from the caches
        listing = run_dropins("plugins", "list", env=env)
        assert listing.returncode == 0, listing.stderr
        lines = listing.stdout.splitlines()
        for name, note in expected.items():
            assert note in lines, listing.stdout
            assert any(line.split()[:3] == [name, "IServiceMaker", "directory" if
                                            name == "myproject" else "entry-point"]
                       and "broken" in line.split() for line in lines), listing.stdout
        assert "serviceMaker" not in listing.stdout
    check = run_dropins("plugins", "check", env=env)
    assert check.returncode == 1
    assert set(expected.values()) <= set(check.stdout.splitlines()), check.stdout
    usage = run_dropins("--help", env=env)
    assert usage.returncode == 0, usage.stderr
    assert f"myproject: {module}: {ADVICE}" in " ".join(usage.stdout.split()), usage.stdout
    run = run_dropins("myproject", env=env)
    assert run.returncode != 0
    assert run.stderr.splitlines() == [
        f"dropins: error: command 'myproject' is unavailable: {module}: {ADVICE}"]
    by_variable = run_dropins("serviceMaker", env=env)  # twistd users know the variable too
    assert by_variable.returncode != 0
    assert by_variable.stderr.splitlines() == [
        f"dropins: error: command 'serviceMaker' is unavailable: {module}: {ADVICE}"]
    # Once ported, it runs as any other command.
    module.write_text(TWISTD_MAKER.format(tapname="myproject").replace("tapname", "name")
                      .replace("makeService", "make_service"))
    ported = run_dropins("plugins", "list", env=env)
    assert "myproject: broken" not in ported.stdout and "oldtap: broken" in ported.stdout


def test_an_import_error_replaces_the_porting_advice(tmp_path: Path) -> None:
    dev = write_tree(tmp_path / "dev", {
        "dropins/plugins/tw.py": TWISTD_MAKER.format(tapname="tw")})
    env = {"PYTHONPATH": str(dev), "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    module = dev / "dropins/plugins/tw.py"
    assert f"tw: broken: {module}: {ADVICE}" in run_dropins("plugins", "list", env=env).stdout
    module.write_text(module.read_text() + "\ndef oops(:\n")
    lines = module.read_text().count("\n")
    for _ in range(2):  # freshly scanned (with its warning), then from the cache
        listing = run_dropins("plugins", "list", env=env)
        assert listing.returncode == 0, listing.stderr
        notes = [line for line in listing.stdout.splitlines() if line.startswith("tw: ")]
        assert notes == [f"tw: broken: {module}:{lines}: SyntaxError: invalid syntax"], notes
        why = run_dropins("plugins", "why", "tw", env=env)
        assert f"tw: broken: {module}:{lines}: SyntaxError" in why.stdout, why.stdout
        assert "rename" not in why.stdout
