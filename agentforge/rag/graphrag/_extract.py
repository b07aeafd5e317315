"""Entities and relationships from one chunk, two ways: the model under the extraction schema (with
optional gleaning passes), or plain NLP — capitalized noun phrases and word compounds, linked when
they occur in the same chunk — which costs no LLM call."""

from __future__ import annotations

import functools
import re

from agentforge.engine.protocol import ChatMessage

from .cost import Meter
from .schema import Extraction, MoreToFind, with_types

SYSTEM = "You extract a knowledge graph from text. You answer in JSON."
EXTRACT = ("Text:\n{text}\n\nList the important entities in the text, each with its type ({types}) and a short "
           "description, then the relationships between them: source and target are entity names from your list, "
           "with a short description and a strength from 1 to 10.")
CONTINUE = ("Some entities and relationships in the text were missed. List only the missing ones, in the same "
            "format.")
LOOP = "Are there still entities or relationships in the text that are not listed? Answer with more: true or false."


async def extract_llm(meter: Meter, text: str, types: tuple[str, ...], gleanings: int) -> dict:
    """The model's entities and relationships for `text`, with up to `gleanings` extra passes."""
    schema = with_types(types)
    messages = [ChatMessage(role="system", content=SYSTEM),
                ChatMessage(role="user", content=EXTRACT.format(text=text, types=", ".join(types)))]
    found = Extraction.model_validate(await meter.structured("extract", schema, messages))
    record = clean(found.model_dump())
    for round_ in range(gleanings):
        messages += [ChatMessage(role="assistant", content=found.model_dump_json()),
                     ChatMessage(role="user", content=CONTINUE)]
        found = Extraction.model_validate(await meter.structured("glean", schema, messages))
        added = clean(found.model_dump())
        record["entities"] += added["entities"]
        record["relationships"] += added["relationships"]
        if round_ == gleanings - 1 or not (added["entities"] or added["relationships"]):
            break
        messages += [ChatMessage(role="assistant", content=found.model_dump_json()),
                     ChatMessage(role="user", content=LOOP)]
        if not (await meter.structured("glean", MoreToFind, messages)).more:
            break
    return record


def clean(raw: dict) -> dict:
    """Names trimmed, empty entities and self-relationships dropped, and relationship ends that
    name no listed entity added as entities of unknown type (resolution gives them one)."""
    entities = [{"name": _tidy(e["name"]), "type": e["type"], "description": e["description"].strip()}
                for e in raw["entities"] if _tidy(e["name"])]
    known = {normalize(e["name"]) for e in entities}
    relationships = []
    for r in raw["relationships"]:
        source, target = _tidy(r["source"]), _tidy(r["target"])
        if not source or not target or normalize(source) == normalize(target):
            continue
        for end in (source, target):
            if normalize(end) not in known:
                known.add(normalize(end))
                entities.append({"name": end, "type": "", "description": ""})
        relationships.append({"source": source, "target": target, "description": r["description"].strip(),
                              "strength": int(r["strength"])})
    return {"entities": entities, "relationships": relationships}


# --- the NLP method -------------------------------------------------------------------------

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_TOKEN = re.compile(r"[A-Za-z0-9](?:[\w'&-]*\w)?|[^\w\s]")
_CONNECTORS = {"of", "de", "the", "for", "von", "van", "du", "la", "le"}
_PRONOUNS = {"he", "she", "it", "they", "we", "i", "you", "his", "her", "its", "their", "our", "this", "that", "these",
             "those"}
_OPENERS = {"today", "however", "meanwhile", "later", "earlier", "yesterday", "tomorrow", "then", "now", "finally",
            "first", "second", "third", "last", "next", "since", "although", "though", "because", "while", "when",
            "after", "before", "during", "despite", "unlike", "like", "many", "most", "several", "every", "each",
            "both", "all", "some", "there", "here", "instead", "still", "thus", "therefore", "overall", "in", "at"}
# frequent verb forms a compound never holds ("main plant stands", "prize went" are no noun phrases)
_VERBS = {"be", "can", "could", "will", "would", "may", "might", "must", "shall", "should", "go", "goes", "went",
          "stand", "stands", "sell", "sells", "sold", "make", "makes", "made", "build", "builds", "built", "run", "runs",
          "carry", "carries", "know", "knows", "known", "take", "takes", "took", "win", "wins", "won", "draw", "draws",
          "drew", "give", "gives", "gave", "lie", "lies", "lay", "hold", "holds", "held", "lead", "leads", "led", "say",
          "says", "said", "get", "gets", "got", "come", "comes", "came", "see", "sees", "saw", "use", "uses", "find",
          "finds", "found", "become", "becomes", "became", "keep", "keeps", "kept", "buy", "buys", "bought", "sit",
          "sits", "sat", "serve", "serves", "live", "lives", "follow", "follows", "teach", "teaches", "taught",
          "write", "writes", "wrote", "written", "grow", "grows", "grew", "employ", "employs", "operate", "operates",
          "contain", "contains", "measure", "measures", "detect", "detects", "award", "awards", "guard", "guards"}
