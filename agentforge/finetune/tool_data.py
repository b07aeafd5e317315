"""Tool-calling training data the project writes itself: made-up functions with JSON schemas, and
questions that need one call, several calls (parallel, or to different functions), a call and then
an answer from its result, or no call at all. Nothing is downloaded, and no benchmark's questions
are used (BFCL is what the result is measured on).

    agentforge finetune tool-data --rows 480 --seed 0 --out tool_calls.jsonl
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_CITIES = ["Lisbon", "Osaka", "Nairobi", "Denver", "Hanoi", "Quito", "Oslo", "Perth", "Cairo", "Lyon", "Austin",
           "Seoul", "Dublin", "Lagos", "Lima", "Zagreb", "Tucson", "Porto", "Accra", "Bergen"]
_PEOPLE = ["Ana Ruiz", "Tom Becker", "Mei Chen", "Omar Haddad", "Lena Novak", "Raj Patel", "Sara Lind", "Ivo Kral"]
_ITEMS = ["desk lamp", "water bottle", "backpack", "keyboard", "yoga mat", "coffee grinder", "tent", "monitor"]
_TICKERS = ["ACME", "ZENT", "BLUX", "KORA", "PLNX", "VYTA", "QUBE", "MARL"]
_LANGS = ["French", "German", "Spanish", "Japanese", "Italian", "Portuguese"]
_UNITS = [("kilometers", "miles"), ("celsius", "fahrenheit"), ("kilograms", "pounds"), ("liters", "gallons")]


@dataclass(frozen=True, slots=True, eq=False)
class _Function:
    """A made-up function: its spec, ways to ask for a call, and a plausible result."""

    spec: dict
    draw: Callable[[random.Random], dict]  # arguments
    ask: tuple[str, ...]  # question templates over the arguments
    result: Callable[[random.Random, dict], Any]
    answer: str  # the final answer's template, over arguments and the result


def _fn(name: str, description: str, properties: dict, required: list[str]) -> dict:
    return {"type": "function", "function": {"name": name, "description": description, "parameters": {
        "type": "object", "properties": properties, "required": required}}}


def _num(description: str, kind: str = "number") -> dict:
    return {"type": kind, "description": description}


def _str(description: str, enum: list[str] | None = None) -> dict:
    return {"type": "string", "description": description, **({"enum": enum} if enum else {})}


_FUNCTIONS = [
    _Function(_fn("get_weather", "Current weather for a city.", {"city": _str("City name"), "unit": _str(
        "Temperature unit", ["celsius", "fahrenheit"])}, ["city"]),
        lambda r: {"city": r.choice(_CITIES)},
        ("What's the weather like in {city} right now?", "Is it raining in {city}?", "Tell me the current weather in {city}."),
        lambda r, a: {"temperature": r.randint(-5, 35), "condition": r.choice(["sunny", "cloudy", "light rain"])},
        "It is {temperature} degrees and {condition} in {city}."),
    _Function(_fn("convert_units", "Convert a value from one unit to another.", {"value": _num("The value to convert"),
        "from_unit": _str("Unit of the value"), "to_unit": _str("Unit to convert to")}, ["value", "from_unit", "to_unit"]),
        lambda r: dict(zip(("from_unit", "to_unit"), r.choice(_UNITS)), value=r.randint(2, 500)),
        ("Convert {value} {from_unit} to {to_unit}.", "How many {to_unit} is {value} {from_unit}?"),
        lambda r, a: {"result": round(a["value"] * r.uniform(0.3, 2.5), 2)},
        "{value} {from_unit} is {result} {to_unit}."),
    _Function(_fn("get_stock_price", "Latest share price for a ticker symbol.", {"ticker": _str("Ticker symbol")},
        ["ticker"]), lambda r: {"ticker": r.choice(_TICKERS)},
        ("What is {ticker} trading at?", "Give me the latest share price of {ticker}.", "How much is one {ticker} share?"),
        lambda r, a: {"price": round(r.uniform(5, 900), 2), "currency": "USD"},
        "{ticker} is trading at {price} {currency}."),
    _Function(_fn("calculate_loan_payment", "Monthly payment of a fixed-rate loan.", {"principal": _num(
        "Amount borrowed"), "annual_rate": _num("Yearly interest rate in percent"), "years": _num("Term in years",
        "integer")}, ["principal", "annual_rate", "years"]),
        lambda r: {"principal": r.choice([5000, 12000, 25000, 180000, 320000]), "annual_rate": r.choice([3.5, 4.2, 5, 6.75]),
                   "years": r.choice([3, 5, 15, 30])},
        ("What would I pay each month on a {principal} loan at {annual_rate}% over {years} years?",
         "Monthly payment for borrowing {principal} at {annual_rate} percent for {years} years?"),
        lambda r, a: {"monthly_payment": round(a["principal"] / (a["years"] * 12) * 1.2, 2)},
        "The monthly payment would be {monthly_payment}."),
    _Function(_fn("area_of_circle", "Area of a circle from its radius.", {"radius": _num("Radius of the circle"),
        "units": _str("Length units")}, ["radius"]), lambda r: {"radius": r.randint(1, 40)},
        ("Find the area of a circle with radius {radius}.", "What's the area of a circle whose radius is {radius}?"),
        lambda r, a: {"area": round(3.14159 * a["radius"] ** 2, 2)}, "The area is {area}."),
    _Function(_fn("rectangle_perimeter", "Perimeter of a rectangle.", {"length": _num("Length"), "width": _num(
        "Width")}, ["length", "width"]), lambda r: {"length": r.randint(2, 90), "width": r.randint(1, 60)},
        ("Perimeter of a rectangle {length} long and {width} wide?", "Compute the perimeter of a {length} by {width} rectangle."),
        lambda r, a: {"perimeter": 2 * (a["length"] + a["width"])}, "The perimeter is {perimeter}."),
    _Function(_fn("find_restaurants", "Search restaurants in a city, optionally by cuisine.", {"city": _str("City"),
        "cuisine": _str("Type of food"), "max_results": _num("How many to return", "integer")}, ["city"]),
        lambda r: {"city": r.choice(_CITIES), "cuisine": r.choice(["Thai", "Italian", "vegan", "Mexican", "sushi"])},
        ("Find {cuisine} restaurants in {city}.", "Any good {cuisine} places to eat in {city}?"),
        lambda r, a: {"restaurants": [f"{a['cuisine']} House", f"Casa {a['city']}"]},
        "In {city} you could try {restaurants}."),
    _Function(_fn("translate_text", "Translate text into another language.", {"text": _str("Text to translate"),
        "target_language": _str("Language to translate into")}, ["text", "target_language"]),
        lambda r: {"text": r.choice(["good morning", "where is the station", "thank you very much", "see you tomorrow"]),
                   "target_language": r.choice(_LANGS)},
        ("Translate '{text}' into {target_language}.", "How do you say \"{text}\" in {target_language}?"),
        lambda r, a: {"translation": f"[{a['target_language']}] {a['text']}"}, "In {target_language}: {translation}."),
    _Function(_fn("send_email", "Send an email.", {"to": _str("Recipient name or address"), "subject": _str("Subject"),
        "body": _str("Message text")}, ["to", "subject", "body"]),
        lambda r: {"to": r.choice(_PEOPLE), "subject": r.choice(["Meeting", "Invoice", "Lunch"]),
                   "body": r.choice(["See you at noon.", "Please find the invoice attached.", "Are you free Friday?"])},
        ("Email {to} with the subject '{subject}' saying: {body}", "Send {to} an email titled {subject}: \"{body}\""),
        lambda r, a: {"status": "sent"}, "The email to {to} was {status}."),
    _Function(_fn("create_calendar_event", "Add an event to the calendar.", {"title": _str("Event title"), "date": _str(
        "Date as YYYY-MM-DD"), "time": _str("Start time as HH:MM")}, ["title", "date"]),
        lambda r: {"title": r.choice(["Dentist", "Team sync", "Piano lesson", "Flight"]),
                   "date": f"2027-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}", "time": f"{r.randint(8, 18):02d}:{r.choice(['00', '30'])}"},
        ("Put '{title}' in my calendar on {date} at {time}.", "Schedule {title} for {date} at {time}."),
        lambda r, a: {"event_id": r.randint(100, 999)}, "{title} is scheduled on {date} at {time}."),
    _Function(_fn("check_inventory", "Units in stock of a product.", {"product": _str("Product name"), "warehouse": _str(
        "Warehouse code")}, ["product"]), lambda r: {"product": r.choice(_ITEMS)},
        ("How many {product}s do we have in stock?", "Check the inventory for {product}."),
        lambda r, a: {"in_stock": r.randint(0, 400)}, "There are {in_stock} units of {product} in stock."),
    _Function(_fn("get_population", "Population of a city.", {"city": _str("City name"), "year": _num("Year",
        "integer")}, ["city"]), lambda r: {"city": r.choice(_CITIES), "year": r.choice([2010, 2015, 2020, 2024])},
        ("What was the population of {city} in {year}?", "How many people lived in {city} in {year}?"),
        lambda r, a: {"population": r.randint(50_000, 9_000_000)}, "{city} had {population} people in {year}."),
    _Function(_fn("compound_interest", "Value of a deposit with compound interest.", {"principal": _num("Initial deposit"),
        "rate": _num("Yearly rate as a decimal"), "years": _num("Years", "integer"), "compounds_per_year": _num(
        "Compounding periods per year", "integer")}, ["principal", "rate", "years"]),
        lambda r: {"principal": r.choice([1000, 2500, 10000]), "rate": r.choice([0.03, 0.05, 0.07]), "years": r.randint(2, 20)},
        ("If I deposit {principal} at a rate of {rate} for {years} years, what will it be worth?",
         "Compound interest on {principal} at {rate} over {years} years?"),
        lambda r, a: {"value": round(a["principal"] * (1 + a["rate"]) ** a["years"], 2)}, "It will be worth {value}."),
    _Function(_fn("book_hotel", "Book a hotel room.", {"city": _str("City"), "check_in": _str("Date YYYY-MM-DD"),
        "nights": _num("Number of nights", "integer"), "guests": _num("Number of guests", "integer")},
        ["city", "check_in", "nights"]),
        lambda r: {"city": r.choice(_CITIES), "check_in": f"2027-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}",
                   "nights": r.randint(1, 9)},
        ("Book me a hotel in {city} from {check_in} for {nights} nights.", "I need a room in {city}, checking in {check_in}, {nights} nights."),
        lambda r, a: {"confirmation": f"H{r.randint(10000, 99999)}"}, "Your hotel in {city} is booked, confirmation {confirmation}."),
    _Function(_fn("get_exchange_rate", "Exchange rate between two currencies.", {"base": _str("Currency code to convert from"),
        "quote": _str("Currency code to convert to")}, ["base", "quote"]),
        lambda r: dict(zip(("base", "quote"), r.sample(["USD", "EUR", "JPY", "GBP", "BRL", "KES"], 2))),
        ("What's the exchange rate from {base} to {quote}?", "How much is 1 {base} in {quote}?"),
        lambda r, a: {"rate": round(r.uniform(0.01, 150), 4)}, "1 {base} is {rate} {quote}."),
    _Function(_fn("solve_quadratic", "Roots of a*x^2 + b*x + c = 0.", {"a": _num("Coefficient a", "integer"), "b": _num(
        "Coefficient b", "integer"), "c": _num("Coefficient c", "integer")}, ["a", "b", "c"]),
        lambda r: {"a": r.randint(1, 5), "b": r.randint(-10, 10), "c": r.randint(-20, 5)},
        ("Solve the quadratic equation with a={a}, b={b} and c={c}.", "Find the roots of {a}x^2 + {b}x + {c} = 0."),
        lambda r, a: {"roots": [round(r.uniform(-5, 5), 3), round(r.uniform(-5, 5), 3)]}, "The roots are {roots}."),
    _Function(_fn("track_package", "Delivery status of a package.", {"tracking_number": _str("Tracking number")},
        ["tracking_number"]), lambda r: {"tracking_number": f"TRK{r.randint(100000, 999999)}"},
        ("Where is my package {tracking_number}?", "Track shipment {tracking_number} for me."),
        lambda r, a: {"status": r.choice(["in transit", "delivered", "out for delivery"])},
        "Package {tracking_number} is {status}."),
    _Function(_fn("calculate_bmi", "Body mass index from weight and height.", {"weight_kg": _num("Weight in kilograms"),
        "height_m": _num("Height in meters")}, ["weight_kg", "height_m"]),
        lambda r: {"weight_kg": r.randint(45, 120), "height_m": round(r.uniform(1.5, 2.0), 2)},
        ("My weight is {weight_kg} kg and I am {height_m} m tall. What's my BMI?", "Calculate BMI for {weight_kg} kg at {height_m} m."),
        lambda r, a: {"bmi": round(a["weight_kg"] / a["height_m"] ** 2, 1)}, "Your BMI is {bmi}."),
    _Function(_fn("get_movie_showtimes", "Showtimes of a movie at cinemas in a city.", {"movie": _str("Movie title"),
        "city": _str("City")}, ["movie", "city"]),
        lambda r: {"movie": r.choice(["The Last Orbit", "Paper Tigers", "Blue Harbor"]), "city": r.choice(_CITIES)},
        ("When is {movie} playing in {city}?", "Showtimes for {movie} in {city}, please."),
        lambda r, a: {"showtimes": ["18:10", "20:45"]}, "{movie} plays in {city} at {showtimes}."),
    _Function(_fn("lookup_employee", "Find an employee in the company directory.", {"name": _str("Full name")}, ["name"]),
        lambda r: {"name": r.choice(_PEOPLE)}, ("What is {name}'s phone extension?", "Look up {name} in the staff directory."),
        lambda r, a: {"department": r.choice(["Sales", "Finance", "IT"]), "extension": r.randint(1000, 9999)},
        "{name} works in {department}, extension {extension}."),
]

_NO_TOOL = [  # questions no function helps with, and a short answer
    ("Hi there!", "Hello! How can I help you today?"),
    ("Thanks, that's all.", "You're welcome! Have a great day."),
    ("What is the capital of Italy?", "The capital of Italy is Rome."),
    ("Who wrote Romeo and Juliet?", "William Shakespeare wrote Romeo and Juliet."),
    ("What is 7 times 8?", "7 times 8 is 56."),
    ("How many days are in a week?", "A week has 7 days."),
    ("What color do you get by mixing blue and yellow?", "Mixing blue and yellow gives green."),
    ("Tell me a short joke.", "Why did the scarecrow win an award? Because he was outstanding in his field."),
    ("What is the boiling point of water at sea level in Celsius?", "Water boils at 100 degrees Celsius at sea level."),
    ("Can you write a haiku about autumn?", "Crisp leaves drift and fall,\ngolden light on quiet paths,\nthe year exhales slow."),
    ("What does CPU stand for?", "CPU stands for central processing unit."),
    ("Which planet is closest to the Sun?", "Mercury is the planet closest to the Sun."),
    ("What's a synonym for happy?", "A synonym for happy is joyful."),
    ("How many legs does a spider have?", "A spider has eight legs."),
    ("Explain what a noun is in one sentence.", "A noun is a word that names a person, place, thing or idea."),
    ("What is the largest ocean on Earth?", "The Pacific Ocean is the largest ocean on Earth."),
]
_UNSUPPORTED = ["Order me a pizza.", "Play some jazz music.", "Turn off the living room lights.",
                "What's the meaning of life?", "Who won the football match last night?", "Draw a picture of a cat.",
                "Remind me to call my mother.", "What is my horoscope for today?"]


def _question(fn: _Function, r: random.Random, args: dict) -> str:
    return r.choice(fn.ask).format(**args)


def _call(name: str, args: dict, index: int) -> dict:
    return {"id": f"call_{index}", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}


def _answer(fn: _Function, args: dict, result: dict) -> str:
    values = {**args, **{k: ", ".join(map(str, v)) if isinstance(v, list) else v for k, v in result.items()}}
    return fn.answer.format(**values)


def _tools(r: random.Random, needed: list[_Function]) -> list[dict]:
    others = [f for f in _FUNCTIONS if f not in needed]
    chosen = needed + r.sample(others, r.randint(0, 2))
    r.shuffle(chosen)
    return [f.spec for f in chosen]


def _row(r: random.Random) -> dict:
    kind = r.choices(["one", "parallel", "multiple", "result", "none", "unsupported"], [30, 12, 12, 20, 16, 10])[0]
    if kind in ("none", "unsupported"):
        needed = r.sample(_FUNCTIONS, r.randint(1, 3))
        if kind == "none":
            question, reply = r.choice(_NO_TOOL)
        else:
            question = r.choice(_UNSUPPORTED)
            reply = "Sorry, none of the available functions can do that."
        return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": reply}],
                "tools": [f.spec for f in needed]}
    if kind == "parallel":
        fn = r.choice([f for f in _FUNCTIONS if "city" in f.spec["function"]["parameters"]["required"]])
        first = fn.draw(r)
        second = {**fn.draw(r), "city": r.choice([c for c in _CITIES if c != first["city"]])}
        again = _question(fn, r, second)
        question = f"{_question(fn, r, first)} And {again[0].lower()}{again[1:]}"
        calls = [(fn, first), (fn, second)]
    elif kind == "multiple":
        one, two = r.sample(_FUNCTIONS, 2)
        calls = [(one, one.draw(r)), (two, two.draw(r))]
        question = f"{_question(one, r, calls[0][1])} Also, {_question(two, r, calls[1][1])}"
    else:
        fn = r.choice(_FUNCTIONS)
        calls = [(fn, fn.draw(r))]
        question = _question(fn, r, calls[0][1])
    tools = _tools(r, list(dict.fromkeys(f for f, _ in calls)))
    messages = [{"role": "user", "content": question},
                {"role": "assistant", "content": None,
                 "tool_calls": [_call(f.spec["function"]["name"], a, i) for i, (f, a) in enumerate(calls)]}]
    if kind == "result" or r.random() < 0.3:  # the results come back: answer from them
        results = [f.result(r, a) for f, a in calls]
        messages += [{"role": "tool", "tool_call_id": f"call_{i}", "content": json.dumps(res)} for i, res in enumerate(results)]
        messages.append({"role": "assistant", "content": " ".join(_answer(f, a, res) for (f, a), res in zip(calls, results))})
    return {"messages": messages, "tools": tools}


def tool_call_rows(count: int, seed: int = 0) -> list[dict]:
    """`count` rows in the OpenAI chat format (`finetune` reads them as they are)."""
    if count < 1:
        raise ValueError("count must be positive")
    r = random.Random(seed)
    return [_row(r) for _ in range(count)]


def write_tool_call_data(path: str | Path, count: int, seed: int = 0) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in tool_call_rows(count, seed)))
    return path
