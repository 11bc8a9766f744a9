"""Run in .venv-lowest: each package .ci/lowest.txt pins is installed at that version.

pip honours the constraints file, but a package can arrive from elsewhere (an old venv,
a stamp that lied): this says so before the tests run on the wrong versions.
"""

import importlib.metadata
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

LOWEST = Path(__file__).with_name("lowest.txt")

wrong = []
for line in LOWEST.read_text().splitlines():
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    requirement = Requirement(line)
    (spec,) = requirement.specifier
    installed = importlib.metadata.version(requirement.name)
    if Version(installed) != Version(spec.version):
        wrong.append(f"{requirement.name}: {installed} installed, {spec.version} pinned")
    else:
        print(f"{requirement.name} {installed}")
if wrong:
    sys.exit("not the lowest versions:\n" + "\n".join(wrong))
