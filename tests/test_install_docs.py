"""The README and the installation page give the same install commands."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _commands(text):
    """The ``pip install`` command lines of a file's code blocks."""
    return [
        c.strip()
        for c in re.findall(r"^\s*(?:\$\s+)?(pip install [^\n#]+)", text, re.MULTILINE)
    ]


def test_readme_installs_as_the_install_page():
    readme = _commands((ROOT / "README.md").read_text())
    page = _commands((ROOT / "docs" / "install.rst").read_text())
    # The CPU build of torch first, then the package from the checkout: the
    # same two lines, one after the other, as the page's development set-up.
    assert readme[0].startswith("pip install torch") and "/whl/cpu" in readme[0]
    assert readme[1] == 'pip install -e ".[test]"'
    assert any(page[i : i + 2] == readme[:2] for i in range(len(page)))
    assert set(readme) <= set(page), set(readme) - set(page)


def test_extras_are_quoted_for_every_shell():
    # An unquoted skrecordpair[extra] is a glob pattern in zsh.
    for path in [ROOT / "README.md", *(ROOT / "docs").glob("*.rst")]:
        assert not re.search(r"pip install skrecordpair\[", path.read_text()), path
