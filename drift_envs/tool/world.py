"""The simulated world the tools act on: plain tables (accounts, orders, flights, bookings, calendars,
weather) in a JSON-able dict, and the tools that read and change them.

Every tool is a :class:`ToolSpec`: an OpenAI function schema (name, description, JSON-schema
parameters) and a pure function ``run(state, arguments) -> result`` that may change ``state`` in place.
:meth:`World.execute` checks a call against the tools the task offers and their schemas before running
it, and turns every problem (unknown tool, missing or ill-typed argument, a domain error such as
insufficient funds) into an ``{"error": ...}`` result: a tool never raises into the env.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from drift_envs.tool.calls import ToolCall, check_arguments

__all__ = ["DOMAIN_TOOLS", "TOOLS", "ToolError", "ToolSpec", "World", "convert"]


class ToolError(Exception):
    """A call that is well-formed but fails in the world (unknown id, insufficient funds, ...)."""


@dataclass(frozen=True)
class ToolSpec:
    """One tool: its schema and what it does to the world."""

    name: str
    description: str
    parameters: dict
    run: Callable[[dict, dict], Any]
    domain: str

    def schema(self) -> dict:
        """The OpenAI function schema ``{"type": "function", "function": {...}}``."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


def _params(required: list[str], **properties: dict) -> dict:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


_S = {"type": "string"}


def _get(table: dict, key: Any, what: str) -> dict:
    row = table.get(key) if isinstance(key, str) else None
    if row is None:
        raise ToolError(f"no {what} with id {key!r}")
    return row


# ---- bank ----------------------------------------------------------------------------------------
def _find_account(state: dict, a: dict) -> dict:
    for account_id, row in sorted(state.get("accounts", {}).items()):
        if row["owner"].lower() == a["owner"].strip().lower():
            return {"account_id": account_id, "owner": row["owner"]}
    raise ToolError(f"no account belongs to {a['owner']!r}")


def _get_balance(state: dict, a: dict) -> dict:
    row = _get(state.get("accounts", {}), a["account_id"], "account")
    return {"account_id": a["account_id"], "balance": row["balance"]}


def _transfer(state: dict, a: dict) -> dict:
    accounts = state.get("accounts", {})
    src = _get(accounts, a["from_account"], "account")
    dst = _get(accounts, a["to_account"], "account")
    if a["from_account"] == a["to_account"]:
        raise ToolError("from_account and to_account are the same account")
    if src["balance"] < a["amount"]:
        raise ToolError(f"insufficient funds: {a['from_account']} holds {src['balance']}")
    src["balance"] -= a["amount"]
    dst["balance"] += a["amount"]
    return {"from_balance": src["balance"], "to_balance": dst["balance"]}


# ---- shop ----------------------------------------------------------------------------------------
def _list_orders(state: dict, a: dict) -> dict:
    who = a["customer"].strip().lower()
    rows = [
        {"order_id": oid, "item": o["item"], "status": o["status"]}
        for oid, o in sorted(state.get("orders", {}).items())
        if o["customer"].lower() == who
    ]
    if not rows:
        raise ToolError(f"no orders for customer {a['customer']!r}")
    return {"orders": rows}


def _get_order(state: dict, a: dict) -> dict:
    return {"order_id": a["order_id"], **_get(state.get("orders", {}), a["order_id"], "order")}


def _cancel_order(state: dict, a: dict) -> dict:
    order = _get(state.get("orders", {}), a["order_id"], "order")
    if order["status"] != "processing":
        raise ToolError(f"order {a['order_id']} is {order['status']} and can no longer be cancelled")
    order["status"] = "cancelled"
    return {"order_id": a["order_id"], "status": "cancelled", "refund": order["price"]}


# ---- travel --------------------------------------------------------------------------------------
def _search_flights(state: dict, a: dict) -> dict:
    rows = [
        {"flight_id": fid, "departure": f["departure"], "price": f["price"], "seats": f["seats"]}
        for fid, f in sorted(state.get("flights", {}).items())
        if (f["origin"], f["destination"], f["date"]) == (a["origin"], a["destination"], a["date"])
    ]
    return {"flights": rows}


