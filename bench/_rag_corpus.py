"""A fixture corpus for retrieval tests and benchmarks: 40 documents about made-up companies
(so no model knows the answers beforehand) in eight formats, and 160 questions, each with the
file and the phrase that a relevant chunk must contain.

Questions are worded unlike the documents (dense retrieval's strength) and name the company
(BM25's strength: made-up names mean little to an embedding model). Everything is generated
from a fixed seed: the same files and questions on every run.
"""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass
from pathlib import Path

FORMATS = ["md"] * 8 + ["html"] * 6 + ["txt"] * 6 + ["pdf"] * 6 + ["docx"] * 6 + ["json"] * 4 + ["csv"] * 2 + ["jsonl"] * 2
SYLLABLES = ["vel", "lor", "an", "tre", "mos", "kar", "ith", "zen", "dra", "qui", "bel", "sor", "nav", "ost", "ru",
             "pel", "gam", "ori", "tes", "ulm", "fen", "dax", "ymir", "cor", "hal", "ved", "isk", "ora", "bri", "tum"]
KINDS = ["Dynamics", "Biolabs", "Foods", "Robotics", "Textiles", "Energy", "Optics", "Logistics", "Ceramics", "Audio"]
PRODUCTS = {  # kind -> (thing, what it does, how a question words it)
    "Dynamics": ("drone", "inspects wind turbine blades", "checks the blades of wind turbines"),
    "Biolabs": ("enzyme kit", "breaks down plastic waste in compost", "helps compost digest plastic"),
    "Foods": ("oat snack", "keeps fresh for two years without refrigeration", "stays edible for years outside a fridge"),
    "Robotics": ("arm", "sorts recycled glass by colour", "separates recycled glass by its colour"),
    "Textiles": ("fabric", "blocks ultraviolet light while staying breathable", "protects from UV rays yet lets skin breathe"),
    "Energy": ("battery", "stores solar power for remote villages", "keeps sunlight energy for villages far from the grid"),
    "Optics": ("lens", "corrects colour blindness for red and green", "helps people who cannot tell red from green"),
    "Logistics": ("tracker", "follows shipping containers across oceans", "locates cargo boxes at sea"),
    "Ceramics": ("tile", "cools buildings by reflecting heat", "keeps houses cooler by bouncing heat away"),
    "Audio": ("headset", "translates speech between nine languages", "interprets conversations in several languages"),
}
FIRST = ["Amara", "Bodil", "Casimir", "Delphine", "Eero", "Fenna", "Gideon", "Halla", "Ignatius", "Jorunn", "Kaito",
         "Liesel", "Matthias", "Noor", "Osric", "Perpetua", "Quillon", "Rosalind", "Stellan", "Tamsin"]
LAST = ["Achterberg", "Brannigan", "Castellanos", "Drozdov", "Eriksdottir", "Falconer", "Grimaldi", "Halvorsen",
        "Ibarra", "Jankowski", "Kowalczyk", "Lindqvist", "Marchetti", "Nakashima", "Okonkwo", "Pellegrini"]
CITIES = ["Marrowick", "Tessaly", "Quenford", "Ostrava Minor", "Duskhaven", "Brightmoor", "Caldera Bay", "Wendmere",
          "Fallowmark", "Iskerport", "Glimmerdale", "Northwatch", "Saltcombe", "Vyrnhold", "Emberlyn", "Pinecrest"]
EVENTS = [("a fire destroyed its first workshop", "what disaster hit", "a blaze"),
          ("it lost a lawsuit over a copied patent", "what court case went against", "a court case about a patent"),
          ("a cyberattack froze its ordering system for a week", "what happened to the computers of", "hackers"),
          ("a flood closed its main warehouse for a month", "what water damage hit", "an inundation"),
          ("its co-founder left to start a rival firm", "who walked out of", "a partner leaving for a competitor")]
FILLER = {  # sections every company has, written to share words with the sections questions ask about
    "Culture": ("People at {name} describe a workplace where every employee can propose ideas. New staff spend "
                "their first week in each department, and the offices close early on Fridays."),
    "Sustainability": ("{name} reports its energy use every year. Waste from the production sites is sorted and "
                       "reused, and the company plans to make every product from recycled material."),
    "Partnerships": ("{name} works with universities and suppliers in many countries. Customers can visit the "
                     "design studio, and distributors receive training twice a year."),
    "Outlook": ("Analysts expect {name} to keep growing. The management wants to open a new office, hire more "
                "researchers and enter markets in Asia within the next decade."),
}


@dataclass(frozen=True)
class Question:
    question: str
    file: str        # file name inside the corpus folder
    phrase: str      # a relevant chunk contains this text


def _name(rng: random.Random, used: set[str]) -> str:
    while True:
        name = "".join(rng.sample(SYLLABLES, 2)).capitalize() + rng.choice(["", "a", "is", "on"])
        if name not in used:
            used.add(name)
            return name


