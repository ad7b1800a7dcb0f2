"""Print the Debian mirror and suite apt uses here, `URI SUITE`, for container/build: the first
source with the `main` component that is not the security archive or an -updates suite, from
/etc/apt/sources.list and /etc/apt/sources.list.d/ (one-line and deb822 formats)."""

import glob
import re
import sys


def sources():
    for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*"))]:
        try:
            with open(path, encoding="utf-8") as file:
                text = file.read()
        except OSError:
            continue
        if path.endswith(".sources"):
            for stanza in re.split(r"\n\s*\n", text):
                fields = dict(
                    (k.strip().lower(), v.split())
                    for k, _, v in (line.partition(":") for line in stanza.splitlines())
                    if not k.startswith("#") and v
                )
                if "deb" in fields.get("types", []):
                    for uri in fields.get("uris", []):
                        for suite in fields.get("suites", []):
                            yield uri, suite, fields.get("components", [])
        else:
            for line in text.splitlines():
                words = re.sub(r"\[[^]]*\]", "", line.split("#")[0]).split()
                if len(words) >= 4 and words[0] == "deb":
                    yield words[1], words[2], words[3:]


for uri, suite, components in sources():
    if "main" in components and "security" not in uri and "-" not in suite:
        print(uri, suite)
        sys.exit(0)
sys.exit("container/build: no Debian source with 'main' in /etc/apt/sources.list*")
