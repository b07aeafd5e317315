"""A multi-hop fixture corpus for GraphRAG, written for the tests: 23 short documents about one
invented coast (people, companies, towns, products, events) and 44 questions whose answer needs
facts from two or three of them — the second document never names what the question names, so
only a link through the first one (an entity both mention) leads to it. As in HotpotQA's
distractor setting, 22 more documents say the same kinds of things about other entities (another
mayor, another sensor's factory, another bank's chair), so text that merely resembles the
question is not enough."""

from __future__ import annotations

from pathlib import Path

DOCS = {
    "mara_quell.md": "Mara Quell is a physicist who founded Zentrix Labs in 2011 after leaving her university post. "
                     "She grew up in a fishing family and still sails on weekends. Quell holds eleven patents on "
                     "optical measurement.",
    "zentrix_labs.md": "Zentrix Labs is headquartered in Orlan, where it employs about 300 engineers. The company's "
                       "best known product is the Lumen-9 sensor. In 2019 Zentrix Labs signed a supply deal with "
                       "Okapi Robotics.",
    "lumen_9.md": "The Lumen-9 sensor measures light with a precision of one part per billion. It is assembled in a "
                  "factory in Port Ives. The sensor won the innovation prize of the Orlan Trade Fair in 2020.",
    "orlan.md": "Orlan is a river city of 400,000 people on the northern coast. Its mayor is Renata Szabo, elected in "
                "2018. The city hosts the Orlan Trade Fair every autumn.",
    "renata_szabo.md": "Renata Szabo trained as a civil engineer before entering politics. Before she became mayor "
                       "she led the rebuilding after the Teshmar Flood of 2009. She is married to the novelist "
                       "Caius Fenwright.",
    "teshmar_flood.md": "The Teshmar Flood of 2009 destroyed more than 2,000 homes in the Teshmar Valley. Heavy spring "
                        "rain overwhelmed the old Kelby dam. Relief ships from Halvard Shipping carried food and "
                        "medicine to the valley.",
    "halvard_shipping.md": "Halvard Shipping operates a fleet of forty cargo vessels from its base in Port Ives. It was "
                           "founded by Tobin Vashti in 1994. Its newest vessel is the Tidewalker ferry.",
    "tobin_vashti.md": "Tobin Vashti was born on Vandor Island and went to sea at sixteen. He chaired Halvard "
                       "Shipping until 2015. Vashti now funds a maritime school.",
    "tidewalker.md": "The Tidewalker ferry runs on batteries made by Sunmere Energy. It carries up to 600 passengers "
                     "between Port Ives and Vandor Island. Its maiden voyage took place in 2021.",
    "sunmere_energy.md": "Sunmere Energy makes the Sunmere Cell, a sodium battery that contains no lithium. The "
                         "company's chief executive is Ilse Marrow. Its main plant stands in Kelby.",
    "ilse_marrow.md": "Ilse Marrow studied chemistry in Kelby and joined Sunmere Energy as a researcher in 2008. She "
                      "became chief executive in 2017. Marrow is a keen long-distance runner.",
    "kelby.md": "Kelby is a former mining town at the head of the Teshmar Valley. The Kelby Marathon, run each April "
                "since 1979, follows the old mine railway. The town's largest employer today is a battery plant.",
    "okapi_robotics.md": "Okapi Robotics builds walking robots for warehouses. It was co-founded by Dev Okonkwo-Lind "
                         "and Hugo Achterberg in 2014. Its flagship machine, the Okapi Walker, can carry 80 "
                         "kilograms.",
    "dev_okonkwo_lind.md": "Dev Okonkwo-Lind studied mechanical engineering in Orlan. Before he started his robot "
                           "company he designed prosthetic legs. He serves on the board of Corvane Bank.",
    "corvane_bank.md": "Corvane Bank is a cooperative bank founded in 1921 by dock workers. It has branches in Orlan "
                       "and Port Ives. Its chair is Liora Pemberton.",
    "liora_pemberton.md": "Liora Pemberton was a judge for twenty years before she took the chair of a bank. She "
                          "wrote a history of the Vandor Island lighthouse. Pemberton lives in Port Ives.",
    "brightwell_foods.md": "Brightwell Foods makes breakfast cereals, most famously Grainstar. It buys its oats from "
                           "farms in the Teshmar Valley. The company was bought by the investment arm of Corvane "
                           "Bank in 2016.",
    "grainstar.md": "Grainstar is a honey-coated oat cereal sold since 1962. Its mascot is a cartoon heron named "
                    "Pip. Boxes of Grainstar were among the relief supplies sent to flooded villages.",
    "hugo_achterberg.md": "Hugo Achterberg is a software engineer from Vandor Island. He wrote the control software "
                          "of the Okapi Walker. He previously worked at Zentrix Labs on sensor firmware.",
    "vandor_island.md": "Vandor Island lies twelve kilometres off the coast and has 9,000 residents. Its lighthouse, "
                        "built in 1880, is the oldest on the coast. The island's only hospital was funded by "
                        "public donations.",
    "port_ives.md": "Port Ives is a deep-water harbour town south of Orlan. It has a population of 60,000 and a naval "
                    "museum. A sensor factory opened there in 2016.",
    "orlan_trade_fair.md": "The Orlan Trade Fair started in 1955 as a farm market. It now draws 80,000 visitors and "
                           "awards an innovation prize each year. The 2022 prize went to the Okapi Walker.",
    "caius_fenwright.md": "Caius Fenwright is a novelist whose books are set on river barges. His novel The Salt "
                          "Ledger won a national award in 2015. Fenwright teaches writing at the university in "
                          "Orlan.",
}