def _company(rng: random.Random, n: int, used: set[str]) -> dict:
    kind = KINDS[n % len(KINDS)]
    name = f"{_name(rng, used)} {kind}"
    thing, does, asked = PRODUCTS[kind]
    code = f"{rng.choice('BKQVXZ')}{rng.choice('RTLMN')}-{rng.randint(10, 99)}"
    founder = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    city = CITIES[n % len(CITIES)]
    year = 1950 + (n * 7919) % 70
    staff = 40 + (n * 131) % 900
    plants = 2 + n % 7
    event, asked_event, event_word = EVENTS[n % len(EVENTS)]
    event_year = year + 3 + n % 20
    sections = {
        "Overview": (f"{name} was founded in {year} by {founder}. The company is headquartered in {city}, where "
                     f"it still keeps its original office near the harbour. Its shares are privately held by the "
                     f"founding family and a small group of employees."),
        "Products": (f"The flagship product of {name} is the {code} {thing}, which {does}. Customers in more "
                     f"than twenty countries buy it, and a second generation of the {code} is being designed."),
        "Operations": (f"{name} employs {staff} people across {plants} production sites. Most staff work in "
                       f"assembly and quality control; the research team is kept deliberately small."),
        "History": (f"In {event_year}, {event}. {name} recovered within two years, and the episode is now taught "
                    f"to every new hire as a lesson in resilience."),
    }
    sections = {**{h: t for h, t in sections.items() if h in ("Overview", "Products")},
                **{h: t.format(name=name) for h, t in FILLER.items() if h in ("Culture", "Sustainability")},
                **{h: t for h, t in sections.items() if h in ("Operations", "History")},
                **{h: t.format(name=name) for h, t in FILLER.items() if h in ("Partnerships", "Outlook")}}
    questions = [  # half name the company and reword the text; half look up a code, a year, a count
        (f"When was {name} established, and who started it?" if n % 2 else f"Which company did {founder} start in {year}?",
         "Overview", f"founded in {year}"),
        (f"What is the {code} used for?" if n % 2 else f"Which product of {name} {asked}?", "Products", f"{code} {thing}"),
        (f"How many workers does {name} have, and in how many factories?" if n % 2 else
         f"Which firm has a workforce of {staff}?", "Operations", f"employs {staff} people"),
        (f"{asked_event.capitalize()} {name} in {event_year}?" if n % 3 else f"Was {name} ever hit by {event_word}?",
         "History", f"In {event_year}"),
    ]
    return {"name": name, "sections": sections, "questions": questions}


def build_corpus(folder: str | Path, seed: int = 7) -> list[Question]:
    """Write the 40 documents into `folder` and return the 160 questions."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    used: set[str] = set()
    questions = []
    for n, fmt in enumerate(FORMATS):
        company = _company(rng, n, used)
        file = f"{company['name'].lower().replace(' ', '_')}.{fmt}"
        _WRITERS[fmt](folder / file, company["name"], company["sections"])
        questions += [Question(q, file, phrase) for q, _, phrase in company["questions"]]
    return questions


def _md(path: Path, title: str, sections: dict) -> None:
    path.write_text(f"# {title}\n\n" + "".join(f"## {h}\n\n{t}\n\n" for h, t in sections.items()))


def _html(path: Path, title: str, sections: dict) -> None:
    body = "".join(f"<section><h2>{h}</h2><p>{t}</p></section>" for h, t in sections.items())
    path.write_text(f"<!doctype html><html><head><title>{title}</title><style>p {{ margin: 0 }}</style></head><body>"
                    f"<nav><a href='/'>Home</a> | <a href='/about'>About us</a></nav><main><h1>{title}</h1>{body}</main>"
                    f"<footer>Copyright and cookie notice</footer><script>track()</script></body></html>")


def _txt(path: Path, title: str, sections: dict) -> None:
    path.write_text(f"{title}\n\n" + "\n\n".join(sections.values()) + "\n")


def _pdf(path: Path, title: str, sections: dict) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    for n, (heading, text) in enumerate(sections.items()):  # a page per two sections
        if n % 2 == 0:
            pdf.add_page()
        pdf.set_font("Helvetica", "B", 14)
        pdf.multi_cell(0, 8, f"{title}: {heading}", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=11)
        pdf.multi_cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))


def _docx(path: Path, title: str, sections: dict) -> None:
    import docx

    document = docx.Document()
    document.add_heading(title, level=0)
    for heading, text in sections.items():
        document.add_heading(heading, level=1)
        document.add_paragraph(text)
    document.save(str(path))


def _json(path: Path, title: str, sections: dict) -> None:
    path.write_text(json.dumps({"company": title, "profile": {h.lower(): t for h, t in sections.items()}}, indent=2))


def _jsonl(path: Path, title: str, sections: dict) -> None:
    path.write_text("".join(json.dumps({"company": title, "topic": h, "text": t}) + "\n" for h, t in sections.items()))


def _csv(path: Path, title: str, sections: dict) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["company", "topic", "text"])
        writer.writerows([title, h, t] for h, t in sections.items())


_WRITERS = {"md": _md, "html": _html, "txt": _txt, "pdf": _pdf, "docx": _docx, "json": _json, "jsonl": _jsonl, "csv": _csv}


def relevant(hit, question: Question) -> bool:
    return Path(hit.source).name == question.file and question.phrase in " ".join(hit.text.split())


def recall_and_mrr(search, questions: list[Question], k: int = 5, depth: int = 10) -> tuple[float, float]:
    """(recall@k, MRR@depth) of `search(query, depth) -> hits` over the questions."""
    found = rr = 0.0
    for q in questions:
        hits = search(q.question, depth)
        rank = next((i for i, hit in enumerate(hits, 1) if relevant(hit, q)), None)
        found += rank is not None and rank <= k
        rr += 1.0 / rank if rank else 0.0
    return found / len(questions), rr / len(questions)
