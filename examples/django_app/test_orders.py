"""Django's real SMTP backend against the fake SES server, under pytest-django."""

import smtplib

import pytest
from orders import Order, send_shipping_notices


@pytest.mark.fake_ses(rate_per_s=None)  # SES's 14/s throttle is another test's subject
def test_every_customer_gets_exactly_one_notice(fake_ses_django):
    orders = [Order(n, f"customer{n}@example.com") for n in range(20)]

    assert send_shipping_notices(orders) == 20

    fake_ses_django.assert_delivered_once_to([order.email for order in orders])
    assert len(fake_ses_django.sessions) == 1  # one connection for the batch


@pytest.mark.fake_ses(session_limit=5, rate_per_s=None)
def test_the_session_cap_stops_the_batch_and_says_so(fake_ses_django):
    orders = [Order(n, f"customer{n}@example.com") for n in range(8)]

    with pytest.raises(smtplib.SMTPSenderRefused) as refused:
        send_shipping_notices(orders)  # Django neither reconnects nor says which went

    assert refused.value.smtp_code == 421

    fake_ses_django.assert_delivered_once_to([order.email for order in orders[:5]])
    (cap,) = fake_ses_django.faults_fired
    assert cap.name == "session_limit"
