"""Synthetic wire reports for load and fault tests: each names one given place, no two read alike."""

from __future__ import annotations

import dataclasses
import random

from streams.site import Page, Site

# None of these is on any test watchlist: the place a report is about is the only watched name in it.
TOWNS = [
    "Zawiya", "Gharyan", "Sabratha", "Bani Walid", "Ajdabiya", "Tobruk", "Sabha", "Ubari", "Ghat", "Zliten",
    "Khoms", "Brega", "Ras Lanuf", "Kufra", "Murzuq", "Nalut", "Zuwara", "Awjila", "Hun", "Waddan",
]  # fmt: skip
GROUPS = [
    "the local council", "the Red Crescent", "a UN agency", "the health ministry", "a tribal elders' committee",
    "the port authority", "a teachers' union", "the electricity company", "a women's association",
    "the municipal water board", "an oil workers' union", "the chamber of commerce", "a student group",
]  # fmt: skip
THINGS = [
    "families", "trucks of flour", "generators", "field clinics", "schools", "checkpoints", "bakeries",
    "water tankers", "ambulances", "fuel stations", "market stalls", "power lines", "wells", "shelters",
]  # fmt: skip
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
SENTENCES = [
    "{Group} said {n} {thing} in {town} had been affected since {day}.",
    "According to {group}, {n} {thing} were still waiting near {town} on {day}.",
    "In {town}, {group} counted {n} {thing} and asked for more help before {day}.",
    "A spokesman for {group} told reporters on {day} that {n} {thing} had reached {town}.",
    "Residents of {town} described {n} {thing} standing idle while {group} waited for fuel.",
    "{Group} warned that {n} {thing} around {town} could close by {day} without repairs.",
    "Prices in {town} rose again on {day}, and {group} blamed the shortage of {thing}.",
    "By {day}, {n} {thing} near {town} had been inspected by engineers sent by {group}.",
    "Traders from {town} said {n} {thing} were turned back on {day}, a claim {group} disputed.",
    "{Group} promised {n} new {thing} for {town}, though no date was given after {day}.",
]


def _sentence(rng: random.Random) -> str:
    group = rng.choice(GROUPS)
    return rng.choice(SENTENCES).format(
        Group=group[0].upper() + group[1:],
        group=group,
        n=rng.randint(2, 950),
        thing=rng.choice(THINGS),
        town=rng.choice(TOWNS),
        day=rng.choice(DAYS),
    )


def report(i: int, place: str, words: int, seed: int = 7) -> Page:
    """Report number i, about `place`, of roughly `words` words in paragraphs of three to five sentences."""
    rng = random.Random(seed * 100_003 + i)
    lead = (
        f"Residents of {place} reported heavy shelling overnight into {rng.choice(DAYS)}, "
        f"and {rng.randint(3, 400)} families left their homes, {rng.choice(GROUPS)} said."
    )
    body, count = [lead], len(lead.split())
    while count < words:
        para = " ".join(_sentence(rng) for _ in range(rng.randint(3, 5)))
        body.append(para)
        count += len(para.split())
    return Page(f"report-{i}", f"Report {i} from {place}", "2020-06-01T08:00:00Z", "By Staff", tuple(body))


#: The places the fault scenarios' reports are about, and their watchlist.
FAULT_PLACES = ["Sirte", "Jufra", "Derna", "Misrata", "Tarhuna", "Benghazi"]
FAULT_WATCHLIST = "watches:\n" + "".join(
    f"  - {{id: {p.lower()}, kind: location, name: {p}}}\n" for p in FAULT_PLACES
)


def front_line_site(n: int) -> Site:
    """n short reports at /news/story-I.html, each about one watched place, none a near-duplicate."""
    pages = [
        dataclasses.replace(report(i, FAULT_PLACES[i % len(FAULT_PLACES)], 60), slug=f"story-{i}")
        for i in range(n)
    ]
    return Site("Front Line Daily", "Most read", [], pages)
