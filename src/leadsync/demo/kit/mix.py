"""The lead mix: seeded, realistic website form submissions, some repeated, some refused.

Every exactly-once scenario submits this mix: the demo, the end-to-end tests and the chaos
benchmark. A share of the leads repeats an earlier email in another casing (the same person
sending the form again: it must not make a second contact), and a share uses an address at
`REJECTED_DOMAIN`, which the sandbox refuses with INVALID_EMAIL when its `reject_emails` rule is
`REJECT_REGEX` (HubSpot refuses some real addresses the same way: those leads must end FAILED,
the others SYNCED).
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

REJECTED_DOMAIN = "rejected.example"
# The sandbox's `reject_emails` rule that refuses them (SandboxConfig, `leadsync sandbox
# --reject-emails`); lift it (PATCH /_sandbox/config) and they sync.
REJECT_REGEX = r"@rejected\.example$"
REPEAT_SHARE = 0.05  # of the leads, by default, repeat an earlier email in another casing
REJECT_SHARE = 0.02  # of the leads, by default, use an address the rule refuses

_COUNTRIES = ("ES", "PT", "IT", "FR", "DE", "NL")
_COUNTRY_WEIGHTS = (70, 7, 7, 6, 5, 5)


def _words(text: str) -> tuple[str, ...]:
    return tuple(word.strip() for word in text.split(","))


_NAMES = {  # country -> (first names, last names)
    "ES": (
        _words(
            "Lucía, Martín, Sofía, Hugo, Paula, Álvaro, Carmen, Javier, Elena, Pablo, Marta, "
            "Diego, Laura, Sergio, Irene, Jordi, Núria, Iñaki, Ainhoa, Xabier, Nerea, Adrián, "
            "Cristina, Raúl, Begoña, Rocío"
        ),
        _words(
            "García, Fernández, González, Rodríguez, López, Martínez, Sánchez, Pérez, Gómez, "
            "Jiménez, Ruiz, Hernández, Díaz, Moreno, Muñoz, Álvarez, Romero, Navarro, Torres, "
            "Domínguez, Vázquez, Ramos, Gil, Serrano, Molina, Ortega, Castro, Rubio, Sanz, Puig, "
            "Etxeberria"
        ),
    ),
    "PT": (_words("João, Inês, Tiago, Beatriz, Rui, Mariana"), _words("Silva, Santos, Costa")),
    "IT": (_words("Giulia, Marco, Chiara, Luca, Matteo"), _words("Rossi, Bianchi, Ricci, Conti")),
    "FR": (_words("Camille, Léa, Thomas, Julien, Chloé"), _words("Dubois, Lefèvre, Moreau")),
    "DE": (_words("Lukas, Anna, Jonas, Lena, Felix"), _words("Müller, Schmidt, Weber, Wagner")),
    "NL": (_words("Daan, Emma, Sanne, Bram, Lotte"), _words("de Jong, Jansen, van Dijk, Visser")),
}
_BRANDS = _words(
    "Nexo, Alba, Brisa, Cobalto, Duna, Faro, Lumen, Marea, Olivo, Pórtico, Rumbo, Sierra, "
    "Tándem, Vértice, Zenit, Ágora, Cierzo, Levante, Albor, Candil, Azahar, Brújula, Caravel, "
    "Orilla, Trébol, Quilla"
)
_SECTORS = {
    "ES": _words(
        "Digital, Arquitectura, Consultores, Abogados, Estudio Creativo, Logística, Energía, "
        "Software, Marketing, Asesores, Ingeniería, Formación"
    ),
    "EN": _words("Studio, Labs, Partners, Consulting, Digital, Design, Ventures"),
}
_SUFFIXES = {
    "ES": ("SL", "SL", "SLU", "SA", "SLP", ""),
    "PT": ("Lda", "SA"),
    "IT": ("Srl", "SpA"),
    "FR": ("SAS", "SARL"),
    "DE": ("GmbH", "UG"),
    "NL": ("BV",),
}
_CITIES = ("Madrid", "Barcelona", "Valencia", "Sevilla", "Málaga", "Bilbao", "Zaragoza", "Palma")
_MONTHS = ("enero", "febrero", "marzo", "abril", "mayo", "junio", "septiembre", "octubre")
_MONTHS_EN = ("January", "February", "March", "April", "May", "June", "September", "October")
_DAYS = ("lunes", "martes", "miércoles", "jueves", "viernes")
_DAYS_EN = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
_MESSAGES_ES = (
    "Hola, somos {n} personas y buscamos puestos fijos en {city} a partir de {month}. "
    "¿Qué tarifas tenéis?",
    "Buenos días, necesito una sala de reuniones para {n} personas el próximo {day} por la "
    "mañana. ¿Tiene pantalla?",
    "Me interesa una oficina privada para un equipo de {n}. ¿Se puede visitar esta semana?",
    "Busco un puesto flexible {d} días a la semana, a ser posible cerca del metro.",
    "¿Ofrecéis domiciliación fiscal y recepción de correo? Estoy montando mi empresa en {city}.",
    "Queremos reservar un espacio para un taller de {n} personas en {month}. ¿Incluye café?",
    "Somos una startup de {n} personas: ¿tenéis oficinas con acceso 24/7 y parking?",
    "Hola, quería información sobre el bono de 10 días de coworking. Gracias.",
    "Necesito una sala para entrevistas de trabajo el {day}, unas 3 horas.",
)
_MESSAGES_EN = (
    "Hi, we're a team of {n} moving to {city} in {month_en}. Do you have a private office free?",
    "Looking for a dedicated desk {d} days a week. What's the monthly price?",
    "Could we book a meeting room for {n} people next {day_en}? We need video conferencing.",
    "Do you offer a virtual office (business address and mail handling) in {city}?",
)
_FOLLOW_UPS = (
    "Os escribo de nuevo: seguimos interesados, ahora seríamos {n} personas.",
    "Perdón, en el formulario anterior puse mal el teléfono. ¿Me podéis llamar?",
    "Following up on my earlier request: still interested, now {n} people.",
)
_SOURCES = ("website-contact-form", "landing-oficinas", "landing-salas", "google-ads", "newsletter")
_SOURCE_WEIGHTS = (50, 20, 15, 10, 5)
_TLDS = {"ES": "es", "PT": "pt", "IT": "it", "FR": "fr", "DE": "de", "NL": "nl"}


@dataclass(frozen=True, slots=True)
class LeadMix:
    """What a scenario submits: lead bodies in order, and what HubSpot should end up with."""

    bodies: list[dict[str, str]]
    distinct_emails: frozenset[str]  # lowercased
    rejected_emails: frozenset[str]  # lowercased; refused while REJECT_REGEX is the rule
    repeats: int  # bodies that repeat an earlier email in another casing

    @property
    def valid_emails(self) -> frozenset[str]:
        """The emails HubSpot accepts even under the refusing rule: one contact each."""
        return self.distinct_emails - self.rejected_emails


def _ascii(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "", plain.lower())


def _digits(rng: random.Random, count: int) -> str:
    return "".join(str(rng.randrange(10)) for _ in range(count))


def _phone(rng: random.Random, country: str) -> str | None:
    if rng.random() < 0.15:
        return None  # the form does not require one
    if country == "ES":
        mobile = rng.random() < 0.7
        head = f"6{_digits(rng, 2)}" if mobile else rng.choice(("91", "93", "96", "95")) + "1"
        number = f"{head} {_digits(rng, 3)} {_digits(rng, 3)}"
        return number if rng.random() < 0.3 else f"+34 {number}"
    return {
        "PT": lambda: f"+351 9{_digits(rng, 2)} {_digits(rng, 3)} {_digits(rng, 3)}",
        "IT": lambda: f"+39 3{_digits(rng, 2)} {_digits(rng, 3)} {_digits(rng, 4)}",
        "FR": lambda: "+33 6 " + " ".join(_digits(rng, 2) for _ in range(4)),
        "DE": lambda: f"+49 15{_digits(rng, 1)} {_digits(rng, 8)}",
        "NL": lambda: f"+31 6 {_digits(rng, 8)}",
    }[country]()


def _company(rng: random.Random, country: str) -> tuple[str, str]:
    """Return a made-up company name and its web domain."""
    brand = rng.choice(_BRANDS)
    sector = rng.choice(_SECTORS["ES" if country == "ES" else "EN"])
    suffix = rng.choice(_SUFFIXES[country])
    name = " ".join(part for part in (brand, sector, suffix) if part)
    tld = _TLDS[country] if rng.random() < 0.75 else rng.choice(("com", "eu"))
    joiner = "-" if rng.random() < 0.3 else ""
    return name, f"{_ascii(brand)}{joiner}{_ascii(sector)}.{tld}"


def _message(rng: random.Random, country: str, templates: Sequence[str] | None = None) -> str:
    if templates is None:
        english = (country != "ES" and rng.random() < 0.7) or rng.random() < 0.05
        templates = _MESSAGES_EN if english else _MESSAGES_ES
    return rng.choice(templates).format(
        n=rng.choice((2, 3, 4, 5, 6, 8, 10, 12, 15)),
        d=rng.choice((2, 3, 4)),
        city=rng.choice(_CITIES),
        month=rng.choice(_MONTHS),
        month_en=rng.choice(_MONTHS_EN),
        day=rng.choice(_DAYS),
        day_en=rng.choice(_DAYS_EN),
    )


def _capitalised(email: str) -> str:
    local, _, domain = email.partition("@")
    return ".".join(part.capitalize() for part in local.split(".")) + "@" + domain


def _other_casing(email: str) -> str:
    lowered = email.lower()
    local, _, domain = lowered.partition("@")
    variants = (
        _capitalised(lowered),
        lowered.upper(),
        local + "@" + domain.upper(),
        local.capitalize() + "@" + domain.capitalize(),
    )
    return next(v for v in variants if v not in (lowered, email))


class _People:
    """Draws people with unique email addresses (colleagues share a company domain)."""

    def __init__(self, rng: random.Random, *, companies: int) -> None:
        self._rng = rng
        self._taken: set[str] = set()
        found: dict[str, tuple[str, str, str]] = {}
        while len(found) < max(companies, 1):
            country = rng.choices(_COUNTRIES, _COUNTRY_WEIGHTS)[0]
            name, domain = _company(rng, country)
            found.setdefault(name, (country, name, domain))
        self._companies = list(found.values())

    def body(self, *, domain: str | None = None) -> dict[str, str]:
        rng = self._rng
        country, company, company_domain = rng.choice(self._companies)
        first_names, last_names = _NAMES[country]
        first, last = rng.choice(first_names), rng.choice(last_names)
        body = {"firstname": first, "lastname": last}
        if rng.random() < 0.1:  # a freelancer: no company, a personal site
            company_domain = f"{_ascii(first)}{_ascii(last)}.{_TLDS[country]}"
        else:
            body["company"] = company
        local = rng.choice(
            (f"{_ascii(first)}.{_ascii(last)}", f"{_ascii(first)[0]}{_ascii(last)}", _ascii(first))
        )
        email = f"{local}@{domain or company_domain}"
        suffix = 2
        while email in self._taken:
            email = f"{local}{suffix}@{domain or company_domain}"
            suffix += 1
        self._taken.add(email)
        # Some people type their address with capitals; the API stores it lowercased.
        body["email"] = _capitalised(email) if rng.random() < 0.1 else email
        if (phone := _phone(rng, country)) is not None:
            body["phone"] = phone
        body["message"] = _message(rng, country)
        body["source"] = rng.choices(_SOURCES, _SOURCE_WEIGHTS)[0]
        return body


def lead_mix(
    total: int,
    *,
    seed: int,
    repeat_share: float = REPEAT_SHARE,
    reject_share: float = REJECT_SHARE,
    at_least: int = 0,
) -> LeadMix:
    """Build `total` lead bodies, the same ones for the same arguments.

    round(total x share) of them repeat an earlier email in another casing (sent later, as a
    follow-up), and as many use an address at REJECTED_DOMAIN; each kind at least `at_least`
    when its share is not 0. Every other email is distinct.
    """

    def share_of(share: float) -> int:
        return max(at_least, round(total * share)) if share > 0 else 0

    rng = random.Random(seed)
    rejects = share_of(reject_share)
    repeats = share_of(repeat_share)
    fresh = total - rejects - repeats
    if fresh < 1:
        raise ValueError(f"need at least {rejects + repeats + 1} leads, got {total}")
    # A few colleagues per company; capped so that names stay distinct at any count.
    people = _People(rng, companies=min(total // 3, 300))
    bodies = [people.body() for _ in range(fresh)]
    bodies += [people.body(domain=REJECTED_DOMAIN) for _ in range(rejects)]
    rng.shuffle(bodies)
    for _ in range(repeats):
        # The same person sends the form again later, typing the address differently.
        index = rng.randrange(len(bodies))
        original = bodies[index]
        again = dict(original, email=_other_casing(original["email"]))
        again["message"] = _message(rng, "ES", _FOLLOW_UPS)
        bodies.insert(rng.randint(index + 1, len(bodies)), again)
    emails = frozenset(body["email"].lower() for body in bodies)
    rejected = frozenset(e for e in emails if e.endswith("@" + REJECTED_DOMAIN))
    return LeadMix(bodies, emails, rejected, repeats)