def _book_flight(state: dict, a: dict) -> dict:
    flight = _get(state.get("flights", {}), a["flight_id"], "flight")
    if flight["seats"] < 1:
        raise ToolError(f"flight {a['flight_id']} is full")
    flight["seats"] -= 1
    counters = state.setdefault("counters", {})
    counters["booking"] = counters.get("booking", 100) + 1
    booking_id = f"BK-{counters['booking']}"
    state.setdefault("bookings", {})[booking_id] = {"flight_id": a["flight_id"], "passenger": a["passenger"]}
    return {"booking_id": booking_id, "flight_id": a["flight_id"], "passenger": a["passenger"]}


# ---- calendar ------------------------------------------------------------------------------------
def _list_events(state: dict, a: dict) -> dict:
    who = a["owner"].strip().lower()
    rows = [
        {"event_id": eid, "title": e["title"], "time": e["time"]}
        for eid, e in sorted(state.get("events", {}).items())
        if e["owner"].lower() == who and e["date"] == a["date"]
    ]
    return {"events": rows}


def _create_event(state: dict, a: dict) -> dict:
    time = a["time"]
    if len(time) != 5 or time[2] != ":" or not (time[:2] + time[3:]).isdigit():
        raise ToolError(f"time must look like HH:MM, got {time!r}")
    counters = state.setdefault("counters", {})
    counters["event"] = counters.get("event", 500) + 1
    event_id = f"EV-{counters['event']}"
    state.setdefault("events", {})[event_id] = {
        "owner": a["owner"],
        "title": a["title"],
        "date": a["date"],
        "time": time,
    }
    return {"event_id": event_id}


def _delete_event(state: dict, a: dict) -> dict:
    _get(state.get("events", {}), a["event_id"], "event")
    del state["events"][a["event_id"]]
    return {"deleted": a["event_id"]}


# ---- weather and units ---------------------------------------------------------------------------
def _get_weather(state: dict, a: dict) -> dict:
    row = state.get("weather", {}).get(f"{a['city']}|{a['date']}")
    if row is None:
        raise ToolError(f"no forecast for {a['city']!r} on {a['date']!r}")
    return {"city": a["city"], "date": a["date"], **row}


UNITS = ("C", "F", "km", "mi", "kg", "lb")
_LINEAR = {("km", "mi"): 0.621371, ("mi", "km"): 1.609344, ("kg", "lb"): 2.204623, ("lb", "kg"): 0.453592}


def convert(value: float, from_unit: str, to_unit: str) -> float:
    """``value`` in ``to_unit``, rounded to one decimal (the tool's and the answers' precision)."""
    if from_unit == to_unit:
        return round(float(value), 1)
    if (from_unit, to_unit) == ("C", "F"):
        return round(value * 9 / 5 + 32, 1)
    if (from_unit, to_unit) == ("F", "C"):
        return round((value - 32) * 5 / 9, 1)
    if (from_unit, to_unit) in _LINEAR:
        return round(value * _LINEAR[(from_unit, to_unit)], 1)
    raise ToolError(f"cannot convert {from_unit} to {to_unit}")


def _convert_units(state: dict, a: dict) -> dict:
    return {"value": convert(a["value"], a["from_unit"], a["to_unit"]), "unit": a["to_unit"]}


