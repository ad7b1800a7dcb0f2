"""The long description PyPI shows: README.md, with its links into this repository fixed.

PyPI renders README.md on the project's page, where a relative link (``docs/plugin.md``) leads
to a page that does not exist. With a ``Repository`` URL in ``[project.urls]`` each such link
becomes a link into the repository; until the project has one (none is invented here), it
becomes the file's path in plain text, a file the source archive carries (MANIFEST.in).
Everything else about the package is in pyproject.toml.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent
# [text](target) and ![alt](target), where target is not a URL and not an anchor on the page.
# The text may hold an image: [![alt](img)](target).
LINK = re.compile(
    r"(?P<bang>!?)\[(?P<text>(?:[^\[\]]|!\[[^\[\]]*\]\([^)]*\))*)\]"
    r"\((?P<target>(?![a-z]+:|#)[^)\s]+)\)"
)


def long_description(readme: str, repository: str | None) -> str:
    """`readme` with every relative link made absolute (under `repository`) or plain text."""

    def fix(found: re.Match[str]) -> str:
        text, target = found["text"], found["target"]
        if repository:
            kind = "raw" if found["bang"] else "blob"
            return f"{found['bang']}[{text}]({repository.rstrip('/')}/{kind}/main/{target})"
        if found["bang"]:
            return ""  # an image with no public address: PyPI would show a broken one
        path = target.split("#")[0].rstrip("/")
        if text.strip("`").rstrip("/") in ("", path):
            return text or f"`{path}`"
        return f"{text} (`{path}`)"

    fixed = LINK.sub(fix, readme)
    return fixed if fixed == readme else long_description(fixed, repository)  # [![img](a)](b)


if __name__ == "__main__":
    urls = tomllib.loads((HERE / "pyproject.toml").read_text("utf-8"))["project"].get("urls", {})
    setup(
        long_description=long_description(
            (HERE / "README.md").read_text("utf-8"), urls.get("Repository")
        ),
        long_description_content_type="text/markdown",
    )
