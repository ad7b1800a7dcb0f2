"""The docs checker itself: a broken example in a document fails, a marked one says why not.

Runs conftest.py's sybil setup on small documents in a throwaway project, as on README.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

DOC = """
# A doc

```python
total = sum([1, 2])
assert total == 3
```

<!-- excerpt: lib.py -->
```python
def double(x):
    return 2 * x
```

<!-- skip: next "needs a mail server" -->
```sh
false
```

```sh
test "$(echo hi)" = hi
```
"""

LIB = "def double(x):\n    return 2 * x\n"


@pytest.fixture
def docs(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(
        (ROOT / "conftest.py")
        .read_text()
        .replace('patterns=["README.md", "docs/*.md"]', 'patterns=["*.md"]')
        .replace("ROOT = Path(__file__).resolve().parent", f"ROOT = Path({str(ROOT)!r})")
    )
    return pytester


def write(docs: pytest.Pytester, doc: str, lib: str = LIB) -> None:
    (docs.path / "DOC.md").write_text(doc)
    (docs.path / "lib.py").write_text(lib)


def test_a_correct_document_passes_and_a_skip_says_why(docs):
    write(docs, DOC)
    result = docs.runpytest("-p", "no:cacheprovider", "-rs", "DOC.md")
    result.assert_outcomes(passed=3, skipped=1)
    result.stdout.fnmatch_lines(["*needs a mail server*"])


def test_a_changed_assertion_fails(docs):
    write(docs, DOC.replace("total == 3", "total == 4"))
    docs.runpytest("-p", "no:cacheprovider", "DOC.md").assert_outcomes(
        passed=2, failed=1, skipped=1
    )


def test_an_excerpt_that_no_longer_matches_its_file_fails(docs):
    write(docs, DOC, lib=LIB.replace("double", "twice"))
    result = docs.runpytest("-p", "no:cacheprovider", "DOC.md")
    result.assert_outcomes(passed=2, failed=1, skipped=1)
    result.stdout.fnmatch_lines(["*this block is not in lib.py*as written*"])


def test_a_shell_line_that_fails_fails_its_block(docs):
    write(docs, DOC.replace("= hi", "= bye"))
    docs.runpytest("-p", "no:cacheprovider", "DOC.md").assert_outcomes(
        passed=2, failed=1, skipped=1
    )