_TOOL_LIST = [
    ToolSpec("find_account", "Look up the bank account id of a customer by their full name.",
             _params(["owner"], owner=_S), _find_account, "bank"),
    ToolSpec("get_balance", "The current balance (in dollars) of a bank account.",
             _params(["account_id"], account_id=_S), _get_balance, "bank"),
    ToolSpec("transfer", "Move a whole number of dollars from one bank account to another.",
             _params(["from_account", "to_account", "amount"], from_account=_S, to_account=_S,
                     amount={"type": "integer", "minimum": 1}), _transfer, "bank"),
    ToolSpec("list_orders", "List a customer's shop orders (id, item, status).",
             _params(["customer"], customer=_S), _list_orders, "shop"),
    ToolSpec("get_order", "Details of one shop order: customer, item, price and status.",
             _params(["order_id"], order_id=_S), _get_order, "shop"),
    ToolSpec("cancel_order", "Cancel an order that is still processing; returns the refund.",
             _params(["order_id"], order_id=_S), _cancel_order, "shop"),
    ToolSpec("search_flights", "Flights between two cities on a date (YYYY-MM-DD), with prices.",
             _params(["origin", "destination", "date"], origin=_S, destination=_S, date=_S),
             _search_flights, "travel"),
    ToolSpec("book_flight", "Book one seat on a flight for a passenger; returns the booking id.",
             _params(["flight_id", "passenger"], flight_id=_S, passenger=_S), _book_flight, "travel"),
    ToolSpec("list_events", "A person's calendar events on a date (YYYY-MM-DD).",
             _params(["owner", "date"], owner=_S, date=_S), _list_events, "calendar"),
    ToolSpec("create_event", "Add an event to a person's calendar; returns the new event id.",
             _params(["owner", "title", "date", "time"], owner=_S, title=_S, date=_S,
                     time={"type": "string", "description": "HH:MM, 24-hour clock"}), _create_event, "calendar"),
    ToolSpec("delete_event", "Remove an event from a calendar by its id.",
             _params(["event_id"], event_id=_S), _delete_event, "calendar"),
    ToolSpec("get_weather", "The forecast for a city on a date (YYYY-MM-DD): temperature in C and conditions.",
             _params(["city", "date"], city=_S, date=_S), _get_weather, "weather"),
    ToolSpec("convert_units", "Convert a value between units (C/F, km/mi, kg/lb); rounds to one decimal.",
             _params(["value", "from_unit", "to_unit"], value={"type": "number"},
                     from_unit={"type": "string", "enum": list(UNITS)},
                     to_unit={"type": "string", "enum": list(UNITS)}), _convert_units, "weather"),
]  # fmt: skip
#: every tool of the procedural world, by name
TOOLS: dict[str, ToolSpec] = {t.name: t for t in _TOOL_LIST}
#: domain -> its tools' names
DOMAIN_TOOLS: dict[str, tuple[str, ...]] = {}
for _t in _TOOL_LIST:
    DOMAIN_TOOLS[_t.domain] = (*DOMAIN_TOOLS.get(_t.domain, ()), _t.name)


class World:
    """The state of one episode and the tools it offers; :meth:`execute` runs one call safely."""

    def __init__(self, state: dict, tools: list[str]) -> None:
        self.state = copy.deepcopy(state)
        self.tools = list(tools)

    def execute(self, call: ToolCall) -> tuple[Any, str | None]:
        """``(result, error)``: the tool's result, or ``({"error": msg}, msg)`` when the call fails."""
        spec = TOOLS.get(call.name)
        if spec is None or call.name not in self.tools:
            offered = ", ".join(self.tools)
            msg = f"unknown tool {call.name!r}; the tools you can call are: {offered}"
            return {"error": msg}, msg
        problem = check_arguments(call.arguments, spec.parameters)
        if problem is not None:
            msg = f"{call.name}: {problem}"
            return {"error": msg}, msg
        arguments = dict(call.arguments)
        if spec.parameters["properties"].get("amount", {}).get("type") == "integer" and "amount" in arguments:
            arguments["amount"] = int(arguments["amount"])  # 200.0 is an integer per JSON schema
        scratch = copy.deepcopy(self.state)  # a failing tool leaves the world as it was
        try:
            result = spec.run(scratch, arguments)
        except ToolError as e:
            msg = f"{call.name}: {e}"
            return {"error": msg}, msg
        self.state = scratch
        return result, None

    def snapshot(self) -> str:
        """The state as canonical JSON (two worlds are in the same state iff their snapshots are equal)."""
        return json.dumps(self.state, sort_keys=True)
