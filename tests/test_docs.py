"""The design document the code cites: every `DESIGN §N` in the repository names a section of docs/design.md."""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CITATION = re.compile(r"DESIGN §(\d+)")
SCANNED = (".py", ".sh", ".yaml", ".md")


def _citations():
    for directory in ("ernie_m", "pretrain", "finetune", "tools", "tests", "docs"):
        for root, _, files in os.walk(os.path.join(ROOT, directory)):
            for name in files:
                if name.endswith(SCANNED):
                    path = os.path.join(root, name)
                    with open(path, encoding="utf-8") as handle:
                        for number, line in enumerate(handle, 1):
                            for section in CITATION.findall(line):
                                yield os.path.relpath(path, ROOT), number, section


def test_every_design_citation_has_its_section():
    with open(os.path.join(ROOT, "docs", "design.md"), encoding="utf-8") as handle:
        sections = set(re.findall(r"^## §(\d+) ", handle.read(), flags=re.M))
    citations = list(_citations())
    assert len(citations) >= 10  # the code does cite it
    missing = [f"{path}:{number}: DESIGN §{section}" for path, number, section in citations if section not in sections]
    assert missing == []


def test_test_docstrings_state_behaviour_not_history():
    """A test's docstring says what the code must do; the bug a test once caught belongs in the commit message."""
    import ast

    narrating = []
    for name in sorted(os.listdir(os.path.join(ROOT, "tests"))):
        if name.endswith(".py"):
            with open(os.path.join(ROOT, "tests", name), encoding="utf-8") as handle:
                tree = ast.parse(handle.read())
            for node in ast.walk(tree):
                docstring = ast.get_docstring(node) if isinstance(node, ast.FunctionDef) else None
                if docstring and re.search(r"^Before\b|\bBefore[:,] |\(issue \d+", docstring):
                    narrating.append(f"{name}::{node.name}")
    assert narrating == []


def test_the_design_document_tells_no_history():
    with open(os.path.join(ROOT, "docs", "design.md"), encoding="utf-8") as handle:
        text = handle.read()
    assert re.findall(r"issue \d+|after \d+\b|\bbefore\b and after", text, flags=re.I) == []