DISTRACTORS = {
    "vessa.md": "Vessa is a hill city of 250,000 people in the interior. Its mayor is Tomas Brenn, who was "
                "re-elected in 2021. The city is known for its glassworks.",
    "drummond.md": "Drummond is an industrial city on the eastern plain. Its mayor, Agnes Lowe, is a former teacher. "
                   "Several technology firms are headquartered there.",
    "halden_optics.md": "Halden Optics is headquartered in Drummond and employs 900 people. It was founded in 1998 by "
                        "the engineer Piet Saarin. Its best known product is the Kestrel thermal camera.",
    "kestrel_camera.md": "The Kestrel thermal camera is assembled in a factory in Vessa. It detects heat differences of "
                         "a hundredth of a degree. The camera won the design prize of the Vessa Expo in 2018.",
    "piet_saarin.md": "Piet Saarin founded his optics company after a career in aerospace. He was born in Vessa and "
                      "studied physics there. Saarin holds four patents on infrared lenses.",
    "marsh_bank.md": "Marsh Bank is a savings bank founded in 1890 by farmers. Its chair is Oskar Feld. The bank has "
                     "its headquarters in Vessa.",
    "oskar_feld.md": "Oskar Feld served in the army for thirty years before he became chair of a bank. He wrote a "
                     "history of the Kite Point lighthouse. Feld lives in Vessa.",
    "northway_ferries.md": "Northway Ferries was founded by Greta Holm in 1988 and is based in Drummond. Its ferries "
                           "run on diesel engines. Greta Holm was born in the mountain village of Askel.",
    "askel.md": "Askel is a mountain village with 1,200 residents. Its stone church was built in 1702. The village "
                "has no road in winter.",
    "voltaic_works.md": "Voltaic Works makes lithium batteries for buses. Its chief executive is Marten Oduya, who "
                        "studied physics in Vessa. The company's main plant stands in Drummond.",
    "drummond_marathon.md": "The Drummond Marathon has been run every October since 1991. It follows the old canal "
                            "towpath. About 4,000 runners take part each year.",
    "vessa_expo.md": "The Vessa Expo is an industry fair founded in 1968. It draws 30,000 visitors and awards a design "
                     "prize each spring. The 2021 prize went to a folding bicycle.",
    "stride_robotics.md": "Stride Robotics builds delivery robots for hospitals. It was founded by Nadia Kerr in "
                          "2016. Its robot, the Courier, can carry 30 kilograms.",
    "nadia_kerr.md": "Nadia Kerr studied computer science in Drummond. She sits on the board of Marsh Bank. Kerr "
                     "previously built robots for car factories.",
    "golden_oat.md": "Golden Oat is a cinnamon cereal sold since 1974 by Askel Mills. Its mascot is a cartoon fox "
                     "named Rusty. Askel Mills buys its oats from farms near Drummond.",
    "great_storm.md": "The Great Storm of 2012 flooded the lower districts of Drummond and destroyed 500 homes. A "
                      "broken canal lock made the flooding worse. Rebuilding was led by the city engineer Hana "
                      "Pruitt.",
    "hana_pruitt.md": "Hana Pruitt led the rebuilding of Drummond after the Great Storm of 2012. She later became a "
                      "professor of hydrology. She is married to the painter Ivo Renner.",
    "ivo_renner.md": "Ivo Renner is a painter of harbour scenes. His painting The Grey Quay won a national prize in "
                     "2013. Renner teaches painting at the art school in Vessa.",
    "kite_point.md": "The Kite Point lighthouse was built in 1911 and guards the mouth of the Drummond canal. It was "
                     "automated in 1985.",
    "sable_sensor.md": "The Sable sensor measures air pressure with a precision of one part per million. It is made "
                       "by Halden Optics in Drummond.",
    "saltmere_island.md": "Saltmere Island lies far offshore and has 400 residents. Its only ferry runs twice a week "
                          "from Drummond.",
    "tarnby.md": "Tarnby is a market town of 15,000 people in the southern hills. Its mayor is Colin Abbot. Tarnby "
                 "hosts a cheese fair every summer.",
}