_COMPOUND_WORD = re.compile(r"^[a-z][a-z-]{2,}$")


def extract_nlp(text: str) -> dict:
    """Named phrases ("Mara Quell", "Bank of Orlan") and word compounds ("quantum sensor") of
    `text`; every two found in the same chunk are related, described by a sentence holding both."""
    from bm25s.stopwords import STOPWORDS_EN

    stop = set(STOPWORDS_EN) | _PRONOUNS | {"also", "which", "who", "whose", "one", "two", "new"}
    lowered = {word for word in _TOKEN.findall(text) if word.islower()}
    found: dict[str, dict] = {}
    sentences_of: dict[str, list[int]] = {}
    sentences = [s.strip() for s in _SENTENCE.split(text) if s.strip()]
    for index, sentence in enumerate(sentences):
        tokens = _TOKEN.findall(sentence)
        for phrase, kind in [*_named(tokens, stop, lowered), *_compounds(tokens, stop | _OPENERS)]:
            key = normalize(phrase)
            if not key:
                continue
            if key not in found:
                found[key] = {"name": phrase, "type": kind, "description": _clip(sentence)}
            if index not in sentences_of.setdefault(key, []):
                sentences_of[key].append(index)
    keys = list(found)
    relationships = []
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            shared = [s for s in sentences_of[a] if s in sentences_of[b]]
            description = _clip(sentences[shared[0]]) if shared else "mentioned in the same passage"
            relationships.append({"source": found[a]["name"], "target": found[b]["name"],
                                  "description": description, "strength": min(10, 1 + 2 * len(shared))})
    return {"entities": list(found.values()), "relationships": relationships}


def _named(tokens: list[str], stop: set[str], lowered: set[str]) -> list[tuple[str, str]]:
    """Runs of capitalized words, joined by connectors like "of". A sentence's first word starts a
    run only when it is no common opener ("Today", "However,") and never appears in lower case in
    the text; alone, or before a connector ("Boxes of Grainstar"), it must also be no common
    English word."""
    out, run = [], []
    first = [False]  # whether the run starts the sentence

    def close() -> None:
        while run and run[-1].lower() in _CONNECTORS:
            run.pop()
        if run and first[0] and run[0].lower() in _common_words():
            if all(t.isdigit() for t in run[1:]):  # "About 4,000"
                run.clear()
            elif len(run) > 1 and run[1] in _CONNECTORS:  # "Boxes of Grainstar"
                del run[:2]
        if run:
            out.append((" ".join(run), "name"))
        run.clear()

    for index, token in enumerate(tokens):
        word = token.lower()
        capitalized = token[0].isupper() or (token[0].isdigit() and bool(run))
        opener = index == 0 and (word in lowered or word in _OPENERS or tokens[1:2] == [","])
        if capitalized and not run and (word in stop or word in _CONNECTORS or opener):
            continue
        if capitalized or (run and word in _CONNECTORS and token == word):
            if not run:
                first[0] = index == 0
            run.append(token)
        else:
            close()
    close()
    return out


def _compounds(tokens: list[str], stop: set[str]) -> list[tuple[str, str]]:
    """The last two or three words of each run of lower-case content words (English noun phrases
    end with their noun: "builds quantum sensor arrays" gives "quantum sensor arrays")."""
    out, run = [], []
    for token in [*tokens, "."]:
        if _COMPOUND_WORD.match(token) and token not in stop and token not in _VERBS and not token.endswith(("ly", "ed")):
            run.append(token)
            continue
        if len(run) >= 2:
            out.append((" ".join(run[-3:]), "concept"))
        run = []
    return out


@functools.cache
def _common_words() -> frozenset[str]:
    """Whole English words of the bundled MiniLM vocabulary (30k word pieces)."""
    from ..embeddings import default_model_path

    vocab = (default_model_path() / "vocab.txt").read_text(encoding="utf-8").split()
    return frozenset(w for w in vocab if w.isalpha() and w.islower())


def normalize(name: str) -> str:
    """The key names are matched on: case, accents, punctuation, a leading "the" and company
    suffixes ignored ("The Zentrix Corp." and "zentrix" are one key)."""
    import unicodedata

    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    words = re.findall(r"[a-z0-9]+", text)
    if words and words[0] == "the":
        words = words[1:]
    while len(words) > 1 and words[-1] in {"inc", "corp", "corporation", "ltd", "llc", "co", "gmbh", "plc", "sa"}:
        words = words[:-1]
    return " ".join(words)


def _tidy(name: str) -> str:
    return re.sub(r"\s+", " ", name).strip(" \"'`.,;:")


def _clip(text: str, limit: int = 200) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " ..."
