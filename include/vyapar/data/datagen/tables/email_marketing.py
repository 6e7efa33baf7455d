"""Email campaigns on a fixed calendar and each recipient's sent/delivered/open/click trail.

Each campaign's trail is drawn from its own random stream, so any batch can regenerate it and emit
just the events that happened since the previous arrival.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from include.vyapar.data.datagen import arrow_columns as col
from include.vyapar.data.datagen.keyed_random import keyed_uniform, stream
from include.vyapar.data.datagen.reference_data import CAMPAIGN_NAMES, CAMPAIGN_TYPES, SUBJECT_LINES
from include.vyapar.data.datagen.schema import EMAIL_CAMPAIGNS, EMAIL_EVENTS
from include.vyapar.data.datagen.seasonality import (
    IST_OFFSET_US,
    US_PER_DAY,
    US_PER_HOUR,
    US_PER_SECOND,
    ist_day_number,
)
from include.vyapar.data.datagen.tables.customers import CustomerBase, customer_ids

EMAIL_EVENT_TYPES = ["sent", "delivered", "open", "click", "bounce", "unsubscribe"]
SENT, DELIVERED, OPEN, CLICK, BOUNCE, UNSUBSCRIBE = range(6)
# Nobody opens a campaign email more than a week after it was sent.
TRAIL_SPAN_US = 7 * US_PER_DAY
_TYPE_SHARES_FESTIVE = [0.20, 0.10, 0.08, 0.07, 0.55]
_TYPE_SHARES_OTHER = [0.35, 0.30, 0.15, 0.15, 0.05]


def campaign_ids(numbers: np.ndarray) -> pa.Array:
    return col.prefixed_ids("CMP", numbers, 4)


def _flat(per_type: dict[str, list[str]]) -> tuple[list[str], np.ndarray, np.ndarray]:
    lengths = np.array([len(per_type[kind]) for kind in CAMPAIGN_TYPES])
    return (
        [text for kind in CAMPAIGN_TYPES for text in per_type[kind]],
        np.concatenate([[0], np.cumsum(lengths)[:-1]]),
        lengths,
    )


@dataclass
class CampaignCalendar:
    """Campaign k is sent around window_start + k * gap, mid-morning to evening IST."""

    seed: int
    window_start_us: int
    gap_us: int
    audience_base: int  # a campaign targets 5-25% of this many customers

    def _sent_and_created(self, numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        def draw(purpose: str) -> np.ndarray:
            return keyed_uniform(self.seed, purpose, numbers)

        around = self.window_start_us + ((numbers - 0.5 + 0.7 * (draw("campaign_jitter") - 0.5)) * self.gap_us)
        ist_midnight_utc = ist_day_number(around.astype(np.int64)) * US_PER_DAY - IST_OFFSET_US
        sent = ist_midnight_utc + ((10 + 9 * draw("campaign_send_hour")) * US_PER_HOUR).astype(np.int64)
        created = sent - ((1 + 5 * draw("campaign_lead_days")) * US_PER_DAY).astype(np.int64)
        return sent, created

    def _numbers_until(self, until_us: int) -> np.ndarray:
        last = (until_us + 2 * self.gap_us + US_PER_DAY * 8 - self.window_start_us) // self.gap_us
        return np.arange(1, max(int(last), 0) + 1)

    def campaigns_created(self, after_us: int, until_us: int) -> pa.Table:
        """Campaign rows created in (after, until]."""
        numbers = self._numbers_until(until_us)
        sent, created = self._sent_and_created(numbers)
        keep = (created > after_us) & (created <= until_us)
        numbers, sent, created = numbers[keep], sent[keep], created[keep]
        order = np.lexsort((numbers, created))
        numbers, sent, created = numbers[order], sent[order], created[order]

        month = (ist_day_number(sent).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12) + 1
        festive = (month == 10) | (month == 11)
        roll = keyed_uniform(self.seed, "campaign_type", numbers)
        kind = np.where(
            festive,
            np.searchsorted(np.cumsum(_TYPE_SHARES_FESTIVE), roll, side="right"),
            np.searchsorted(np.cumsum(_TYPE_SHARES_OTHER), roll, side="right"),
        )
        kind = np.minimum(kind, len(CAMPAIGN_TYPES) - 1)
        names, name_offsets, name_lengths = _flat(CAMPAIGN_NAMES)
        subjects, subject_offsets, subject_lengths = _flat(SUBJECT_LINES)
        name = name_offsets[kind] + (keyed_uniform(self.seed, "campaign_name", numbers) * name_lengths[kind]).astype(
            np.int64
        )
        subject = subject_offsets[kind] + (
            keyed_uniform(self.seed, "campaign_subject", numbers) * subject_lengths[kind]
        ).astype(np.int64)
        send_month = pc.strftime(col.timestamps(sent + IST_OFFSET_US), format="%b %Y")
        return pa.Table.from_arrays(
            [
                campaign_ids(numbers),
                col.join(col.pick(names, name), send_month, separator=" "),
                col.pick(CAMPAIGN_TYPES, kind),
                col.pick(subjects, subject),
                col.timestamps(sent),
                col.timestamps(created),
            ],
            schema=EMAIL_CAMPAIGNS,
        )

    def events_between(
        self, customers: CustomerBase, after_us: int, until_us: int, first_event_number: int
    ) -> pa.Table:
        """Email events with timestamps in (after, until], from every campaign that could produce one."""
        numbers = self._numbers_until(until_us)
        sent, _ = self._sent_and_created(numbers)
        live = (sent <= until_us) & (sent + TRAIL_SPAN_US > after_us)
        parts = [
            self._trail(int(number), int(sent_at), customers)
            for number, sent_at in zip(numbers[live], sent[live], strict=True)
        ]
        if not parts:
            return EMAIL_EVENTS.empty_table()
        campaign, customer, kind, at = (np.concatenate(column) for column in zip(*parts, strict=True))
        keep = (at > after_us) & (at <= until_us)
        campaign, customer, kind, at = campaign[keep], customer[keep], kind[keep], at[keep]
        order = np.lexsort((kind, customer, campaign, at))
        campaign, customer, kind, at = campaign[order], customer[order], kind[order], at[order]
        return pa.Table.from_arrays(
            [
                col.prefixed_ids("EML", np.arange(first_event_number, first_event_number + len(at)), 10),
                campaign_ids(campaign),
                customer_ids(customer),
                col.pick(EMAIL_EVENT_TYPES, kind),
                col.timestamps(at),
            ],
            schema=EMAIL_EVENTS,
        )

    def _trail(self, number: int, sent_at_us: int, customers: CustomerBase):
        """Every event the campaign will ever produce, drawn the same way whichever batch asks."""
        rng = stream(self.seed, number, "email_campaign_trail")
        eligible = int(np.searchsorted(customers.signup_us, sent_at_us, side="right"))
        audience = min(eligible, int(round(self.audience_base * rng.uniform(0.05, 0.25))))
        recipients = rng.choice(eligible, audience, replace=False) + 1 if audience else np.zeros(0, np.int64)
        sent = sent_at_us + rng.integers(0, 30 * 60, audience) * US_PER_SECOND
        bounced = rng.random(audience) < 0.03
        delivered = sent + rng.integers(1, 60, audience) * US_PER_SECOND
        opened = ~bounced & (rng.random(audience) < rng.uniform(0.20, 0.35))
        # Most opens come within hours, a long tail over the following days.
        open_delay = np.where(
            rng.random(audience) < 0.7,
            rng.exponential(2 * US_PER_HOUR, audience),
            rng.exponential(36 * US_PER_HOUR, audience),
        )
        opened_at = delivered + np.minimum(open_delay, 6 * US_PER_DAY).astype(np.int64)
        clicked = opened & (rng.random(audience) < rng.uniform(0.10, 0.30))
        clicked_at = opened_at + ((10 + rng.exponential(240, audience)) * US_PER_SECOND).astype(np.int64)
        unsubscribed = ~bounced & (rng.random(audience) < 0.004)
        last_seen = np.where(clicked, clicked_at, np.where(opened, opened_at, delivered))
        unsubscribed_at = last_seen + ((30 + rng.exponential(300, audience)) * US_PER_SECOND).astype(np.int64)

        happened = [np.ones(audience, bool), ~bounced, opened, clicked, bounced, unsubscribed]
        times = [sent, delivered, opened_at, clicked_at, delivered, unsubscribed_at]
        customer = np.concatenate([recipients[mask] for mask in happened])
        kind = np.concatenate([np.full(mask.sum(), code) for code, mask in enumerate(happened)])
        at = np.concatenate([time[mask] for time, mask in zip(times, happened, strict=True)])
        return np.full(len(at), number), customer, kind, at