# (question, answer, the documents it needs)
QUESTIONS = [
    ("In which city is the company founded by Mara Quell headquartered?", "Orlan", ["mara_quell", "zentrix_labs"]),
    ("Where is the best known product of the company Mara Quell founded assembled?", "Port Ives",
     ["mara_quell", "zentrix_labs", "lumen_9"]),
    ("Who is the mayor of the city where Zentrix Labs is headquartered?", "Renata Szabo", ["zentrix_labs", "orlan"]),
    ("What did the mayor of Orlan do before she became mayor?", "led the rebuilding after the Teshmar Flood",
     ["orlan", "renata_szabo"]),
    ("Who is married to the mayor of Orlan?", "Caius Fenwright", ["orlan", "renata_szabo"]),
    ("What overwhelmed the dam in the disaster whose rebuilding Renata Szabo led?", "heavy spring rain",
     ["renata_szabo", "teshmar_flood"]),
    ("Who founded the company whose ships carried relief during the Teshmar Flood of 2009?", "Tobin Vashti",
     ["teshmar_flood", "halvard_shipping"]),
    ("Where was the founder of Halvard Shipping born?", "Vandor Island", ["halvard_shipping", "tobin_vashti"]),
    ("Which company makes the batteries of Halvard Shipping's newest vessel?", "Sunmere Energy",
     ["halvard_shipping", "tidewalker"]),
    ("Who is the chief executive of the company that makes the Tidewalker ferry's batteries?", "Ilse Marrow",
     ["tidewalker", "sunmere_energy"]),
    ("In which town is the main plant of the maker of the Tidewalker ferry's batteries?", "Kelby",
     ["tidewalker", "sunmere_energy"]),
    ("Since when has the marathon of the town where Sunmere Energy has its main plant been run?", "1979",
     ["sunmere_energy", "kelby"]),
    ("At the head of which valley lies the town of Sunmere Energy's main plant?", "Teshmar Valley",
     ["sunmere_energy", "kelby"]),
    ("What does the robot company co-founded by Hugo Achterberg build?", "walking robots for warehouses",
     ["hugo_achterberg", "okapi_robotics"]),
    ("How much can the machine whose control software Hugo Achterberg wrote carry?", "80 kilograms",
     ["hugo_achterberg", "okapi_robotics"]),
    ("On which bank's board does a co-founder of Okapi Robotics sit?", "Corvane Bank",
     ["okapi_robotics", "dev_okonkwo_lind"]),
    ("Who chairs the bank on whose board Dev Okonkwo-Lind serves?", "Liora Pemberton",
     ["dev_okonkwo_lind", "corvane_bank"]),
    ("What was the earlier profession of the chair of the bank on whose board Dev Okonkwo-Lind serves?", "judge",
     ["dev_okonkwo_lind", "corvane_bank", "liora_pemberton"]),
    ("Who founded the bank whose investment arm bought Brightwell Foods?", "dock workers",
     ["brightwell_foods", "corvane_bank"]),
    ("Who chairs the bank whose investment arm bought Brightwell Foods?", "Liora Pemberton",
     ["brightwell_foods", "corvane_bank"]),
    ("What is the mascot of Brightwell Foods' most famous cereal?", "Pip, a cartoon heron",
     ["brightwell_foods", "grainstar"]),
    ("Since when has the most famous cereal of Brightwell Foods been sold?", "1962", ["brightwell_foods", "grainstar"]),
    ("Which prize did the best known product of Mara Quell's company win?", "the Orlan Trade Fair innovation prize",
     ["mara_quell", "zentrix_labs", "lumen_9"]),
    ("How many visitors does the fair that gave the Lumen-9 sensor its prize draw?", "80,000",
     ["lumen_9", "orlan_trade_fair"]),
    ("Which machine won the 2022 prize of the fair where the Lumen-9 sensor won in 2020?", "the Okapi Walker",
     ["lumen_9", "orlan_trade_fair"]),
    ("How much can the machine that won the 2022 Orlan Trade Fair prize carry?", "80 kilograms",
     ["orlan_trade_fair", "okapi_robotics"]),
    ("Who co-founded the company whose machine won the 2022 Orlan Trade Fair prize?",
     "Dev Okonkwo-Lind and Hugo Achterberg", ["orlan_trade_fair", "okapi_robotics"]),
    ("What is the population of the town where the Lumen-9 sensor is assembled?", "60,000", ["lumen_9", "port_ives"]),
    ("When was the lighthouse built whose history Liora Pemberton wrote?", "1880",
     ["liora_pemberton", "vandor_island"]),
    ("How many residents does the island where Tobin Vashti was born have?", "9,000",
     ["tobin_vashti", "vandor_island"]),
    ("Which company operates the ferry that connects Vandor Island with Port Ives?", "Halvard Shipping",
     ["tidewalker", "halvard_shipping"]),
    ("What does the novelist married to Renata Szabo teach, and where?", "writing, at the university in Orlan",
     ["renata_szabo", "caius_fenwright"]),
    ("Which award-winning novel did the husband of Orlan's mayor write?", "The Salt Ledger",
     ["orlan", "renata_szabo", "caius_fenwright"]),
    ("What disaster destroyed homes in the valley where Brightwell Foods buys its oats?", "the Teshmar Flood of 2009",
     ["brightwell_foods", "teshmar_flood"]),
    ("How many homes did the 2009 flood destroy in the valley at whose head Kelby lies?", "more than 2,000",
     ["kelby", "teshmar_flood"]),
    ("Who is the mayor of the city where Dev Okonkwo-Lind studied?", "Renata Szabo", ["dev_okonkwo_lind", "orlan"]),
    ("With which company did Hugo Achterberg's former employer sign a supply deal?", "Okapi Robotics",
     ["hugo_achterberg", "zentrix_labs"]),
    ("What does the company whose chief executive studied chemistry in Kelby make?", "the Sunmere Cell sodium battery",
     ["ilse_marrow", "sunmere_energy"]),
    ("When was the company founded that built the machine whose control software Hugo Achterberg wrote?", "2014",
     ["hugo_achterberg", "okapi_robotics"]),
    ("How precise is the best known product of the company where Hugo Achterberg worked on firmware?",
     "one part per billion", ["hugo_achterberg", "zentrix_labs", "lumen_9"]),
    ("How many engineers does the company that employed Hugo Achterberg on sensor firmware have?", "about 300",
     ["hugo_achterberg", "zentrix_labs"]),
    ("Who is the mayor of the city whose trade fair gave the Okapi Walker a prize?", "Renata Szabo",
     ["orlan_trade_fair", "orlan"]),
    ("Until when did the founder of Halvard Shipping chair it?", "2015", ["halvard_shipping", "tobin_vashti"]),
    ("What do the batteries of the Tidewalker ferry contain no trace of?", "lithium", ["tidewalker", "sunmere_energy"]),
]


def write_corpus(folder: Path, *, distractors: bool = True) -> Path:
    """The documents (with the distractors, unless told) as Markdown files in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in {**DOCS, **(DISTRACTORS if distractors else {})}.items():
        (folder / name).write_text(text + "\n")
    return folder


def needed_sources(folder: Path, needs: list[str]) -> set[str]:
    return {str((folder / f"{name}.md").resolve()) for name in needs}


def all_needed_rate(retrieve, folder: Path) -> float:
    """The share of questions for which `retrieve(question)` (a list of hits) holds every needed document."""
    found = sum(needed_sources(folder, needs) <= {hit.source for hit in retrieve(question)}
                for question, _, needs in QUESTIONS)
    return found / len(QUESTIONS)
