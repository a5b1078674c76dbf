"""Tool-use tasks: a dialogue of user requests over a small world, and the procedural generator.

A :class:`ToolTask` is what :class:`~drift_envs.tool.env.ToolUseEnv` plays: the tools offered (the
domain's own plus distractors from other domains), the initial world state, and the requests. Each
:class:`Request` carries its reference calls in *rounds* (a round's calls can go out together; a later
round needs an earlier one's results), the expected answer and the *candidates*: values a guesser
could list instead (an answer naming another candidate is wrong, so listing every value seen fails).

The procedural source (``("tool", "procedural")``) builds task ``i`` from ``Random("<seed>/<split>/<i>")``
alone. Five domains — bank, shop, travel (with weather and a unit conversion), calendar, weather —
each a dialogue of 2-3 requests where a call's output feeds the next call and a later request depends
on a state change made by an earlier one. The splits draw people and cities from disjoint pools, so no
test dialogue appears in train.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from drift_envs.core import Task
from drift_envs.sources.base import SourceConfig, TaskSource, register_source
from drift_envs.tool.calls import ToolCall
from drift_envs.tool.world import DOMAIN_TOOLS, TOOLS, convert

__all__ = ["DOMAINS", "ProceduralToolConfig", "ProceduralToolTasks", "Request", "ToolTask", "normalize_value"]

DOMAINS = ("bank", "shop", "travel", "calendar", "weather")


@dataclass(frozen=True)
class Request:
    """One user request of a dialogue."""

    text: str
    rounds: tuple[tuple[ToolCall, ...], ...]  # reference calls, round by round
    answer: str | None  # the expected answer as shown (compared normalised); None: any non-empty reply
    candidates: tuple[str, ...] = ()  # normalised values that must not appear next to the answer

    @property
    def reference_calls(self) -> list[ToolCall]:
        """Every reference call in order (the MTU-Bench "gold" calls of this turn)."""
        return [c for r in self.rounds for c in r]


@dataclass(frozen=True)
class ToolTask:
    """A dialogue: tool schemas offered, initial world, requests, and how calls are executed."""

    task_id: str
    domain: str
    tools: tuple[str, ...]  # tool names, in the order offered
    state: dict
    requests: tuple[Request, ...]
    backend: str = "world"  # "world": the simulated world; "replay": recorded observations (MTU-Bench)
    schemas: tuple[dict, ...] = ()  # replay tasks: the file's own schemas
    observations: tuple[tuple[str, ...], ...] = ()  # replay tasks: recorded result per reference call
    meta: dict = field(default_factory=dict)

    def tool_schemas(self) -> list[dict]:
        """The OpenAI function schemas offered to the model."""
        if self.schemas:
            return [dict(s) for s in self.schemas]
        return [TOOLS[name].schema() for name in self.tools]

    def to_task(self) -> Task:
        """The env-level :class:`~drift_envs.core.Task` (``meta["tool_task"]`` holds this object)."""
        return Task(
            task_id=self.task_id,
            prompt=self.requests[0].text,
            answer=[r.answer for r in self.requests],
            meta={"tool_task": self, "domain": self.domain, **self.meta},
        )


def normalize_value(value: object) -> str:
    """Answers and candidates compare in this form: numbers without commas or a trailing ``.0``,
    words lower-cased."""
    text = str(value).strip().lower().replace(",", "")
    try:
        number = float(text)
    except ValueError:
        return text
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return repr(round(number, 4))


# Disjoint pools per split: test takes every fourth name/city, train the rest.
_PEOPLE = [
    "Alice Moreau", "Bruno Silva", "Chen Wei", "Dana Cohen", "Elif Kaya", "Farid Haddad", "Grace Okafor",
    "Hugo Lindqvist", "Ines Duarte", "Jonas Weber", "Kofi Mensah", "Lena Novak", "Mateo Rossi",
    "Nadia Petrova", "Omar Farouk", "Priya Nair", "Quinn Walsh", "Rosa Jimenez", "Sven Berg",
    "Tara Singh", "Umar Sheikh", "Vera Ivanova", "Wen Li", "Yusuf Demir", "Zoe Carter", "Arjun Rao",
    "Bea Laurent", "Carlos Mendes", "Dmitri Volkov", "Emma Fischer", "Felix Braun", "Hana Sato",
]  # fmt: skip
_CITIES = [
    "Lisbon", "Oslo", "Nairobi", "Lima", "Hanoi", "Dublin", "Quito", "Tunis", "Riga", "Perth",
    "Osaka", "Porto", "Accra", "Cusco", "Tallinn", "Bergen", "Seville", "Dakar", "Krakow", "Malmo",
]  # fmt: skip
_ITEMS = [
    "lamp",
    "kettle",
    "backpack",
    "keyboard",
    "blender",
    "umbrella",
    "headphones",
    "desk chair",
    "toaster",
]
_TITLES = ["dentist", "yoga", "standup", "haircut", "piano", "tennis", "dinner", "interview", "checkup"]
_CONDITIONS = ["sunny", "cloudy", "rainy", "windy", "foggy"]
# Other weather conditions an answer might name beside the forecast one ("rainy or stormy"): the
# world never forecasts them, but an answer naming one names a second condition.
_OTHER_CONDITIONS = (
    "stormy", "snowy", "overcast", "drizzly", "misty", "hazy", "thundery", "showery", "sleety", "clear",
    "partly", "fair", "wet", "dry", "storm", "snow", "rain", "sun", "fog", "wind", "clouds", "drizzle",
    "thunderstorms", "showers", "hail", "sleet",
)  # fmt: skip


def _pool(items: list[str], split: str) -> list[str]:
    held_out = split == "test"
    return [x for i, x in enumerate(items) if (i % 4 == 0) == held_out]


def _date(rng: random.Random) -> str:
    return f"2025-{rng.randint(3, 9):02d}-{rng.randint(1, 28):02d}"


def _call(name: str, **arguments: object) -> ToolCall:
    return ToolCall(name, arguments)


def _norm_all(values) -> tuple[str, ...]:
    return tuple(sorted({normalize_value(v) for v in values}))


def _bank(rng: random.Random, people: list[str], cities: list[str]):
    owners = rng.sample(people, 4)
    ids = [f"ACC-{n}" for n in rng.sample(range(1000, 9999), 4)]
    balances = [rng.randrange(200, 5000, 10) for _ in owners]
    state = {
        "accounts": {i: {"owner": o, "balance": b} for i, o, b in zip(ids, owners, balances, strict=True)}
    }
    a, b = 0, 1
    amount = rng.randrange(50, min(balances[a], 1500) + 1, 10) if balances[a] >= 50 else balances[a]
    seen = balances + [balances[a] - amount, balances[b] + amount]
    r1 = Request(
        f"How much money is in {owners[a]}'s bank account?",
        ((_call("find_account", owner=owners[a]),), (_call("get_balance", account_id=ids[a]),)),
        str(balances[a]),
        _norm_all(seen),
    )
    r2 = Request(
        f"Please transfer {amount} dollars from {owners[a]}'s account to {owners[b]}'s account. What is "
        f"{owners[a]}'s balance after that?",
        ((_call("find_account", owner=owners[b]),), (_call("transfer", from_account=ids[a], to_account=ids[b],
                                                           amount=amount),)),
        str(balances[a] - amount),
        _norm_all(seen),
    )  # fmt: skip
    r3 = Request(
        f"And how much does {owners[b]} have now?",
        ((_call("get_balance", account_id=ids[b]),),),
        str(balances[b] + amount),
        _norm_all(seen),
    )
    return state, [r1, r2, r3] if rng.random() < 0.5 else [r1, r2]


def _shop(rng: random.Random, people: list[str], cities: list[str]):
    customers = rng.sample(people, 3)
    items = rng.sample(_ITEMS, 6)
    order_ids = [f"ORD-{n}" for n in rng.sample(range(10000, 99999), 6)]
    orders = {}
    for k, oid in enumerate(order_ids):
        orders[oid] = {
            "customer": customers[k // 2],
            "item": items[k],
            "price": rng.randrange(15, 400),
            "status": "processing" if k % 2 == 0 else rng.choice(["shipped", "processing"]),
        }
    target = order_ids[0]  # customers[0]'s first order, still processing
    who, item = customers[0], items[0]
    r1 = Request(
        f"{who} wants to cancel the {item} order. Please cancel it and tell me how much will be refunded.",
        ((_call("list_orders", customer=who),), (_call("cancel_order", order_id=target),)),
        str(orders[target]["price"]),
        _norm_all(o["price"] for o in orders.values()),
    )
    r2 = Request(
        f"Has {who}'s {item} order really been cancelled? Look it up and tell me its status.",
        ((_call("get_order", order_id=target),),),
        "cancelled",
        ("processing", "shipped", "cancelled", "delivered"),
    )
    return {"orders": orders}, [r1, r2]


def _weather_rows(rng: random.Random, cities: list[str], date: str) -> dict:
    return {
        f"{c}|{date}": {"temp_c": rng.randint(-5, 35), "condition": rng.choice(_CONDITIONS)} for c in cities
    }


def _travel(rng: random.Random, people: list[str], cities: list[str]):
    origin, dest, other = rng.sample(cities, 3)
    date = _date(rng)
    passenger = rng.choice(people)
    flights = {}
    prices = rng.sample(range(90, 900, 7), 4)
    for k, price in enumerate(prices):
        fid = f"FL-{rng.randint(100, 999)}{k}"
        to = dest if k < 3 else other
        flights[fid] = {"origin": origin, "destination": to, "date": date, "departure": f"{6 + 3 * k:02d}:15",
                        "price": price, "seats": rng.randint(1, 9)}  # fmt: skip
    cheapest = min(
        (f for f in flights if flights[f]["destination"] == dest), key=lambda f: flights[f]["price"]
    )
    weather = _weather_rows(rng, [origin, dest, other], date)
    temp_c = weather[f"{dest}|{date}"]["temp_c"]
    r1 = Request(
        f"Book the cheapest flight from {origin} to {dest} on {date} for {passenger}. What is the booking id?",
        ((_call("search_flights", origin=origin, destination=dest, date=date),),
         (_call("book_flight", flight_id=cheapest, passenger=passenger),)),
        "BK-101",
        _norm_all([*flights, "BK-101", "BK-102"]),
    )  # fmt: skip
    f_value = convert(temp_c, "C", "F")
    r2 = Request(
        "What temperature is forecast at my destination on the day of that flight? Answer in Fahrenheit.",
        ((_call("get_weather", city=dest, date=date),), (_call("convert_units", value=temp_c, from_unit="C",
                                                               to_unit="F"),)),
        str(f_value),
        _norm_all([f_value, temp_c, *(convert(w["temp_c"], "C", "F") for w in weather.values()),
                   *(w["temp_c"] for w in weather.values())]),
    )  # fmt: skip
    return {"flights": flights, "weather": weather}, [r1, r2]


def _calendar(rng: random.Random, people: list[str], cities: list[str]):
    owner, other = rng.sample(people, 2)
    date = _date(rng)
    titles = rng.sample(_TITLES, 4)
    events = {
        "EV-1": {"owner": owner, "title": titles[0], "date": date, "time": f"{rng.randint(8, 11):02d}:00"},
        "EV-2": {"owner": other, "title": titles[1], "date": date, "time": "14:00"},
        "EV-3": {"owner": owner, "title": titles[2], "date": "2025-12-24", "time": "18:30"},
    }
    new_time = f"{rng.randint(13, 18):02d}:{rng.choice(['00', '30'])}"
    r1 = Request(
        f"What does {owner} have on their calendar on {date}? Answer with the event title.",
        ((_call("list_events", owner=owner, date=date),),),
        str(titles[0]),
        _norm_all(titles),
    )
    r2 = Request(
        f"Cancel that one and put '{titles[3]}' on {owner}'s calendar for the same day at {new_time} instead. "
        "What is the new event's id?",
        ((_call("delete_event", event_id="EV-1"), _call("create_event", owner=owner, title=titles[3], date=date,
                                                        time=new_time)),),
        "EV-501",
        _norm_all(["EV-1", "EV-2", "EV-3", "EV-501", "EV-502"]),
    )  # fmt: skip
    return {"events": events}, [r1, r2]


def _weather(rng: random.Random, people: list[str], cities: list[str]):
    a, b, c = rng.sample(cities, 3)
    date = _date(rng)
    weather = _weather_rows(rng, [a, b, c], date)
    ta, tb = weather[f"{a}|{date}"]["temp_c"], weather[f"{b}|{date}"]["temp_c"]
    temps = [w["temp_c"] for w in weather.values()]
    km = rng.randrange(20, 400, 5)
    r1 = Request(
        f"What's the weather going to be like in {a} on {date}? Answer with the condition.",
        ((_call("get_weather", city=a, date=date),),),
        str(weather[f"{a}|{date}"]["condition"]),
        (*_CONDITIONS, *_OTHER_CONDITIONS),
    )
    r2 = Request(
        f"How many degrees Fahrenheit warmer is {a} than {b} that day? (Negative if colder.)",
        ((_call("get_weather", city=b, date=date),),),
        str(round((ta - tb) * 9 / 5, 1)),
        _norm_all([*temps, round((ta - tb) * 9 / 5, 1), ta - tb, *(convert(t, "C", "F") for t in temps)]),
    )
    r3 = Request(
        f"I'll drive {km} km there. How many miles is that?",
        ((_call("convert_units", value=km, from_unit="km", to_unit="mi"),),),
        str(convert(km, "km", "mi")),
        _norm_all([km, convert(km, "km", "mi"), convert(km, "mi", "km")]),
    )
    return {"weather": weather}, [r1, r2, r3]


_GENERATORS = {"bank": _bank, "shop": _shop, "travel": _travel, "calendar": _calendar, "weather": _weather}


@dataclass(frozen=True)
class ProceduralToolConfig(SourceConfig):
    """Knobs of the procedural tool tasks.

    Args:
        size: number of tasks (10 000).
        domains: the domains drawn from, round-robin by index (all five by default).
        distractors: tools from other domains offered beside the domain's own (2).
    """

    size: int = 10_000
    domains: tuple[str, ...] = DOMAINS
    distractors: int = 2

    def validate(self) -> None:
        super().validate()
        if self.split not in ("train", "test"):
            raise ValueError(f"ProceduralToolConfig.split must be 'train' or 'test', got {self.split!r}")
        if not isinstance(self.size, int) or self.size < 1:
            raise ValueError(f"ProceduralToolConfig.size must be a positive int, got {self.size!r}")
        domains = (self.domains,) if isinstance(self.domains, str) else tuple(self.domains)
        unknown = [d for d in domains if d not in DOMAINS]
        if not domains or unknown:
            raise ValueError(
                f"ProceduralToolConfig.domains must be drawn from {DOMAINS}, got {self.domains!r}"
            )
        object.__setattr__(self, "domains", domains)
        if not isinstance(self.distractors, int) or not 0 <= self.distractors <= 6:
            raise ValueError(
                f"ProceduralToolConfig.distractors must be an int in 0..6, got {self.distractors!r}"
            )


@register_source("tool", "procedural")
class ProceduralToolTasks(TaskSource):
    """Procedural tool-use dialogues; task ``i`` is a pure function of (seed, split, i)."""

    config_class = ProceduralToolConfig

    def __len__(self) -> int:
        return self.limit(self.config.size)

    def tool_task(self, index: int) -> ToolTask:
        """The :class:`ToolTask` at ``index``."""
        cfg = self.config
        rng = random.Random(f"{cfg.seed}/{cfg.split}/{index}")
        domain = cfg.domains[index % len(cfg.domains)]
        state, requests = _GENERATORS[domain](rng, _pool(_PEOPLE, cfg.split), _pool(_CITIES, cfg.split))
        others = sorted(name for d, names in DOMAIN_TOOLS.items() if d != domain for name in names)
        tools = [*DOMAIN_TOOLS[domain], *rng.sample(others, min(cfg.distractors, len(others)))]
        if domain == "travel":  # its second request needs the weather tools
            tools += [t for t in DOMAIN_TOOLS["weather"] if t not in tools]
        rng.shuffle(tools)
        return ToolTask(self.task_id(index), domain, tuple(tools), state, tuple(requests))

    def make_task(self, index: int) -> Task:
        return self.tool_task(index).to_task()
