from tests.payments.conftest import pay, pay_boxes  # noqa: F401  (payment sandboxes for the HTTP flows)
