"""A Django shop's order notices: one mail per customer, sent in one batch.

`send_mass_mail` opens one connection for the batch and returns only how many went: it hides the
Message-IDs, so the tests check delivery by recipient.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import send_mass_mail


@dataclass
class Order:
    number: int
    email: str


def send_shipping_notices(orders: Iterable[Order]) -> int:
    """Tell each customer their order shipped; returns how many mails Django sent."""
    return send_mass_mail(
        [
            (
                f"Order {order.number} has shipped",
                f"Your order {order.number} is on its way.",
                settings.DEFAULT_FROM_EMAIL,
                [order.email],
            )
            for order in orders
        ]
    )
